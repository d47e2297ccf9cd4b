/*-------------------------------------------------------------------------
 *
 * store.h
 *		The extension's tables (store.c): what the worker reads and writes
 *		of its sagas, with SPI.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_STORE_H
#define PG_SAGA_STORE_H

#include "postgres.h"
#include "fmgr.h"
#include "model.h"

typedef struct LiveSagaRef
{
	int64		id;
	bool		abort_requested;
	char	   *abort_reason;
} LiveSagaRef;


extern int	store_run(const char *sql, int nargs, Oid *argtypes, Datum *args,
					  const char *nulls, bool read_only, long count);
extern Datum text_or_null(const char *s, char *nulls, int i);
extern Datum arg_or_null(FunctionCallInfo fcinfo, int argno, char *nulls, int i);
extern void store_prepare(void);
extern void store_recheck_schema(void);
extern bool store_has_saga_key(void);
extern bool store_has_derived_history(void);
extern char *store_coordinator_id(void);
/* Should a live saga just read be loaded?  Sees its abort request too. */
typedef bool (*SagaWanted) (int64 id, bool abort_requested, const char *abort_reason);
extern List *store_live_sagas_after(int64 after, int limit, int max, SagaWanted want,
									int64 *last, bool *exhausted, MemoryContext parent);
extern List *store_live_sagas_named(const int64 *ids, int n, int max, SagaWanted want,
									int64 *last, MemoryContext parent);
extern List *store_abort_requests(int64 upto);
extern bool store_write_saga(Saga *saga);
extern void store_write_step(SagaStep *step);
extern void store_write_event(Saga *saga, SagaEvent *event);

/* A target and the role whose user mapping reaches it. */
typedef struct StoreTarget
{
	char	   *target;
	Oid			owner;
} StoreTarget;

extern List *store_xa_targets(MemoryContext cxt);

/* Queued barrier records of purged sagas for one target and role. */
typedef struct StoreForget
{
	StoreTarget where;
	int			n;
	int64	   *ids;			/* rows of saga.barrier_forget */
	char	  **identities;		/* barrier identity of each saga */
	char	  **gids;			/* its gid if it has no key, else NULL */
} StoreForget;

extern bool store_restore_connected(void);
extern List *store_forget_due(int limit, const StoreTarget *skip, int nskip,
							  MemoryContext cxt);
extern void store_forget_done(const int64 *ids, int n);
extern bool store_saga_state(int64 id, SagaStatus *status, SagaPhase *phase);

#endif							/* PG_SAGA_STORE_H */
