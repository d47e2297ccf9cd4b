/*-------------------------------------------------------------------------
 *
 * pg_saga.h
 *		Declarations shared by the files of pg_saga.
 *
 * Where things live:
 *		pg_saga.c	module load, shared memory, the wake-up protocol
 *		settings.c	the saga.* settings (GUCs)
 *		launcher.c	the launcher: one worker per database with the extension
 *		worker.c	a database's worker: the event loop
 *		engine.c	the state machine of a saga: what runs next, what an
 *					outcome means; modes are plans for the same steps
 *		remote.c	non-blocking libpq connections, pooled per target and role
 *		barrier.c	the remote text of a step call and the participant set-up
 *		recovery.c	in-doubt prepared transactions of xa sagas
 *		catalog.c	reading and writing the extension's tables with SPI
 *		target.c	the foreign-data wrapper, targets and user mappings
 *		functions.c	the SQL-callable functions
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_H
#define PG_SAGA_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "lib/ilist.h"
#include "nodes/pg_list.h"
#include "libpq-fe.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "compat.h"

#define SAGA_EXTENSION_NAME		"pg_saga"
#define SAGA_SCHEMA				"saga"
#define SAGA_MAX_GID_LEN		128

/* ---- settings.c ---- */
extern int	saga_retry_interval_ms;
extern int	saga_max_retry_interval_ms;
extern int	saga_max_attempts;
extern int	saga_step_timeout_ms;
extern int	saga_connect_timeout_ms;
extern int	saga_max_workers;
extern int	saga_max_connections_per_target;
extern int	saga_max_active_sagas;
extern int	saga_batch_size;
extern int	saga_max_result_size;
extern int	saga_recovery_interval_ms;
extern char *saga_step_gid;
extern char *saga_step_number;
extern char *saga_step_results;
extern void saga_define_settings(void);

/* ---- pg_saga.c: shared memory ---- */

/* Ids of sagas a worker should look at, pushed by committing backends. */
#define SAGA_QUEUE_SIZE 1024

/* One slot per database worker the launcher runs (saga.max_workers). */
typedef struct SagaWorkerSlot
{
	Oid			dboid;			/* InvalidOid when the slot is free */
	pid_t		pid;			/* the worker's pid once it runs */
	Latch	   *latch;			/* its latch, to wake it */
	bool		no_extension;	/* the worker found no pg_saga and left */
	bool		exited;			/* the worker has left */
	/* sagas submitted, aborted or retried since the worker last looked */
	uint32		nqueued;
	bool		overflow;		/* more than fit: the worker rereads all */
	XLogRecPtr	submit_lsn;		/* the latest end of those commits */
	int64		queue[SAGA_QUEUE_SIZE];
} SagaWorkerSlot;

#define SAGA_MAX_START_REQUESTS 16

/* A backend in saga.wait(): which saga it waits for, and how to wake it. */
typedef struct SagaWaiter
{
	Oid			dboid;
	pg_atomic_uint64 gtx_id;	/* 0: not waiting */
	Latch	   *latch;
} SagaWaiter;

typedef struct SagaShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	/* databases whose extension was just created: start their worker */
	int			nrequests;
	Oid			requests[SAGA_MAX_START_REQUESTS];
	/* databases being dropped: their worker stays stopped until then */
	Oid			held[SAGA_MAX_START_REQUESTS];
	TimestampTz held_until[SAGA_MAX_START_REQUESTS];
	SagaWaiter *waiters;		/* MaxBackends of them, by saga_my_proc_index() */
	int			nslots;
	SagaWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SagaShared;

extern SagaShared *saga_shared;
extern void saga_request_worker(Oid dboid);
extern void saga_wait_register(int64 gtx_id);
extern void saga_wait_unregister(void);
extern void saga_wake_waiters(const int64 *gtx_ids, int n);
extern bool saga_database_held(Oid dboid, TimestampTz now);
extern void saga_wake_worker_at_commit(int64 gtx_id);
extern int	saga_take_queue(int slot, int64 *ids, bool *overflow, XLogRecPtr *submit_lsn);

/* ---- launcher.c / worker.c ---- */
extern void saga_register_launcher(void);
extern PGDLLEXPORT void saga_launcher_main(Datum arg);
extern PGDLLEXPORT void saga_worker_main(Datum arg);

/* ---- statuses, modes and operations ---- */
typedef enum SagaMode
{
	MODE_SAGA,
	MODE_TCC,
	MODE_XA,
	MODE_MSG,
	MODE_AT
} SagaMode;

