/*-------------------------------------------------------------------------
 *
 * remote.h
 *		The worker's connections to its targets (remote.c): non-blocking
 *		libpq connections pooled per target and role, the calls on them, and
 *		how a call ended.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_REMOTE_H
#define PG_SAGA_REMOTE_H

#include "postgres.h"
#include "storage/latch.h"
#include "model.h"

/* How a remote call ended. */
typedef enum RemoteOutcomeKind
{
	OUTCOME_OK,					/* committed; reply holds run()'s answer */
	OUTCOME_ERROR,				/* the remote reported an error: rolled back */
	OUTCOME_UNKNOWN,			/* connection lost or timed out: may have run */
	OUTCOME_NOT_SENT			/* did not run in its batch: send it alone */
} RemoteOutcomeKind;

typedef struct RemoteOutcome
{
	RemoteOutcomeKind kind;
	char		sqlstate[6];	/* for OUTCOME_ERROR; "" if none */
	char	   *message;		/* error text, palloc'd in the caller's context */
	char	   *reply;			/* first column of the last row returned */
	char	   *result;			/* the step's result (jsonb text), if answered */
} RemoteOutcome;

/*
 * The statements a connection prepares for step calls, one per kind (see
 * barrier.c): run() for a step whose last statement returns no rows (which
 * participants set up by any version have), run_step() for one that does,
 * run_batch() for several steps at once.
 */
typedef enum StepCallKind
{
	CALL_RUN,
	CALL_RUN_RESULT,
	CALL_BATCH
} StepCallKind;

#define STEP_CALL_KINDS 3
#define STEP_CALL_MAX_NARGS 10

/* A step call as the parameters of its kind's statement, as text. */
typedef struct RemoteStepCall
{
	StepCallKind kind;
	int			nargs;
	const char *values[STEP_CALL_MAX_NARGS];
	int			timeout_ms;		/* the statement timeout it runs under */
} RemoteStepCall;

/* Called when a call finishes; arg is what remote_call was given. */
typedef void (*RemoteDoneCallback) (void *arg, RemoteOutcome *outcome);

extern void remote_init(MemoryContext cxt);
extern RemotePool *remote_pool_lookup(const char *target, Oid owner);
extern bool remote_pool_resolve(RemotePool *pool, char **error, char *sqlstate);
extern bool remote_pool_has_room(RemotePool *pool, bool batchable, bool priority);
extern void remote_pool_reserve(RemotePool *pool, bool batchable);
extern void remote_pool_release(RemotePool *pool, bool batchable);
extern bool remote_pool_batches(RemotePool *pool, TimestampTz now);
extern int	remote_pool_batch_steps(RemotePool *pool);
extern int	remote_pool_free(RemotePool *pool);
extern bool remote_pool_ready(RemotePool *pool);
extern RemoteConn *remote_call(RemotePool *pool, char *query, RemoteStepCall *step_call,
							   TimestampTz deadline, RemoteDoneCallback done, void *arg);
extern RemoteConn *remote_call_batch(RemotePool *pool, RemoteStepCall *call, int n, void **args,
									 TimestampTz deadline, RemoteDoneCallback done);
extern void remote_abandon(RemoteConn *conn, void *arg);
extern int	remote_add_wait_events(WaitEventSet *set);
extern bool remote_wait_events_changed(void);
extern int	remote_count_sockets(void);
extern void remote_handle_socket(void *user_data);
extern void remote_check_deadlines(TimestampTz now);
extern TimestampTz remote_next_deadline(void);
extern void remote_close_idle(TimestampTz now);
extern void remote_invalidate_all(void);
extern bool remote_sqlstate_is_transient(const char *sqlstate);
extern char *remote_error_text(const char *message, const char *detail, const char *hint,
							   const char *context);

#endif							/* PG_SAGA_REMOTE_H */
