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
#include "step_call.h"

/* How a remote call ended. */
typedef enum RemoteOutcomeKind
{
	OUTCOME_OK,					/* committed; reply holds the participant's answer */
	OUTCOME_ERROR,				/* the remote reported an error: rolled back */
	OUTCOME_UNKNOWN,			/* connection lost or timed out: may have run */
	OUTCOME_NOT_SENT			/* did not run in its batch: send it alone */
} RemoteOutcomeKind;

/*
 * What the participant's barrier answered a step call that committed
 * (saga_participant.run_step), or an xa probe; parsed once, where the
 * reply arrives.
 */
typedef enum StepReply
{
	REPLY_NONE,					/* no answer: not a step call */
	REPLY_DONE,					/* the operation ran now */
	REPLY_DUPLICATE,			/* it ran before: the barrier kept its record */
	REPLY_NULL,					/* a compensation whose action never ran */
	REPLY_HANGING,				/* an action that came after its compensation */
	REPLY_PREPARED,				/* xa probe: the step's transaction is prepared */
	REPLY_ABSENT,				/* xa probe: it is not */
	REPLY_OTHER					/* an answer the worker does not know */
} StepReply;

/*
 * An error as it came back from the target, in its parts as libpq gives
 * them (or one the worker tells of itself: a connection failure, a
 * timeout), with its SQLSTATE as an integer (MAKE_SQLSTATE, ERRCODE_*).
 */
typedef struct RemoteError
{
	int			sqlstate;		/* 0: none */
	char	   *message;		/* the primary message */
	char	   *detail;
	char	   *hint;
	char	   *context;
	char	   *text;			/* all of it as users read it (remote_error_text) */
} RemoteError;

/*
 * Whether an error is worth another attempt.  A database's errors say it
 * by their SQLSTATE's class (remote_sqlstate_is_transient); a transport
 * whose errors do not follow those classes (HTTP) says it itself.
 */
typedef enum RemoteRetry
{
	RETRY_BY_SQLSTATE = 0,
	RETRY_TRANSIENT,
	RETRY_FINAL
} RemoteRetry;

typedef struct RemoteOutcome
{
	RemoteOutcomeKind kind;
	StepReply	reply;			/* OUTCOME_OK of a step call */
	RemoteError error;			/* OUTCOME_ERROR, OUTCOME_UNKNOWN */
	char	   *text;			/* first column of the last row returned, as text */
	char	   *result;			/* the step's result (jsonb text), if answered */
	bool		lost_in_batch;	/* OUTCOME_UNKNOWN: its batch, not the step, was lost */
	RemoteRetry retry;			/* OUTCOME_ERROR: transient or not */
	bool		applied;		/* OUTCOME_ERROR: it took effect all the same (an
								 * answer over saga.max_result_size): compensate */
	TimestampTz not_before;		/* the target asks not to be called before (0: any time) */
	int			participant_version;	/* of the connection's participant, if known */
} RemoteOutcome;


/*
 * What the user data of a socket in the worker's wait set is (its first
 * field says): a libpq connection, or a socket of the HTTP requests.
 */
typedef enum SocketOwner
{
	SOCKET_OWNER_LIBPQ = 0,
	SOCKET_OWNER_HTTP
} SocketOwner;

struct HttpCall;

/* Called when a call finishes; arg is what remote_call was given. */
typedef void (*RemoteDoneCallback) (void *arg, RemoteOutcome *outcome);

struct pg_conn;

extern void remote_init(MemoryContext cxt);
extern struct pg_conn *remote_connect_start(const char *const *keywords,
											const char *const *values,
											bool *no_descriptor);
extern void remote_connect_close(struct pg_conn *pg);
extern bool remote_connect_skipped_password(struct pg_conn *pg, bool need_password);
extern RemotePool *remote_pool_lookup(const char *target, Oid owner);
extern bool remote_pool_resolve(RemotePool *pool, char **error, int *sqlstate);
extern bool remote_pool_has_room(RemotePool *pool, bool batchable, bool priority);
extern void remote_pool_reserve(RemotePool *pool, bool batchable);
extern void remote_pool_release(RemotePool *pool, bool batchable);
extern bool remote_pool_batches(RemotePool *pool, TimestampTz now);
extern int	remote_pool_batch_steps(RemotePool *pool);
extern bool remote_pool_batch_holds(RemotePool *pool, uint64 turn, TimestampTz now,
									TimestampTz *until);
extern int	remote_pool_free(RemotePool *pool);
extern bool remote_pool_ready(RemotePool *pool);
extern RemoteConn *remote_call(RemotePool *pool, char *query, RemoteStepCall *step_call,
							   TimestampTz deadline, RemoteDoneCallback done, void *arg);
extern RemoteConn *remote_call_batch(RemotePool *pool, RemoteStepCall **calls, int n, void **args,
									 int grace_ms, RemoteDoneCallback done);
extern bool remote_pool_is_http(RemotePool *pool);
extern RemoteConn *remote_call_http(RemotePool *pool, struct HttpCall *call,
									const char *shown_path, int timeout_ms,
									RemoteDoneCallback done, void *arg);
extern const struct HttpTarget *remote_pool_http_target(RemotePool *pool);
extern void remote_abandon(RemoteConn *conn, void *arg);
extern int	remote_add_wait_events(WaitEventSet *set);
extern bool remote_wait_events_changed(void);
extern int	remote_count_sockets(void);
extern void remote_handle_socket(void *user_data, uint32 events);
extern void remote_check_deadlines(TimestampTz now);
extern TimestampTz remote_next_deadline(void);
extern void remote_close_idle(TimestampTz now);
extern void remote_invalidate_all(void);
extern bool remote_sqlstate_is_transient(int sqlstate);
extern bool remote_outcome_is_transient(const RemoteOutcome *outcome);
extern bool remote_participant_predates(const RemoteOutcome *outcome, int since);

/* remote_error.c: a remote error's parts, its text, raising it again */
struct pg_result;
extern void remote_error_from_result(RemoteError *error, const struct pg_result *res,
									 MemoryContext cxt);
extern void remote_error_from_fields(RemoteError *error, const char *const *fields,
									 MemoryContext cxt);
extern char *remote_error_text(const RemoteError *error);
extern void remote_error_raise(int elevel, const RemoteError *error, const char *target);

#endif							/* PG_SAGA_REMOTE_H */