typedef enum SagaStatus
{
	GTX_BUILDING,
	GTX_PENDING,
	GTX_RUNNING,
	GTX_COMMITTING,
	GTX_COMPENSATING,
	GTX_SUCCEEDED,
	GTX_ABORTED,
	GTX_FAILED
} SagaStatus;

typedef enum SagaPhase
{
	PHASE_FORWARD,
	PHASE_COMMIT,
	PHASE_ROLLBACK
} SagaPhase;

typedef enum StepStatus
{
	STEP_PENDING,
	STEP_RUNNING,
	STEP_PREPARED,
	STEP_SUCCEEDED,
	STEP_CONFIRMED,
	STEP_FAILED,
	STEP_COMPENSATED,
	STEP_SKIPPED
} StepStatus;

/* What a step sends to its target. */
typedef enum StepOp
{
	OP_ACTION,					/* xa: the action, then PREPARE TRANSACTION */
	OP_COMPENSATION,			/* saga: compensation; tcc: Cancel */
	OP_CONFIRM,					/* tcc: Confirm */
	OP_XA_PROBE,				/* xa: is the step's transaction prepared? */
	OP_COMMIT_PREPARED,
	OP_ROLLBACK_PREPARED,
	OP_AT_FORGET				/* at: forget the saga's undo records on a target */
} StepOp;

/* StepOps that run user SQL, and so index SagaStep.sql */
#define STEP_SQL_OPS 3

extern const char *saga_mode_name(SagaMode mode);
extern bool saga_mode_from_name(const char *name, SagaMode *mode);
extern const char *saga_status_name(SagaStatus status);
extern SagaStatus saga_status_from_name(const char *name);
extern const char *saga_phase_name(SagaPhase phase);
extern SagaPhase saga_phase_from_name(const char *name);
extern const char *step_status_name(StepStatus status);
extern StepStatus step_status_from_name(const char *name);
extern const char *step_op_name(StepOp op);

/* ---- remote.c ---- */

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

typedef struct RemotePool RemotePool;
typedef struct RemoteConn RemoteConn;

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

/* Blocking but interruptible, for user backends only (setup_participant). */
extern void remote_exec_in_backend(const char *target, Oid owner, const char *sql);

/* ---- target.c ---- */
extern void target_check_usable(const char *target, Oid owner);
extern bool target_conninfo(const char *target, Oid owner, const char ***keywords,
							const char ***values, bool *need_password,
							char **error, char *sqlstate);

/* ---- barrier.c ---- */
struct Saga;
struct SagaStep;
extern char *barrier_step_call(const char *coordinator, struct Saga *saga,
							   struct SagaStep *step, StepOp op, int timeout_ms,
							   RemoteStepCall *params);
extern RemoteStepCall *barrier_step_params(const char *coordinator, struct Saga *saga,
										   struct SagaStep *step, StepOp op, int timeout_ms);
extern const char *barrier_call_statement(StepCallKind kind, const Oid **types, int *nargs);
extern const char *barrier_call_statement_name(StepCallKind kind);
extern RemoteStepCall *barrier_batch_params(const char *coordinator, struct SagaStep **steps,
											StepOp *ops, int n, int timeout_ms);
extern bool barrier_batchable(struct Saga *saga, struct SagaStep *step, StepOp op);
extern bool barrier_returns_rows(struct SagaStep *step, StepOp op);
extern char *barrier_xa_prefix(const char *coordinator);
extern char *barrier_xa_name(const char *coordinator, int64 gtx_id, int step);
extern char *barrier_xa_list_query(const char *coordinator);
extern bool barrier_xa_parse(const char *coordinator, const char *name,
							 int64 *gtx_id, int *step);
extern char *barrier_participant_sql(void);

