/*-------------------------------------------------------------------------
 *
 * model.h
 *		The saga as the worker holds it in memory: modes, statuses, phases and
 *		step operations with their names (model.c), and the saga, its steps
 *		and its history events.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_MODEL_H
#define PG_SAGA_MODEL_H

#include "postgres.h"
#include "lib/ilist.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

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
	SAGA_BUILDING,
	SAGA_PENDING,
	SAGA_RUNNING,
	SAGA_COMMITTING,
	SAGA_COMPENSATING,
	SAGA_SUCCEEDED,
	SAGA_ABORTED,
	SAGA_FAILED
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

/* A step operation's name, its events, and the step's status once done. */
typedef struct StepOpInfo
{
	const char *name;
	const char *started_event;
	const char *done_event;
	const char *failed_event;
	StepStatus	done_status;
} StepOpInfo;

extern const StepOpInfo *step_op_info(StepOp op);
extern SagaStatus saga_phase_status(SagaPhase phase);
extern const char *saga_status_sql_list(bool final);


extern bool saga_is_final(SagaStatus status);

/*
 * Handles on the worker's connections (remote.c).  The model only holds
 * them: the worker starts and abandons calls.
 */
typedef struct RemotePool RemotePool;
typedef struct RemoteConn RemoteConn;

/*
 * Where a step's call is; a step has one call at a time.  The engine plans
 * it (STARTING: counted as an attempt and written with the turn), the
 * worker sends it once the turn is committed (SENT: step->conn is its
 * connection), and its outcome, or a failure to send it, makes the step
 * IDLE again.  A sent call the engine gives up on (abort, deadline) makes
 * it IDLE at once, its connection left in step->abandon for the worker.
 * Only the transitions below change it; each checks the state it starts
 * from (SAGA_CHECK_STATE, pg_saga.h).
 */
typedef enum StepCallState
{
	STEP_CALL_IDLE,
	STEP_CALL_STARTING,
	STEP_CALL_SENT
} StepCallState;

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
	TimestampTz not_before;		/* the last call's target asked to wait till then */
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
	bool		bound_split[STEP_SQL_OPS];	/* the two below worked out */
	char	   *bound_statements[STEP_SQL_OPS]; /* its statements as text[] text,
												 * NULL if it references no value */
	char	   *bound_refs[STEP_SQL_OPS];	/* the values each references, the same */
	RemotePool *pool;			/* of its target and owner, once looked up */
	StepCallState call_state;	/* its call: see StepCallState */
	StepOp		flight_op;		/* what that call sends; once it ended, what the
								 * last one sent, which its outcome is read by */
	RemoteConn *conn;			/* STEP_CALL_SENT: the call's connection */
	RemoteConn *abandon;		/* a call the engine gave up on, for the worker */
	bool		stuck;			/* second phase refused: needs an operator */
	bool		need_probe;		/* xa: an earlier attempt may have prepared */
	bool		redo_prepared;	/* xa: roll back the attempt found prepared,
								 * whose result is unknown, and run again */
	bool		send_alone;		/* its last call did not run in a batch */
	TimestampTz batch_hold_until;	/* held for a batch in flight till then
									 * (see holds_for_batch); 0: not held */
	bool		at_forgotten;	/* at: its target forgot the saga's undo records */
	int			progress_entry;	/* its entry in shared memory (progress.c); 0: none */
	bool		row_behind;		/* changed in memory only: its row is older */
	bool		dirty;
	struct Saga *saga;
} SagaStep;

typedef struct Saga
{
	dlist_node	node;
	MemoryContext cxt;
	int64		id;
	char	   *gid;
	int64		key;			/* saga_key; 0: none (created before 1.5), its
								 * barrier identity is the coordinator's */
	int			nargs;			/* its bound values ($1 .. $n); 0: none */
	char	   *args;			/* those values as text[] text, or NULL */
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
	bool		history_stored;	/* saga.gtx_event has events of the worker's for
								 * it: its history is stored, not derived */
	int			progress_entry;	/* its entry in shared memory (progress.c); 0: none */
	bool		rows_behind;	/* changed in memory only: its row is older */
	int			events_held;	/* of events, those held in memory already */
	bool		publish_after_commit;	/* written this turn: show once committed */
	TimestampTz last_event_at;	/* keeps the saga's events in order */
} Saga;

typedef struct SagaEvent
{
	int			step;			/* 0: the saga itself */
	char	   *event;
	char	   *detail;
	TimestampTz at;				/* when it happened */
} SagaEvent;

/* A step's call: the questions asked of it, and its transitions (model.c). */
extern bool step_in_flight(const SagaStep *step);
extern bool step_call_starting(const SagaStep *step);
extern bool step_call_sent(const SagaStep *step);
extern const char *step_call_state_name(StepCallState state);
extern void step_call_plan(SagaStep *step, StepOp op);
extern void step_call_send(SagaStep *step, RemoteConn *conn);
extern void step_call_end(SagaStep *step);
extern RemoteConn *step_call_abandon(SagaStep *step);
extern void step_call_check_idle(const SagaStep *step, const char *transition);

#endif							/* PG_SAGA_MODEL_H */