/* ---- catalog.c: the engine's view of a saga ---- */
typedef struct SagaStep
{
	int			number;			/* 1-based, as users see it */
	char	   *name;
	char	   *target;
	char	   *sql[STEP_SQL_OPS];	/* indexed by StepOp; NULL when absent */
	int			ndeps;
	int		   *deps;			/* 0-based indexes of steps it comes after */
	bool		has_expect_rows;
	int64		expect_rows;
	int			max_attempts;	/* 0: saga.max_attempts */
	int			timeout_ms;		/* 0: saga.step_timeout */

	StepStatus	status;
	bool		maybe_applied;
	int			attempts;
	TimestampTz next_attempt_at;	/* 0: now */
	TimestampTz started_at;
	TimestampTz finished_at;
	char	   *last_error;
	char	   *last_sqlstate;
	char	   *result;			/* jsonb text of the action's rows; NULL: none yet */
	char	   *confirm_result; /* tcc: the same of the confirm */

	/* in memory only */
	bool		result_dirty;	/* result or confirm_result to be written */
	bool		result_split[STEP_SQL_OPS]; /* result_sql below worked out */
	char	   *result_prefix[STEP_SQL_OPS];	/* the SQL before its last statement */
	char	   *result_sql[STEP_SQL_OPS];	/* its last statement, answering its rows;
											 * NULL if that returns none */
	RemotePool *pool;			/* of its target and owner, once looked up */
	RemoteConn *conn;			/* call in flight, or NULL */
	bool		starting;		/* planned this turn, sent after the commit */
	bool		stuck;			/* second phase refused: needs an operator */
	bool		need_probe;		/* xa: an earlier attempt may have prepared */
	bool		redo_prepared;	/* xa: roll back the attempt found prepared,
								 * whose result is unknown, and run again */
	bool		send_alone;		/* its last call did not run in a batch */
	StepOp		flight_op;
	bool		at_forgotten;	/* at: its target forgot the saga's undo records */
	bool		dirty;
	struct Saga *saga;
} SagaStep;

typedef struct Saga
{
	dlist_node	node;
	MemoryContext cxt;
	int64		id;
	char	   *gid;
	SagaMode	mode;
	Oid			owner;
	SagaStatus	status;
	SagaPhase	phase;
	TimestampTz deadline;		/* 0: none */
	bool		abort_requested;
	char	   *abort_reason;
	char	   *last_error;
	int			nsteps;
	SagaStep   *steps;

	/* in memory only */
	bool		dirty;
	bool		decided_commit;	/* this flush writes the commit decision */
	bool		durable;		/* this flush writes a decision: flush the WAL */
	bool		decided;		/* ... to roll back or commit: act only after it */
	bool		just_started;	/* taken from pending this turn */
	bool		alert;			/* NOTIFY saga_alert when flushed */
	List	   *events;			/* SagaEvent *, written at the next flush */
	TimestampTz last_event_at;	/* keeps the saga's events in order */
} Saga;

typedef struct SagaEvent
{
	int			step;			/* 0: the saga itself */
	char	   *event;
	char	   *detail;
	TimestampTz at;				/* when it happened */
} SagaEvent;

typedef struct LiveSagaRef
{
	int64		id;
	bool		abort_requested;
	char	   *abort_reason;
} LiveSagaRef;

extern void catalog_prepare(void);
extern void catalog_recheck_schema(void);
extern char *catalog_coordinator_id(void);
/* Should a live saga just read be loaded?  Sees its abort request too. */
typedef bool (*SagaWanted) (int64 id, bool abort_requested, const char *abort_reason);
extern List *catalog_live_sagas_after(int64 after, int limit, int max, SagaWanted want,
									  int64 *last, bool *exhausted, MemoryContext parent);
extern List *catalog_live_sagas_named(const int64 *ids, int n, int max, SagaWanted want,
									  int64 *last, MemoryContext parent);
extern List *catalog_abort_requests(int64 upto);
extern bool catalog_write_saga(Saga *saga);
extern void catalog_write_step(SagaStep *step);
extern void catalog_write_event(Saga *saga, SagaEvent *event);

/* ---- engine.c ---- */
typedef struct SagaStart
{
	SagaStep   *step;
	StepOp		op;
	RemotePool *pool;
	bool		batchable;		/* may share a batch with other steps */
} SagaStart;

extern void engine_add_event(Saga *saga, int step, const char *event, const char *fmt,...) pg_attribute_printf(4, 5);
extern void engine_request_abort(Saga *saga, const char *reason);
extern void engine_commit_lost_to_abort(Saga *saga);
extern void engine_advance(Saga *saga, TimestampTz now, List **starts);
extern bool engine_goes_first(Saga *saga);
extern void engine_finish_call(SagaStep *step, RemoteOutcome *outcome, TimestampTz now);
extern void engine_call_failed_to_start(SagaStep *step, const char *error,
										const char *sqlstate, TimestampTz now);
extern void engine_call_not_sent(SagaStep *step);
extern char *engine_step_results(SagaStep *step, StepOp op);
extern TimestampTz engine_next_wakeup(Saga *saga);

/* ---- recovery.c: in-doubt prepared transactions of xa sagas ---- */
extern void recovery_init(MemoryContext cxt);
extern void recovery_set_coordinator(const char *coordinator_id);
extern void recovery_turn(dlist_head *live_sagas, TimestampTz now);
extern bool saga_is_final(SagaStatus status);
extern int	step_timeout_ms(SagaStep *step);

#endif							/* PG_SAGA_H */
