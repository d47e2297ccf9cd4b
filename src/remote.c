/*-------------------------------------------------------------------------
 *
 * remote.c
 *		Non-blocking libpq connections to targets, pooled per target and role.
 *
 * The worker drives every call from one event loop: a connection is opened
 * with PQconnectStartParams/PQconnectPoll, a call is one PQsendQuery whose
 * results are read as the socket becomes readable, and every connection in
 * progress or call in flight has a deadline.  Nothing here blocks.
 *
 * A call ends in one of three ways, and the difference matters to the
 * engine: OK (the remote transaction committed), ERROR (the remote reported
 * an error, so its implicit transaction rolled back: nothing took effect),
 * UNKNOWN (the connection broke or the call timed out after it was sent:
 * it may or may not have taken effect).
 *
 * Many step calls for one target can travel as one batch: one statement,
 * one round trip and one remote transaction, each step in a subtransaction
 * of its own (see "Batches" below); each step's outcome is handed to its
 * own callback.
 *
 * A step leaves nothing in the session for the next one: the participant's
 * functions clean up after each step that ran, and after a call that failed
 * (its transaction rolled back, which undoes all but session advisory locks
 * and prepared statements) the connection is cleaned before its next call.
 *
 * Connections stay open between calls and close after a minute unused, or
 * when their server or user mapping changes.  Each holds one of the file
 * descriptors PostgreSQL lets extensions use (AcquireExternalFD).  Once
 * up, each asks its participant which pg_saga set its objects up
 * (saga_participant.version()): the step statements it may send follow.
 *
 * A pool of an HTTP target makes its calls as requests (remote_http.c)
 * instead: each is a RemoteConn of the pool while it is in flight, so
 * saga.max_connections_per_target bounds them as it bounds connections,
 * and it holds a file descriptor too; it is freed when the request ends
 * (curl keeps its connections open itself).  Requests never batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "barrier.h"
#include "http_request.h"
#include "remote.h"
#include "remote_http.h"
#include "settings.h"
#include "target.h"

#define IDLE_CONNECTION_TIMEOUT_MS	60000

/*
 * The lifecycle of a connection (docs/architecture.md).  It is opened for a
 * call (CONNECTING), then is BUSY while a set-up command (below) or a call
 * is in flight and IDLE between calls, until it is closed: broken, unused
 * for a minute, or its call abandoned.  A connection starts CONNECTING
 * (conn_open), and conn_set_state moves it on (checked: conn_may_move).  An
 * HTTP request is a RemoteConn that is BUSY from its start
 * (remote_call_http) to its end, then freed.
 */
typedef enum ConnState
{
	CONN_CONNECTING,
	CONN_IDLE,
	CONN_BUSY
} ConnState;

/*
 * A command that readies the session, in flight on a BUSY connection
 * instead of a call: after connecting, the session settings; before a
 * call, what it needs; after a failed call, the cleaning (no call waits on
 * the connection then).  One at a time: conn_begin_setup starts one from
 * SETUP_NONE, and the command's result, or the end of the connection's
 * call, brings it back there.
 */
typedef enum SetupCommand
{
	SETUP_NONE,
	SETUP_SESSION,				/* after connecting: session settings */
	SETUP_VERSION,				/* then: the participant objects' version */
	SETUP_PREPARE,				/* prepare the statement of the call's kind */
	SETUP_TIMEOUT,				/* set the session's statement_timeout */
	SETUP_VALUES,				/* a batch round's values, apart from its query */
	SETUP_CLEAN					/* what a failed call may have left */
} SetupCommand;

/* Whether a step statement is prepared on a connection (one per call kind). */
typedef enum StepStatement
{
	STEP_STATEMENT_UNKNOWN,
	STEP_STATEMENT_READY,
	STEP_STATEMENT_UNAVAILABLE	/* could not prepare: calls use query text */
} StepStatement;


/*
 * After a call that failed, its transaction rolled back: what it does not
 * undo is a session advisory lock or a prepared statement the step made.
 */
#define CLEAN_AFTER_ERROR_SQL \
	"DO $pgsaga$ DECLARE n text; BEGIN " \
	"PERFORM pg_catalog.pg_advisory_unlock_all(), " \
	"pg_catalog.set_config('saga_participant.batch_values', '', false); " \
	"FOR n IN SELECT name FROM pg_catalog.pg_prepared_statements " \
	"WHERE name NOT LIKE 'pgsaga\\_%' LOOP " \
	"EXECUTE pg_catalog.format('DEALLOCATE %I', n); END LOOP; END $pgsaga$"

/* A pool whose participant cannot run a batch is not sent one for this long. */
#define BATCH_RETRY_MS 60000

/*
 * Batches.  A batch of step calls travels as one statement,
 * saga_participant.run_steps() (see pg_saga_participant.sql), whose
 * arguments are arrays, element i step i's; it runs the steps in the
 * statement's transaction, each in a subtransaction of its own, and
 * answers a row per step it ran: the step's reply and result, or the error
 * that rolled it back alone.  Its transaction commits when it returns, so
 * the steps it answered take effect together, or, if the statement or its
 * commit fails, none does.  A step's error costs its batch-mates nothing.
 *
 * The statement runs under the allowance below as its statement_timeout
 * (set on the session when it changes, as a step alone's own timeout is).
 * When it fires, run_steps() rolls back the step that was running, answers
 * it as cut, and returns: the steps before it take effect, and the worker
 * sends the ones after it in the next round, a statement of their own.
 * The step that was cut goes again alone, where only its own timeout
 * holds, if it took half the allowance or more itself (the slow one), or
 * with the next round if the round as a whole was long.  So a slow step
 * delays its batch-mates by about the allowance and one round, not by its
 * own time.  A step's own timeout is checked when it ends (run_steps()
 * fails it with 57014 there), and in any case it is cut at the allowance.
 *
 * The allowance follows the target's pace: at least Max(saga.batch_wait,
 * 20 ms), and BATCH_ALLOWANCE_PACE times what a whole batch there takes now
 * (of the batches it did not cut, so that slow steps do not raise it), so
 * that a server saturated by a backlog, where a statement may wait for a
 * core for longer than 20 ms, does not cut the steps it is merely slow to
 * run.  A batch keeps the allowance it was first sent with, for all its
 * rounds.
 */
#define BATCH_MIN_ALLOWANCE_MS 20
#define BATCH_ALLOWANCE_PACE 2
#define BATCH_MAX_ALLOWANCE_MS 1000

typedef enum BatchStepState
{
	BATCH_STEP_WAITING,			/* to be sent in the next round */
	BATCH_STEP_SENT,			/* in the round in flight */
	BATCH_STEP_RAN,				/* answered; takes effect if its round commits */
	BATCH_STEP_COMMITTED,		/* ran, and its round committed */
	BATCH_STEP_FAILED,			/* its error rolled it back alone */
	BATCH_STEP_NOT_SENT			/* did not run here: to be sent alone */
} BatchStepState;

typedef struct BatchStep
{
	RemoteStepCall *call;
	void	   *arg;			/* the callback's argument; NULL once abandoned */
	BatchStepState state;
	bool		cut;			/* the allowance ran out while it ran */
	double		ms;				/* how long it ran, as the participant timed it */
	char	   *reply;
	char	   *result;
	RemoteError error;			/* BATCH_STEP_FAILED */
} BatchStep;

/* The columns of run_steps()'s rows (see RUN_STEPS_SQL in barrier.c). */
typedef enum BatchColumn
{
	BATCH_COL_INDEX,
	BATCH_COL_REPLY,
	BATCH_COL_RESULT,
	BATCH_COL_SQLSTATE,			/* then message, detail, hint, context */
	BATCH_COL_CUT = BATCH_COL_SQLSTATE + 5,
	BATCH_COL_MS,
	BATCH_COLUMNS
} BatchColumn;

struct RemoteConn
{
	SocketOwner owner;			/* SOCKET_OWNER_LIBPQ: first, see SocketOwner */
	dlist_node	node;			/* in the pool's list */
	HttpTransfer *http;			/* an HTTP request in flight, instead of pg */
	bool		holds_request_fd;	/* an HTTP request's descriptor is counted */
	RemotePool *pool;
	PGconn	   *pg;
	ConnState	state;
	PostgresPollingStatusType poll; /* while connecting: what to wait for */
	bool		need_flush;		/* query not fully sent yet */
	uint32		wait_mask;		/* what the worker's wait set waits for */
	char	   *query;			/* to send once connected */
	RemoteStepCall *step_call;	/* or, if set, this as the step statement */
	TimestampTz deadline;		/* of the connection attempt or the call */
	TimestampTz sent_at;		/* the step call went on an open connection */
	int64		call_timeout_us;	/* the call's deadline, once it is sent */
	SetupCommand setup;			/* in flight instead of the call, if any */
	StepStatement statements[STEP_CALL_KINDS];	/* by StepCallKind */
	int			participant_version;	/* PARTICIPANT_VERSION_UNKNOWN: no version() */
	/* flags independent of the state (a set-up command may set them) */
	bool		sent_prepared;	/* the call in flight is a prepared statement */
	bool		discard;		/* cannot be cleaned, or must not be used: close
								 * after this call, or this cleaning */
	bool		refused;		/* the batch could not run: not sent */
	/* a batch (see "Batches" above) */
	int			nbatch;
	BatchStep  *batch;
	int			batch_grace_ms; /* a round's deadline past its allowance */
	int		   *round;			/* the steps of the round in flight, in order */
	int			nround;
	int			rounds;			/* sent so far */
	bool		batch_retried;	/* a round cancelled as a whole was sent again */
	bool		batch_cut;		/* a step of it was cut by the allowance */
	int			round_allowance_ms; /* the batch's allowance; 0 until it is sent */
	int			session_timeout_ms; /* statement_timeout set, -1 if unknown */
	bool		round_values_set;	/* the next round's values are in the session */
	char		values_token[32];	/* under which they are kept there */
	TimestampTz idle_since;
	RemoteDoneCallback done;
	void	   *arg;
	/* the call's outcome as results arrive */
	bool		got_error;
	RemoteError error;
	char	   *reply;			/* first column of the last row returned */
	char	   *result;		/* second column of that row, if any */
};

typedef struct PoolKey
{
	char		target[NAMEDATALEN];
	Oid			owner;
} PoolKey;

struct RemotePool
{
	PoolKey		key;			/* hash key */
	bool		resolved;		/* keywords/values are current */
	const char **keywords;
	const char **values;
	bool		need_password;	/* owner is not a superuser */
	bool		is_http;		/* an HTTP target: calls are requests */
	HttpTarget	http;			/* its options, in remote_cxt */
	int			nconns;
	int			nactive;		/* connections connecting or busy */
	int			reserved;		/* calls planned, not yet sent */
	int			reserved_batchable; /* of them, steps that may share a batch */
	TimestampTz no_batch_until; /* the batch statement could not run there */
	double		step_call_ms;	/* a step's mean time in its calls; -1: none yet */
	double		batch_ms;		/* a batch's mean time, of those the allowance
								 * did not cut; -1: none yet */
	uint64		held_turn;		/* the worker's turn that held, of late ... */
	int			held;			/* ... this many steps (remote_pool_batch_holds) */
	dlist_head	conns;
};

static MemoryContext remote_cxt = NULL;
static HTAB *pools = NULL;
static int	nsockets = 0;
static bool events_changed = true;	/* the worker must rebuild its wait set */

static void conn_close(RemoteConn *conn);
static void note_wait_change(RemoteConn *conn);

/* Remote notices (such as "already exists, skipping") are not ours to log. */
static void
ignore_notice(void *arg, const char *message)
{
}
static void conn_send(RemoteConn *conn);
static void conn_finish_call(RemoteConn *conn, RemoteOutcomeKind kind);
static void conn_setup_done(RemoteConn *conn);
static bool conn_ask_version(RemoteConn *conn);
static bool participant_has(RemoteConn *conn, StepCallKind kind);
static void conn_start_clean(RemoteConn *conn);
static void set_need_flush(RemoteConn *conn, bool need);

void
remote_init(MemoryContext cxt)
{
	HASHCTL		ctl;

	remote_cxt = AllocSetContextCreate(cxt, "pg_saga remote", ALLOCSET_DEFAULT_SIZES);
	remote_http_init(cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PoolKey);
	ctl.entrysize = sizeof(RemotePool);
	ctl.hcxt = remote_cxt;
	pools = hash_create("pg_saga pools", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

RemotePool *
remote_pool_lookup(const char *target, Oid owner)
{
	PoolKey		key;
	RemotePool *pool;
	bool		found;

	memset(&key, 0, sizeof(key));
	strlcpy(key.target, target, NAMEDATALEN);
	key.owner = owner;
	pool = hash_search(pools, &key, HASH_ENTER, &found);
	if (!found)
	{
		pool->resolved = false;
		pool->keywords = NULL;
		pool->values = NULL;
		pool->nconns = 0;
		pool->nactive = 0;
		pool->reserved = 0;
		pool->reserved_batchable = 0;
		pool->no_batch_until = 0;
		pool->step_call_ms = -1;
		pool->batch_ms = -1;
		pool->held_turn = 0;
		pool->held = 0;
		pool->is_http = false;
		memset(&pool->http, 0, sizeof(pool->http));
		dlist_init(&pool->conns);
	}
	return pool;
}

static void
free_conninfo(RemotePool *pool)
{
	int			i;

	if (pool->keywords == NULL)
		return;
	for (i = 0; pool->keywords[i] != NULL; i++)
	{
		pfree((char *) pool->keywords[i]);
		pfree((char *) pool->values[i]);
	}
	pfree(pool->keywords);
	pfree(pool->values);
	pool->keywords = pool->values = NULL;
}

/* Frees what an HTTP pool kept of its target (secrets included). */
static void
free_http_target(RemotePool *pool)
{
	ListCell   *lc;

	if (pool->http.url == NULL)
		return;
	pfree(pool->http.url);
	if (pool->http.ca_file)
		pfree(pool->http.ca_file);
	if (pool->http.bearer_token)
		pfree(pool->http.bearer_token);
	foreach(lc, pool->http.headers)
		pfree(lfirst(lc));
	list_free(pool->http.headers);
	memset(&pool->http, 0, sizeof(pool->http));
}

/* Reads an HTTP target's options and the owner's mapping (see target_http). */
static bool
resolve_http(RemotePool *pool, char **error, int *sqlstate)
{
	HttpTarget	http;
	MemoryContext old;
	ListCell   *lc;

	if (!target_http(pool->key.target, pool->key.owner, &http, error, sqlstate))
		return false;
	free_http_target(pool);
	old = MemoryContextSwitchTo(remote_cxt);
	pool->http.url = pstrdup(http.url);
	pool->http.ca_file = http.ca_file ? pstrdup(http.ca_file) : NULL;
	pool->http.bearer_token = http.bearer_token ? pstrdup(http.bearer_token) : NULL;
	foreach(lc, http.headers)
		pool->http.headers = lappend(pool->http.headers, pstrdup(lfirst(lc)));
	MemoryContextSwitchTo(old);
	pool->resolved = true;
	return true;
}

/*
 * Reads the pool's server and user mapping (inside a transaction).  On
 * failure returns false with a message and SQLSTATE for the step.
 */
bool
remote_pool_resolve(RemotePool *pool, char **error, int *sqlstate)
{
	const char **keywords;
	const char **values;
	bool		need_password;
	MemoryContext old;
	int			n,
				i;

	if (pool->resolved)
		return true;
	pool->is_http = target_kind(pool->key.target) == TARGET_HTTP;
	if (pool->is_http)
		return resolve_http(pool, error, sqlstate);
	if (!target_conninfo(pool->key.target, pool->key.owner, &keywords, &values,
						 &need_password, error, sqlstate))
		return false;

	free_conninfo(pool);
	for (n = 0; keywords[n] != NULL; n++)
		;
	old = MemoryContextSwitchTo(remote_cxt);
	pool->keywords = palloc0((n + 1) * sizeof(char *));
	pool->values = palloc0((n + 1) * sizeof(char *));
	for (i = 0; i < n; i++)
	{
		pool->keywords[i] = pstrdup(keywords[i]);
		pool->values[i] = pstrdup(values[i]);
	}
	MemoryContextSwitchTo(old);
	pool->need_password = need_password;
	pool->resolved = true;
	return true;
}

static List *all_connections(void);

/* Forgets every resolved target: servers or user mappings changed. */
void
remote_invalidate_all(void)
{
	HASH_SEQ_STATUS seq;
	RemotePool *pool;
	List	   *conns;
	ListCell   *lc;

	if (pools == NULL)
		return;
	hash_seq_init(&seq, pools);
	while ((pool = hash_seq_search(&seq)) != NULL)
		pool->resolved = false;
	/* idle connections used the old options: close them */
	conns = all_connections();
	foreach(lc, conns)
	{
		RemoteConn *conn = lfirst(lc);

		if (conn->state == CONN_IDLE)
			conn_close(conn);
	}
	list_free(conns);
}

bool
remote_pool_ready(RemotePool *pool)
{
	return pool->resolved;
}

static RemoteConn *
idle_conn(RemotePool *pool)
{
	dlist_iter	iter;

	dlist_foreach(iter, &pool->conns)
	{
		RemoteConn *conn = dlist_container(RemoteConn, node, iter.cur);

		if (conn->state == CONN_IDLE)
			return conn;
	}
	return NULL;
}

/* Connections the calls planned on pool need: batchable steps share them. */
static int
pool_connections_needed(RemotePool *pool, int single, int batchable)
{
	int			size = Max(saga_batch_size, 1);

	return single + (batchable + size - 1) / size;
}

/* May steps of this pool travel in batches now? */
bool
remote_pool_batches(RemotePool *pool, TimestampTz now)
{
	return saga_batch_size > 1 && pool->no_batch_until <= now && !pool->is_http;
}

/*
 * Connections of a pool that calls of sagas that do not go first may use:
 * all but one, which stays for the sagas past their decision or holding
 * locks (see engine_goes_first).  Otherwise calls blocked on the row locks
 * of prepared xa branches could hold every connection while the COMMIT
 * PREPARED that would release those locks waits for one.
 */
static int
pool_limit(bool priority)
{
	if (priority || saga_max_connections_per_target == 1)
		return saga_max_connections_per_target;
	return saga_max_connections_per_target - 1;
}

/*
 * Could one more call start on this pool now?  A batchable step fits as
 * long as the batches of the steps planned so far need no more connections
 * than are free.  priority: the saga goes first.
 */
bool
remote_pool_has_room(RemotePool *pool, bool batchable, bool priority)
{
	int			single = pool->reserved - pool->reserved_batchable;
	int			batched = pool->reserved_batchable;

	if (batchable)
		batched++;
	else
		single++;
	return pool->nactive + pool_connections_needed(pool, single, batched) <=
		pool_limit(priority);
}

/* Holds a place for a call that will be sent after the worker's commit. */
void
remote_pool_reserve(RemotePool *pool, bool batchable)
{
	pool->reserved++;
	if (batchable)
		pool->reserved_batchable++;
}

/* Gives the place back: the call is being sent now. */
void
remote_pool_release(RemotePool *pool, bool batchable)
{
	if (pool->reserved > 0)
		pool->reserved--;
	if (batchable && pool->reserved_batchable > 0)
		pool->reserved_batchable--;
}

/* for the checks' messages, in enum order */
static const char *const conn_state_names[] = {"connecting", "idle", "busy"};
static const char *const setup_names[] = {"none", "session", "version", "prepare", "timeout", "values",
"clean"};
StaticAssertDecl(lengthof(setup_names) == SETUP_CLEAN + 1, "a name for each set-up command");

/*
 * May a connection move from one state to the other?  Connecting is only
 * where a connection starts, and an idle one has nothing to end.
 */
static bool
conn_may_move(ConnState from, ConnState to)
{
	return to != CONN_CONNECTING && !(from == CONN_IDLE && to == CONN_IDLE);
}

static void
conn_set_state(RemoteConn *conn, ConnState state)
{
	bool		was_active = conn->state != CONN_IDLE;
	bool		is_active = state != CONN_IDLE;

	SAGA_CHECK_STATE(conn_may_move(conn->state, state),
					 "a connection to target \"%s\" moved from %s to %s",
					 conn->pool->key.target, conn_state_names[conn->state],
					 conn_state_names[state]);
	conn->pool->nactive += (int) is_active - (int) was_active;
	conn->state = state;
	note_wait_change(conn);
}

/* Notes that the set-up command cmd is being sent on conn (see SetupCommand). */
static void
conn_begin_setup(RemoteConn *conn, SetupCommand cmd)
{
	SAGA_CHECK_STATE(conn->setup == SETUP_NONE,
					 "set-up command %s begun on a connection to target \"%s\" while %s is in flight",
					 setup_names[cmd], conn->pool->key.target, setup_names[conn->setup]);
	conn->setup = cmd;
}

static void
free_text(char **text)
{
	if (*text)
		pfree(*text);
	*text = NULL;
}

static void
clear_error(RemoteError *error)
{
	free_text(&error->message);
	free_text(&error->detail);
	free_text(&error->hint);
	free_text(&error->context);
	error->sqlstate = 0;
}

static void free_step_call(RemoteStepCall *call);

static void
free_batch(RemoteConn *conn)
{
	int			i;

	for (i = 0; i < conn->nbatch; i++)
	{
		free_step_call(conn->batch[i].call);
		free_text(&conn->batch[i].reply);
		free_text(&conn->batch[i].result);
		clear_error(&conn->batch[i].error);
	}
	if (conn->batch)
		pfree(conn->batch);
	if (conn->round)
		pfree(conn->round);
	conn->batch = NULL;
	conn->round = NULL;
	conn->nbatch = conn->nround = conn->rounds = 0;
	conn->round_allowance_ms = 0;
	conn->batch_retried = conn->batch_cut = false;
}

static void
free_step_call(RemoteStepCall *call)
{
	int			i;

	if (call == NULL)
		return;
	for (i = 0; i < STEP_CALL_MAX_NARGS; i++)
		if (call->values[i])
			pfree((char *) call->values[i]);
	pfree(call);
}

/* Frees the query of the call on conn, and a batch's answer. */
static void
free_call(RemoteConn *conn)
{
	if (conn->query)
		pfree(conn->query);
	conn->query = NULL;
	free_batch(conn);
	free_step_call(conn->step_call);
	conn->step_call = NULL;
}

/* A copy of call in the remote context. */
static RemoteStepCall *
copy_step_call(RemoteStepCall *call)
{
	RemoteStepCall *copy = MemoryContextAllocZero(remote_cxt, sizeof(RemoteStepCall));
	int			i;

	for (i = 0; i < call->nargs; i++)
		if (call->values[i])
			copy->values[i] = MemoryContextStrdup(remote_cxt, call->values[i]);
	copy->kind = call->kind;
	copy->nargs = call->nargs;
	copy->timeout_ms = call->timeout_ms;
	return copy;
}

static void
conn_close(RemoteConn *conn)
{
	RemotePool *pool = conn->pool;

	if (conn->pg)
	{
		remote_connect_close(conn->pg);
		nsockets--;
	}
	if (conn->http)
	{
		remote_http_cancel(conn->http);
		conn->http = NULL;
	}
	/* by the connection's own mark: the pool's kind changes when its target is re-read */
	if (conn->holds_request_fd)
		ReleaseExternalFD();
	if (conn->state != CONN_IDLE)
		pool->nactive--;
	dlist_delete(&conn->node);
	pool->nconns--;
	events_changed = true;
	free_call(conn);
	clear_error(&conn->error);
	free_text(&conn->reply);
	free_text(&conn->result);
	pfree(conn);
}

/*
 * Starts a connection with the options target_conninfo() made, without
 * waiting: the half of connecting that the worker's connections, which
 * its event loop finishes (remote_handle_socket), and a user backend's,
 * which waits for it (remote_backend.c), share.  The connection holds one
 * of the file descriptors PostgreSQL lets extensions use, until
 * remote_connect_close().  NULL when none is free (*no_descriptor, if
 * given, says so) or libpq is out of memory.
 */
PGconn *
remote_connect_start(const char *const *keywords, const char *const *values,
					 bool *no_descriptor)
{
	PGconn	   *pg;

	if (no_descriptor)
		*no_descriptor = false;
	if (!AcquireExternalFD())
	{
		if (no_descriptor)
			*no_descriptor = true;
		return NULL;
	}
	pg = PQconnectStartParams(keywords, values, false);
	if (pg == NULL)
	{
		ReleaseExternalFD();
		return NULL;
	}
	PQsetNoticeProcessor(pg, ignore_notice, NULL);
	return pg;
}

/* Closes a connection remote_connect_start() made, and gives its descriptor back. */
void
remote_connect_close(PGconn *pg)
{
	PQfinish(pg);
	ReleaseExternalFD();
}

/*
 * Did the target let in a role that must use a password without asking
 * for it (trust, peer)?  Then the connection is not to be used: as in
 * dblink and postgres_fdw, a non-superuser may reach a target only with a
 * password, and the target must have used it.
 */
bool
remote_connect_skipped_password(PGconn *pg, bool need_password)
{
	return need_password && !PQconnectionUsedPassword(pg);
}

/* Starts a new connection; NULL when no file descriptor is free. */
static RemoteConn *
conn_open(RemotePool *pool)
{
	RemoteConn *conn;
	PGconn	   *pg;

	pg = remote_connect_start(pool->keywords, pool->values, NULL);
	if (pg == NULL)
		return NULL;
	/* a refused login says its SQLSTATE in the text (connect_failure_sqlstate) */
	PQsetErrorVerbosity(pg, PQERRORS_VERBOSE);
	conn = MemoryContextAllocZero(remote_cxt, sizeof(RemoteConn));
	conn->pool = pool;
	conn->pg = pg;
	conn->state = CONN_CONNECTING;
	conn->session_timeout_ms = -1;
	pool->nactive++;
	conn->poll = PGRES_POLLING_WRITING;
	dlist_push_tail(&pool->conns, &conn->node);
	pool->nconns++;
	nsockets++;
	events_changed = true;
	return conn;
}

/*
 * Sends query on a connection of pool and calls done(arg, outcome) when it
 * ends.  With step_call, the call runs as the prepared step statement where
 * the connection has it, and as query where it cannot.  Returns NULL,
 * having called nothing, if no connection can be had now; the caller
 * treats that as a transient failure.
 */
/* An idle connection of pool, or a new one; NULL if no descriptor is free. */
static RemoteConn *
conn_for_call(RemotePool *pool)
{
	RemoteConn *conn = idle_conn(pool);

	if (conn == NULL)
	{
		conn = conn_open(pool);
		if (conn == NULL)
			return NULL;
		conn->deadline = GetCurrentTimestamp() +
			(int64) saga_connect_timeout_ms * 1000;
	}
	return conn;
}

/* Sends the call set up on conn now, or once it is connected. */
static void
conn_start_call(RemoteConn *conn, TimestampTz deadline)
{
	conn->got_error = false;
	clear_error(&conn->error);
	/* the call's deadline runs from when it is sent */
	conn->call_timeout_us = deadline - GetCurrentTimestamp();
	conn->sent_at = 0;
	if (conn->state == CONN_IDLE)
	{
		conn->deadline = deadline;
		conn->sent_at = GetCurrentTimestamp();
		conn_send(conn);
	}
}

/*
 * Does the call on conn pace the allowance (batch_allowance_ms)?  A batch
 * that committed and whose steps the allowance did not cut short: one that
 * waited for a slow step until the allowance, or a slow step sent alone,
 * would raise it for the very steps it exists to cut short.
 */
static bool
batch_paces_allowance(RemoteConn *conn, RemoteOutcomeKind kind)
{
	return conn->nbatch > 1 && kind == OUTCOME_OK && !conn->batch_cut;
}

/*
 * How long a step's call took, for the batch sizes of its pool: a moving
 * average of the time per step of the calls sent on open connections (a
 * batch's time shared by its steps), so that it follows the workload; and,
 * for the allowance, the time of the batches it did not cut.
 */
static void
pool_time_call(RemoteConn *conn, RemoteOutcomeKind kind)
{
	RemotePool *pool = conn->pool;
	double		ms;

	if (conn->sent_at == 0 || kind == OUTCOME_NOT_SENT ||
		(conn->step_call == NULL && conn->nbatch == 0))
		return;
	ms = (double) (GetCurrentTimestamp() - conn->sent_at) / 1000.0 / Max(conn->nbatch, 1);
	pool->step_call_ms = pool->step_call_ms < 0 ? ms : pool->step_call_ms * 0.875 + ms * 0.125;
	if (batch_paces_allowance(conn, kind))
	{
		ms *= conn->nbatch;
		pool->batch_ms = pool->batch_ms < 0 ? ms : pool->batch_ms * 0.875 + ms * 0.125;
	}
}

/*
 * Most steps of pool one batch should carry, as long as connections are
 * free: as many as take saga.batch_wait together, judged by the time its
 * steps took so far, and at most saga.batch_size.  Quick steps (a
 * transfer's UPDATE: about a millisecond) fill a batch; slow ones go on
 * connections of their own, where they wait for no other.  Until a step
 * was timed, one each.
 */
int
remote_pool_batch_steps(RemotePool *pool)
{
	int			size = Max(saga_batch_size, 1);

	if (pool->step_call_ms < 0 || saga_batch_wait_ms == 0)
		return 1;
	if (pool->step_call_ms * size <= saga_batch_wait_ms)
		return size;
	return Max((int) (saga_batch_wait_ms / pool->step_call_ms), 1);
}

/*
 * Should the steps of pool that may share a batch wait for the batch in
 * flight there, rather than start another on a free connection?  While the
 * pool's steps are quick enough to share (remote_pool_batch_steps), the
 * steps that become ready during a batch go together once it is back: on a
 * busy server one batch in flight at a time carries more steps each, and a
 * call costs the participant far more than a step in it (A/B in
 * BENCHMARKS.md, "One batch in flight while steps are quick": 15% less CPU
 * on the participants at 16 clients, 18-20% more sagas a second in the
 * closed loop, 5-10% in the open loop and bursts).  Only while that batch
 * is young (past twice the pool's mean batch time, and never past
 * saga.batch_wait, it holds nothing back), and
 * only as many steps a turn as would not fill a batch of their own (turn
 * numbers the worker's turns): a backlog still takes every free connection,
 * with batches as full as before.  *until: when the hold ends.
 */
bool
remote_pool_batch_holds(RemotePool *pool, uint64 turn, TimestampTz now, TimestampTz *until)
{
	dlist_iter	iter;
	int64		hold_us;
	int			full = remote_pool_batch_steps(pool);

	if (pool->held_turn != turn)
	{
		pool->held_turn = turn;
		pool->held = 0;
	}
	if (saga_batch_wait_ms == 0 || pool->batch_ms < 0 || full <= 1 || pool->held >= full)
		return false;
	hold_us = (int64) (Min(pool->batch_ms * 2, (double) saga_batch_wait_ms) * 1000);
	dlist_foreach(iter, &pool->conns)
	{
		RemoteConn *conn = dlist_container(RemoteConn, node, iter.cur);

		if (conn->state == CONN_BUSY && conn->nbatch > 0 && conn->sent_at != 0 &&
			conn->sent_at + hold_us > now)
		{
			*until = conn->sent_at + hold_us;
			pool->held++;
			return true;
		}
	}
	return false;
}

/*
 * Connections of pool that batches may use now (idle or not yet open), but
 * the one kept for the sagas that go first.
 */
int
remote_pool_free(RemotePool *pool)
{
	return Max(pool_limit(false) - pool->nactive, 1);
}

RemoteConn *
remote_call(RemotePool *pool, char *query, RemoteStepCall *step_call,
			TimestampTz deadline, RemoteDoneCallback done, void *arg)
{
	RemoteConn *conn = conn_for_call(pool);

	if (conn == NULL)
		return NULL;
	conn->query = MemoryContextStrdup(remote_cxt, query);
	conn->step_call = step_call ? copy_step_call(step_call) : NULL;
	conn->done = done;
	conn->arg = arg;
	conn_start_call(conn, deadline);
	return conn;
}

bool
remote_pool_is_http(RemotePool *pool)
{
	return pool->is_http;
}

const HttpTarget *
remote_pool_http_target(RemotePool *pool)
{
	return &pool->http;
}

/* An HTTP request ended: the call's outcome, and its place in the pool freed. */
static void
http_call_done(void *arg, RemoteOutcome *outcome)
{
	RemoteConn *conn = (RemoteConn *) arg;
	RemoteDoneCallback done = conn->done;
	void	   *done_arg = conn->arg;

	conn->http = NULL;			/* remote_http.c frees it */
	conn_close(conn);
	if (done)
		done(done_arg, outcome);
}

/*
 * Sends call to the pool's HTTP target, as a call of the pool that lasts
 * until the request ends.  NULL if no file descriptor is free or curl
 * cannot take it.  shown_path is the path as the step wrote it, for
 * messages.
 */
RemoteConn *
remote_call_http(RemotePool *pool, HttpCall *call, const char *shown_path, int timeout_ms,
				 RemoteDoneCallback done, void *arg)
{
	RemoteConn *conn;

	Assert(pool->is_http);
	if (!AcquireExternalFD())
		return NULL;
	conn = MemoryContextAllocZero(remote_cxt, sizeof(RemoteConn));
	conn->pool = pool;
	conn->holds_request_fd = true;
	conn->state = CONN_BUSY;
	conn->deadline = DT_NOEND;	/* curl ends it at its timeout */
	conn->session_timeout_ms = -1;
	conn->done = done;
	conn->arg = arg;
	pool->nactive++;
	dlist_push_tail(&pool->conns, &conn->node);
	pool->nconns++;
	conn->http = remote_http_start(pool->key.target, &pool->http, call, shown_path, timeout_ms,
								   http_call_done, conn);
	if (conn->http == NULL)
	{
		conn->done = NULL;
		conn_close(conn);
		return NULL;
	}
	return conn;
}

/*
 * Sends n step calls (of kind CALL_BATCH or CALL_BATCH_BOUND) as one batch
 * on a connection of pool; done(args[i], outcome) is called for each step
 * when the batch ends, in order.  If any step binds values, every step
 * goes through the statement that binds them (one statement per batch).
 * A round of the batch may take its allowance and grace_ms.  Returns NULL,
 * having called nothing, if no connection can be had now.
 */
RemoteConn *
remote_call_batch(RemotePool *pool, RemoteStepCall **calls, int n, void **args,
				  int grace_ms, RemoteDoneCallback done)
{
	RemoteConn *conn;
	bool		bound = false;
	int			i;

	Assert(n > 0);
	for (i = 0; i < n; i++)
		bound |= calls[i]->kind == CALL_BATCH_BOUND;
	conn = conn_for_call(pool);
	if (conn == NULL)
		return NULL;
	conn->query = MemoryContextStrdup(remote_cxt, "");
	/* the kind of call, for the set-up the connection needs */
	conn->step_call = copy_step_call(calls[0]);
	if (bound)
		barrier_batch_as_bound(conn->step_call);
	conn->nbatch = n;
	conn->round_values_set = false;
	conn->batch = MemoryContextAllocZero(remote_cxt, sizeof(BatchStep) * n);
	conn->round = MemoryContextAlloc(remote_cxt, sizeof(int) * n);
	for (i = 0; i < n; i++)
	{
		Assert(STEP_CALL_IS_BATCH(calls[i]->kind));
		conn->batch[i].call = copy_step_call(calls[i]);
		if (bound)
			barrier_batch_as_bound(conn->batch[i].call);
		conn->batch[i].arg = args[i];
	}
	conn->batch_grace_ms = grace_ms;
	conn->done = done;
	conn->arg = NULL;
	/* until it is connected and set up; each round has a deadline of its own */
	conn_start_call(conn, GetCurrentTimestamp() +
					((int64) BATCH_MAX_ALLOWANCE_MS + grace_ms) * 1000);
	return conn;
}

static void
set_need_flush(RemoteConn *conn, bool need)
{
	conn->need_flush = need;
	note_wait_change(conn);
}

/* Has any socket, or what to wait for on it, changed since last asked? */
bool
remote_wait_events_changed(void)
{
	bool		changed = remote_http_events_changed() || events_changed;

	events_changed = false;
	return changed;
}

/* An error the worker tells of itself (the connection, a timeout). */
static void
conn_set_error(RemoteConn *conn, int sqlstate, const char *message)
{
	conn->got_error = true;
	clear_error(&conn->error);
	conn->error.sqlstate = sqlstate;
	conn->error.message = MemoryContextStrdup(remote_cxt, message ? message : "unknown error");
}

/* An error the target reported, kept in its parts in the worker's context. */
static void
keep_result_error(RemoteError *error, PGresult *res)
{
	clear_error(error);
	remote_error_from_result(error, res, remote_cxt);
}

static void
conn_keep_result_error(RemoteConn *conn, PGresult *res)
{
	conn->got_error = true;
	keep_result_error(&conn->error, res);
}

/* A copy of error in the current memory context, with its text for users. */
static void
copy_error(RemoteError *to, const RemoteError *from)
{
	to->sqlstate = from->sqlstate;
	to->message = from->message ? pstrdup(from->message) : NULL;
	to->detail = from->detail ? pstrdup(from->detail) : NULL;
	to->hint = from->hint ? pstrdup(from->hint) : NULL;
	to->context = from->context ? pstrdup(from->context) : NULL;
	to->text = from->message ? remote_error_text(from) : NULL;
}

/* What the participant's barrier answered, from the first column of its row. */
static StepReply
parse_reply(const char *text)
{
	static const struct
	{
		const char *text;
		StepReply	reply;
	}			replies[] = {
		{"done", REPLY_DONE}, {"duplicate", REPLY_DUPLICATE}, {"null", REPLY_NULL},
		{"hanging", REPLY_HANGING}, {"prepared", REPLY_PREPARED}, {"absent", REPLY_ABSENT}
	};
	int			i;

	if (text == NULL)
		return REPLY_NONE;
	for (i = 0; i < lengthof(replies); i++)
		if (strcmp(text, replies[i].text) == 0)
			return replies[i].reply;
	return REPLY_OTHER;
}

/* The libpq error text of the connection, without its trailing newline. */
static char *
conn_error_text(RemoteConn *conn)
{
	char	   *msg = pstrdup(PQerrorMessage(conn->pg));
	int			len = strlen(msg);

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	return msg;
}

/*
 * Sends what the session needs before the step statement can run: its
 * preparation, then the call's statement_timeout.  Returns false when
 * nothing is needed.  A session setting made by the step's own SQL goes
 * unnoticed here; the worker's own deadline for the call still holds.
 */
static bool
send_step_setup(RemoteConn *conn)
{
	StepCallKind kind = conn->step_call->kind;
	StepStatement statement = conn->statements[kind];

	/* a participant that says it lacks the function: the call goes as text */
	if (statement == STEP_STATEMENT_UNKNOWN && !participant_has(conn, kind))
		statement = conn->statements[kind] = STEP_STATEMENT_UNAVAILABLE;
	if (statement == STEP_STATEMENT_UNKNOWN && !STEP_CALL_IS_BATCH(kind))
	{
		const Oid  *types;
		int			nargs;
		const char *sql = barrier_call_statement(kind, &types, &nargs);

		conn_begin_setup(conn, SETUP_PREPARE);
		return PQsendPrepare(conn->pg, barrier_call_statement_name(kind), sql, nargs, types);
	}
	/*
	 * a call that binds values goes with its parameters also where it could
	 * not be prepared; a batch sets its allowance itself (batch_send_round)
	 */
	if ((statement == STEP_STATEMENT_READY || kind == CALL_BOUND) && !STEP_CALL_IS_BATCH(kind) &&
		conn->session_timeout_ms != conn->step_call->timeout_ms)
	{
		char		sql[64];

		snprintf(sql, sizeof(sql), "SET statement_timeout = %d", conn->step_call->timeout_ms);
		conn_begin_setup(conn, SETUP_TIMEOUT);
		return PQsendQuery(conn->pg, sql);
	}
	return false;
}

/*
 * The step statement is gone from the session (DEALLOCATE in a step's SQL,
 * or a pooler between worker and target that does not keep sessions): the
 * call did not run.  It is reported as a connection failure, so it is
 * retried, and this connection sends step calls as text from now on.
 */
static void
step_statement_lost(RemoteConn *conn)
{
	char	   *message = psprintf("the step statement prepared on this connection is gone (%s); "
								   "the call is sent again as text", remote_error_text(&conn->error));

	conn->statements[conn->step_call->kind] = STEP_STATEMENT_UNAVAILABLE;
	conn_set_error(conn, ERRCODE_CONNECTION_EXCEPTION, message);
	pfree(message);
}

/*
 * run_steps() is not there (participant objects of
 * an earlier version, or dropped): nothing of the batch ran.  Its steps go
 * alone, on this pool for a while.
 */
static void
batch_refused(RemoteConn *conn)
{
	conn->statements[conn->step_call->kind] = STEP_STATEMENT_UNAVAILABLE;
	conn->pool->no_batch_until = GetCurrentTimestamp() + BATCH_RETRY_MS * INT64CONST(1000);
	conn->refused = true;
}

/* ---- batches: see "Batches" above ---- */

/*
 * How long a step of pool may hold its batch-mates now (see "Batches"
 * above): in steps of BATCH_MIN_ALLOWANCE_MS, so that it changes seldom and
 * a batch seldom needs a SET of its own for it.
 */
static int
batch_allowance_ms(RemotePool *pool)
{
	int			allowance = Max(saga_batch_wait_ms, BATCH_MIN_ALLOWANCE_MS);

	if (pool->batch_ms > 0)
	{
		int			paced = (int) Min(pool->batch_ms * BATCH_ALLOWANCE_PACE,
									  BATCH_MAX_ALLOWANCE_MS);
		int			rounded = (paced + BATCH_MIN_ALLOWANCE_MS - 1) /
			BATCH_MIN_ALLOWANCE_MS * BATCH_MIN_ALLOWANCE_MS;

		allowance = Max(allowance, rounded);
	}
	return allowance;
}

/*
 * The steps of the next round of the batch on conn, those still waiting,
 * in order: their calls in calls; with mark_sent, also their indexes in
 * conn->round, and they are marked sent.  Returns how many.
 */
static int
batch_round_calls(RemoteConn *conn, RemoteStepCall **calls, bool mark_sent)
{
	int			n = 0;
	int			i;

	for (i = 0; i < conn->nbatch; i++)
	{
		BatchStep  *step = &conn->batch[i];

		if (step->state != BATCH_STEP_WAITING)
			continue;
		if (mark_sent)
		{
			step->state = BATCH_STEP_SENT;
			step->cut = false;
			conn->round[n] = i;
		}
		calls[n++] = step->call;
	}
	return n;
}

static uint32 values_rounds = 0;	/* sets of values sent so far, by this worker */

/*
 * Sends, as the set-up of the next round of a batch whose steps bind
 * values, those values: a parameter of a statement that keeps them in the
 * session under a token of the round's own, where run_steps() takes them
 * (and clears them) first.  The saga's values are data, never SQL text
 * (SPEC, "Bound values"), and the round itself must go as query text (see
 * barrier_batch_query).
 */
static bool
batch_send_values(RemoteConn *conn)
{
	RemoteStepCall **calls = palloc(sizeof(RemoteStepCall *) * conn->nbatch);
	int			n = batch_round_calls(conn, calls, false);
	const char *values[1];
	bool		sent;

	Assert(n > 0);
	/* a token of this round's own: the round finds its values, no others */
	snprintf(conn->values_token, sizeof(conn->values_token), "%d.%u.%08x", MyProcPid,
			 ++values_rounds, pg_prng_uint32(&pg_global_prng_state));
	values[0] = barrier_batch_values(calls, n, conn->values_token);
	conn_begin_setup(conn, SETUP_VALUES);
	sent = PQsendQueryParams(conn->pg,
							 "SELECT pg_catalog.set_config('saga_participant.batch_values', $1, false) "
							 "IS NULL",
							 1, NULL, values, NULL, NULL, 0) == 1;
	pfree((char *) values[0]);
	pfree(calls);
	/* as long as a round may take: the round's own starts when it is sent */
	conn->deadline = GetCurrentTimestamp() +
		((int64) BATCH_MAX_ALLOWANCE_MS + conn->batch_grace_ms) * 1000;
	return sent;
}

/*
 * Sends the next round of the batch on conn: run_steps() with the steps
 * still waiting, in order, as query text (see barrier_batch_query), after
 * the SET of its allowance as statement_timeout if the session has another.
 * Its deadline is the allowance and the grace.
 * False if libpq could not send it (the connection broke).
 */
static bool
batch_send_round(RemoteConn *conn)
{
	RemoteStepCall **calls = palloc(sizeof(RemoteStepCall *) * conn->nbatch);
	char	   *query;
	bool		sent;

	conn->nround = batch_round_calls(conn, calls, true);
	Assert(conn->nround > 0);
	query = barrier_batch_query(calls, conn->nround,
								conn->round_values_set ? conn->values_token : NULL);
	conn->round_values_set = false;
	/* decided when the batch is first sent, for all its rounds */
	if (conn->round_allowance_ms == 0)
		conn->round_allowance_ms = batch_allowance_ms(conn->pool);
	if (conn->session_timeout_ms != conn->round_allowance_ms)
	{
		/* in the same query string: the statement after it gets its own timer */
		char	   *set = psprintf("SET statement_timeout = %d; %s", conn->round_allowance_ms, query);

		pfree(query);
		query = set;
	}
	conn->rounds++;
	sent = PQsendQuery(conn->pg, query) == 1;
	pfree(query);
	pfree(calls);
	conn->deadline = GetCurrentTimestamp() +
		((int64) conn->round_allowance_ms + conn->batch_grace_ms) * 1000;
	return sent;
}

/*
 * Sends the next round of the batch on conn, or first, if its steps bind
 * values, those values (the round follows once they are set).
 */
static bool
batch_send_next(RemoteConn *conn)
{
	if (conn->step_call->kind == CALL_BATCH_BOUND && !conn->round_values_set)
		return batch_send_values(conn);
	return batch_send_round(conn);
}

/* Sends the call, or first what the session needs for it. */
static bool
send_call_or_setup(RemoteConn *conn)
{
	StepStatement statement;

	conn->sent_prepared = false;
	if (conn->step_call == NULL)
	{
		/*
		 * Query text (mode xa, recovery): a step's SQL in it ends by setting
		 * the session's statement_timeout to the call's (see clean_session
		 * on the participant), so what the session has is not known.
		 */
		conn->session_timeout_ms = -1;
		return PQsendQuery(conn->pg, conn->query);
	}
	statement = conn->statements[conn->step_call->kind];
	if ((statement != STEP_STATEMENT_UNAVAILABLE || conn->step_call->kind == CALL_BOUND) &&
		send_step_setup(conn))
		return true;
	if (conn->setup != SETUP_NONE)
		return false;			/* the set-up command could not be sent */
	if (conn->nbatch > 0)
		return batch_send_next(conn);
	statement = conn->statements[conn->step_call->kind];
	conn->sent_prepared = statement == STEP_STATEMENT_READY;
	if (conn->sent_prepared)
		return PQsendQueryPrepared(conn->pg, barrier_call_statement_name(conn->step_call->kind),
								   conn->step_call->nargs, conn->step_call->values,
								   NULL, NULL, 0);
	if (conn->step_call->kind == CALL_BOUND)
	{
		/* its values are parameters: the statement goes with them, unnamed */
		const Oid  *types;
		int			nargs;
		const char *sql = barrier_call_statement(CALL_BOUND, &types, &nargs);

		return PQsendQueryParams(conn->pg, sql, conn->step_call->nargs, types,
								 conn->step_call->values, NULL, NULL, 0);
	}
	conn->session_timeout_ms = -1;
	return PQsendQuery(conn->pg, conn->query);
}

static void
conn_send(RemoteConn *conn)
{
	int			rc;

	conn_set_state(conn, CONN_BUSY);
	if (conn->step_call && STEP_CALL_IS_BATCH(conn->step_call->kind) &&
		(conn->statements[conn->step_call->kind] == STEP_STATEMENT_UNAVAILABLE ||
		 !participant_has(conn, conn->step_call->kind)))
	{
		/* the participant has no run_batch_step(): its steps go one by one */
		batch_refused(conn);
		conn_finish_call(conn, OUTCOME_NOT_SENT);
		return;
	}
	if (!send_call_or_setup(conn))
	{
		/* nothing reached the remote: a known failure, not an unknown one */
		conn_set_error(conn, ERRCODE_CONNECTION_FAILURE, conn_error_text(conn));
		conn_finish_call(conn, OUTCOME_ERROR);
		return;
	}
	rc = PQflush(conn->pg);
	if (rc < 0)
	{
		/* while a set-up command is in flight, the call was not sent */
		conn_set_error(conn, ERRCODE_CONNECTION_FAILURE, conn_error_text(conn));
		conn_finish_call(conn, conn->setup != SETUP_NONE ? OUTCOME_ERROR : OUTCOME_UNKNOWN);
		return;
	}
	set_need_flush(conn, rc == 1);
}

/*
 * Ends the call in flight on conn: hands the outcome to its callback, then
 * keeps the connection for the next call or closes it if it is broken.
 */
/*
 * Right after a call failed, before the connection takes another: the
 * session advisory locks and prepared statements its rollback left go,
 * so none is held once the saga is final.  A connection that cannot be
 * cleaned is closed.
 */
static void
conn_start_clean(RemoteConn *conn)
{
	int			rc;

	conn_set_state(conn, CONN_BUSY);
	conn_begin_setup(conn, SETUP_CLEAN);
	conn->got_error = false;
	clear_error(&conn->error);
	conn->deadline = GetCurrentTimestamp() + (int64) saga_connect_timeout_ms * 1000;
	if (!PQsendQuery(conn->pg, CLEAN_AFTER_ERROR_SQL) || (rc = PQflush(conn->pg)) < 0)
	{
		conn_close(conn);
		return;
	}
	set_need_flush(conn, rc == 1);
}

/*
 * The outcome of step i of the batch on conn, which ended as kind: a step
 * that failed has its error; a step whose round committed is done; a step
 * that did not run here goes alone.  A step of a round that failed as a
 * whole was rolled back with it (it goes again, alone); one of a round that
 * was lost may have committed, which the barrier tells on the step's next
 * call, charged to no step.
 */
static void
batch_step_outcome(RemoteConn *conn, int i, RemoteOutcomeKind kind, RemoteOutcome *outcome)
{
	BatchStep  *step = &conn->batch[i];

	memset(outcome, 0, sizeof(RemoteOutcome));
	outcome->participant_version = conn->participant_version;
	switch (step->state)
	{
		case BATCH_STEP_FAILED:
			outcome->kind = OUTCOME_ERROR;
			copy_error(&outcome->error, &step->error);
			return;
		case BATCH_STEP_WAITING:
		case BATCH_STEP_NOT_SENT:
			outcome->kind = OUTCOME_NOT_SENT;
			return;
		case BATCH_STEP_COMMITTED:
		case BATCH_STEP_RAN:
		case BATCH_STEP_SENT:
			break;
	}
	if (step->state == BATCH_STEP_COMMITTED)
	{
		outcome->kind = OUTCOME_OK;
		outcome->reply = parse_reply(step->reply);
		outcome->text = step->reply ? pstrdup(step->reply) : NULL;
		outcome->result = step->result ? pstrdup(step->result) : NULL;
	}
	else if (kind == OUTCOME_ERROR || kind == OUTCOME_NOT_SENT)
		outcome->kind = OUTCOME_NOT_SENT;
	else
	{
		outcome->kind = OUTCOME_UNKNOWN;
		outcome->lost_in_batch = true;
		copy_error(&outcome->error, &conn->error);
		if (outcome->error.message == NULL)
			outcome->error.message = outcome->error.text = "the batch was committed without this step's answer";
	}
}

static void
conn_finish_call(RemoteConn *conn, RemoteOutcomeKind kind)
{
	RemoteOutcome outcome;
	RemoteOutcome *outcomes = NULL;
	void	  **args = NULL;
	int			nbatch = conn->nbatch;
	RemoteDoneCallback done = conn->done;
	void	   *arg = conn->arg;
	bool		broken;
	bool		clean;
	int			i;

	/* a connection whose cleaning failed or timed out is not used again */
	broken = (kind == OUTCOME_UNKNOWN || conn->discard || conn->setup == SETUP_CLEAN ||
			  conn->pg == NULL || PQstatus(conn->pg) != CONNECTION_OK ||
			  PQtransactionStatus(conn->pg) != PQTRANS_IDLE);
	/* a step that failed leaves what its rollback does not undo: clean it */
	clean = kind == OUTCOME_ERROR && conn->setup == SETUP_NONE;

	pool_time_call(conn, kind);
	memset(&outcome, 0, sizeof(outcome));
	outcome.kind = kind;
	outcome.participant_version = conn->participant_version;
	if (conn->got_error || kind != OUTCOME_OK)
		copy_error(&outcome.error, &conn->error);
	outcome.reply = parse_reply(conn->reply);
	outcome.text = conn->reply ? pstrdup(conn->reply) : NULL;
	outcome.result = conn->result ? pstrdup(conn->result) : NULL;
	if (nbatch > 0)
	{
		outcomes = palloc(sizeof(RemoteOutcome) * nbatch);
		args = palloc(sizeof(void *) * nbatch);
		for (i = 0; i < nbatch; i++)
		{
			batch_step_outcome(conn, i, kind, &outcomes[i]);
			args[i] = conn->batch[i].arg;
		}
	}

	conn->done = NULL;
	conn->arg = NULL;
	conn->setup = SETUP_NONE;
	conn->refused = false;
	free_call(conn);
	clear_error(&conn->error);
	free_text(&conn->reply);
	free_text(&conn->result);

	if (broken)
		conn_close(conn);
	else if (clean)
		conn_start_clean(conn);
	else
	{
		conn_set_state(conn, CONN_IDLE);
		conn->idle_since = GetCurrentTimestamp();
	}

	if (done && nbatch > 0)
	{
		for (i = 0; i < nbatch; i++)
			if (args[i] != NULL)
				done(args[i], &outcomes[i]);
	}
	else if (done)
		done(arg, &outcome);
}

/* The connection became usable: check the password rule, then send. */
static void
conn_established(RemoteConn *conn)
{
	if (remote_connect_skipped_password(conn->pg, conn->pool->need_password))
	{
		conn->discard = true;	/* never to be used for another call either */
		conn_set_error(conn, ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED, "password is required: the target did not ask for the password of the user mapping (non-superusers must use password authentication)");
		conn_finish_call(conn, OUTCOME_ERROR);
		return;
	}
	if (PQsetnonblocking(conn->pg, 1) != 0)
	{
		conn_set_error(conn, ERRCODE_CONNECTION_FAILURE, conn_error_text(conn));
		conn_finish_call(conn, OUTCOME_ERROR);
		return;
	}
	/*
	 * A call the worker gives up on (abort, deadline) is abandoned: its
	 * connection is closed.  On PostgreSQL 14 and later the session is asked
	 * to notice a closed client while it runs, so an abandoned call is
	 * cancelled on the participant too instead of running to its timeout.
	 */
	if (PQserverVersion(conn->pg) >= 140000 &&
		PQsendQuery(conn->pg, "SET client_connection_check_interval = 1000"))
	{
		conn_begin_setup(conn, SETUP_SESSION);
		conn_set_state(conn, CONN_BUSY);
		return;
	}
	if (!conn_ask_version(conn))
		conn_setup_done(conn);
}

/*
 * Asks the participant which version of pg_saga set its objects up, once
 * per connection, after the session settings: which step statements it has
 * follows from that (participant_has).  False if the query could not be
 * sent; the version then stays unknown, as for objects without version().
 */
static bool
conn_ask_version(RemoteConn *conn)
{
	int			rc;

	if (!PQsendQuery(conn->pg, "SELECT saga_participant.version()") ||
		(rc = PQflush(conn->pg)) < 0)
		return false;
	conn_begin_setup(conn, SETUP_VERSION);
	conn_set_state(conn, CONN_BUSY);
	set_need_flush(conn, rc == 1);
	return true;
}

/* saga_participant.version()'s answer ("1.6") as a number; unknown if it is none. */
static int
parse_participant_version(const char *text)
{
	int			major;
	int			minor;
	char		extra;

	if (text == NULL || sscanf(text, "%d.%d%c", &major, &minor, &extra) != 2 ||
		major < 1 || minor < 0 || minor > 99)
		return PARTICIPANT_VERSION_UNKNOWN;
	return PARTICIPANT_VERSION(major, minor);
}

/*
 * May a call of kind go to conn's participant?  When its objects say their
 * version, that decides; objects of pg_saga 1.5 or earlier do not, and
 * their calls are tried: a step statement that cannot be prepared goes as
 * text, a batch whose statement fails goes step by step (see
 * batch_statement_failed), as before version() existed.
 */
static bool
participant_has(RemoteConn *conn, StepCallKind kind)
{
	return conn->participant_version == PARTICIPANT_VERSION_UNKNOWN ||
		conn->participant_version >= barrier_call_since(kind);
}

/*
 * A set-up command ended.  A step statement that cannot be prepared (a
 * participant without saga_participant.run(), say) is not retried on this
 * connection: its calls go as query text, which reports the error the same
 * way any other failed call does.
 */
static void
conn_note_setup_result(RemoteConn *conn, bool failed)
{
	switch (conn->setup)
	{
		case SETUP_PREPARE:
			conn->statements[conn->step_call->kind] =
				failed ? STEP_STATEMENT_UNAVAILABLE : STEP_STATEMENT_READY;
			break;
		case SETUP_CLEAN:
			/* what cannot be cleaned costs the connection, not a later step */
			conn->discard = failed;
			break;
		case SETUP_VERSION:
			/* an error (42883: no version()) means objects of pg_saga 1.5 or earlier */
			conn->participant_version = failed ? PARTICIPANT_VERSION_UNKNOWN :
				parse_participant_version(conn->reply);
			free_text(&conn->reply);
			free_text(&conn->result);
			break;
		case SETUP_TIMEOUT:
			if (failed)
				conn->statements[conn->step_call->kind] = STEP_STATEMENT_UNAVAILABLE;
			else
				conn->session_timeout_ms = conn->step_call->timeout_ms;
			break;
		case SETUP_VALUES:
			/* if they could not be set, the round's steps go alone */
			conn->round_values_set = !failed;
			free_text(&conn->reply);
			free_text(&conn->result);
			break;
		default:
			/* session settings: an error only means one is not available */
			break;
	}
}

/*
 * The session is ready: send the call waiting for it, if any.  Also called
 * with no set-up command in flight, where the server needs no session
 * settings (see conn_established).
 */
static void
conn_setup_done(RemoteConn *conn)
{
	bool		cleaned = conn->setup == SETUP_CLEAN;
	bool		session = conn->setup == SETUP_SESSION;
	bool		values_lost = conn->setup == SETUP_VALUES && conn->got_error;

	conn_note_setup_result(conn, conn->got_error);
	if (cleaned && conn->discard)
	{
		conn_close(conn);		/* no call waits on it: see conn_start_clean */
		return;
	}
	conn->setup = SETUP_NONE;
	if (values_lost)
	{
		/* nothing of the round ran: its steps go alone, this pool batches on */
		conn_finish_call(conn, OUTCOME_ERROR);
		return;
	}
	conn->got_error = false;
	clear_error(&conn->error);
	if (session && conn_ask_version(conn))
		return;
	if (conn->query)
	{
		/* the call's own time runs from when it, not its set-up, is sent */
		conn->deadline = GetCurrentTimestamp() + conn->call_timeout_us;
		conn_send(conn);
	}
	else
	{
		conn_set_state(conn, CONN_IDLE);
		conn->idle_since = GetCurrentTimestamp();
	}
}

static char *
result_text(PGresult *res, int row, int col)
{
	if (col >= PQnfields(res) || PQgetisnull(res, row, col))
		return NULL;
	return MemoryContextStrdup(remote_cxt, PQgetvalue(res, row, col));
}

/*
 * A row of run_steps(): the answer of a step of the round, which takes
 * effect only if the round commits (batch_round_done).
 */
static void
batch_note_row(RemoteConn *conn, PGresult *res, int row)
{
	int			i = atoi(PQgetvalue(res, row, BATCH_COL_INDEX)) - 1;
	BatchStep  *step;

	if (i < 0 || i >= conn->nround)
		return;					/* not a step of the round: it stays sent */
	step = &conn->batch[conn->round[i]];
	if (step->state != BATCH_STEP_SENT)
		return;
	free_text(&step->reply);
	free_text(&step->result);
	clear_error(&step->error);
	step->cut = strcmp(PQgetvalue(res, row, BATCH_COL_CUT), "t") == 0;
	step->ms = PQgetisnull(res, row, BATCH_COL_MS) ? 0 :
		strtod(PQgetvalue(res, row, BATCH_COL_MS), NULL);
	if (PQgetisnull(res, row, BATCH_COL_SQLSTATE))
	{
		step->reply = result_text(res, row, BATCH_COL_REPLY);
		step->result = result_text(res, row, BATCH_COL_RESULT);
		step->state = BATCH_STEP_RAN;
	}
	else
	{
		const char *fields[5];
		int			f;

		for (f = 0; f < 5; f++)
			fields[f] = PQgetisnull(res, row, BATCH_COL_SQLSTATE + f) ? NULL :
				PQgetvalue(res, row, BATCH_COL_SQLSTATE + f);
		remote_error_from_fields(&step->error, fields, remote_cxt);
		step->state = BATCH_STEP_FAILED;
	}
}

/*
 * Did the batch statement itself fail, not a step: it is gone from the
 * session (a step's DEALLOCATE ALL), or the function it calls is (the
 * participant's objects predate it, or were dropped)?  An error of the
 * step's own SQL always carries the context of the participant function
 * that ran it.
 */
static bool
batch_statement_failed(const RemoteError *error)
{
	return error->sqlstate == ERRCODE_INVALID_SQL_STATEMENT_NAME ||
		(error->sqlstate == ERRCODE_UNDEFINED_FUNCTION && error->context == NULL);
}

/*
 * Is the step that failed to go again alone, having not run here for a
 * reason of the batch's: it would have waited for a lock (55P03), or it
 * made the transaction read-only (25006)?  A step the allowance cut goes
 * alone if it was the slow one (see "Batches" above); else it waits for the
 * next round.
 */
static BatchStepState
batch_failed_step_state(RemoteConn *conn, BatchStep *step, int place)
{
	int			sqlstate = step->error.sqlstate;

	if (step->cut)
	{
		conn->batch_cut = true;
		if (place == 0 || step->ms * 2 >= conn->round_allowance_ms)
			return BATCH_STEP_NOT_SENT;
		return BATCH_STEP_WAITING;
	}
	if (sqlstate == ERRCODE_LOCK_NOT_AVAILABLE || sqlstate == ERRCODE_READ_ONLY_SQL_TRANSACTION)
		return BATCH_STEP_NOT_SENT;
	return BATCH_STEP_FAILED;
}

/*
 * The round failed as a whole (the statement, or its commit): none of its
 * steps took effect.  They go alone, but for a cancel of the statement
 * outside any step (the allowance ran out between two steps): then they
 * are sent once more as a round.
 */
static void
batch_round_failed(RemoteConn *conn)
{
	BatchStepState to = BATCH_STEP_NOT_SENT;
	int			i;

	if (conn->error.sqlstate == ERRCODE_INVALID_SQL_STATEMENT_NAME)
		conn->statements[conn->step_call->kind] = STEP_STATEMENT_UNKNOWN;	/* prepared again next time */
	else if (batch_statement_failed(&conn->error))
		batch_refused(conn);
	else if (conn->error.sqlstate == ERRCODE_QUERY_CANCELED && !conn->batch_retried)
	{
		conn->batch_retried = true;
		conn->batch_cut = true;
		to = BATCH_STEP_WAITING;
	}
	for (i = 0; i < conn->nround; i++)
		conn->batch[conn->round[i]].state = to;
}

/*
 * A round of the batch ended (its statement's results are all in).  What
 * it answered takes effect if it committed: its steps are done, failed,
 * or wait for the next round, which is sent now; or none is left, and the
 * batch ends.
 */
static void
batch_round_done(RemoteConn *conn)
{
	bool		waiting = false;
	int			i;
	int			rc;

	/* a round that failed took its SET back with it */
	conn->session_timeout_ms = conn->got_error ? -1 : conn->round_allowance_ms;
	if (conn->got_error)
		batch_round_failed(conn);
	else
	{
		for (i = 0; i < conn->nround; i++)
		{
			BatchStep  *step = &conn->batch[conn->round[i]];

			if (step->state == BATCH_STEP_RAN)
				step->state = BATCH_STEP_COMMITTED;
			else if (step->state == BATCH_STEP_FAILED)
				step->state = batch_failed_step_state(conn, step, i);
			else if (step->state == BATCH_STEP_SENT)
				step->state = BATCH_STEP_WAITING;	/* not reached: after a cut */
		}
	}
	for (i = 0; i < conn->nbatch; i++)
		waiting |= conn->batch[i].state == BATCH_STEP_WAITING;
	/* every round runs a step, or sends one alone: never more rounds than steps */
	if (waiting && conn->rounds > conn->nbatch)
	{
		for (i = 0; i < conn->nbatch; i++)
			if (conn->batch[i].state == BATCH_STEP_WAITING)
				conn->batch[i].state = BATCH_STEP_NOT_SENT;
		waiting = false;
	}
	if (!waiting)
	{
		/* a failed round leaves what a rollback does not undo: cleaned */
		conn_finish_call(conn, conn->got_error ? OUTCOME_ERROR : OUTCOME_OK);
		return;
	}
	conn->got_error = false;
	clear_error(&conn->error);
	if (!batch_send_next(conn) || (rc = PQflush(conn->pg)) < 0)
	{
		conn_set_error(conn, ERRCODE_CONNECTION_FAILURE, conn_error_text(conn));
		conn_finish_call(conn, OUTCOME_UNKNOWN);
		return;
	}
	set_need_flush(conn, rc == 1);
}

/*
 * Reads what arrived of the batch's round: run_steps()'s rows, or the
 * error of the statement or its commit, until its last result.
 */
static void
batch_read_results(RemoteConn *conn)
{
	PGresult   *res;
	int			row;

	while (!PQisBusy(conn->pg))
	{
		res = PQgetResult(conn->pg);
		if (res == NULL)
		{
			batch_round_done(conn);
			return;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_FATAL_ERROR:
				conn_keep_result_error(conn, res);
				break;
			case PGRES_TUPLES_OK:
				if (PQnfields(res) == BATCH_COLUMNS)
					for (row = 0; row < PQntuples(res); row++)
						batch_note_row(conn, res, row);
				break;
			default:
				break;
		}
		PQclear(res);
	}
}

static void
conn_read_results(RemoteConn *conn)
{
	PGresult   *res;

	if (!PQconsumeInput(conn->pg))
	{
		/* during the set-up, the call itself was not sent yet */
		conn_set_error(conn, ERRCODE_CONNECTION_FAILURE, conn_error_text(conn));
		conn_finish_call(conn, conn->setup != SETUP_NONE ? OUTCOME_ERROR : OUTCOME_UNKNOWN);
		return;
	}
	if (conn->nbatch > 0 && conn->setup == SETUP_NONE)
	{
		batch_read_results(conn);
		return;
	}
	while (!PQisBusy(conn->pg))
	{
		res = PQgetResult(conn->pg);
		if (res == NULL && conn->setup != SETUP_NONE)
		{
			conn_setup_done(conn);
			return;
		}
		if (res == NULL)
		{
			conn_finish_call(conn, conn->refused ? OUTCOME_NOT_SENT :
							 conn->got_error ? OUTCOME_ERROR : OUTCOME_OK);
			return;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_FATAL_ERROR:
				conn_keep_result_error(conn, res);
				if (conn->sent_prepared && conn->setup == SETUP_NONE &&
						 conn->error.sqlstate == ERRCODE_INVALID_SQL_STATEMENT_NAME)
					step_statement_lost(conn);
				break;
			case PGRES_TUPLES_OK:
				if (PQntuples(res) > 0 && PQnfields(res) > 0 &&
					!PQgetisnull(res, PQntuples(res) - 1, 0))
				{
					/* the last rows of a query text are the call's */
					if (conn->reply)
						pfree(conn->reply);
					if (conn->result)
						pfree(conn->result);
					conn->reply = result_text(res, PQntuples(res) - 1, 0);
					conn->result = conn->step_call == NULL ||
						conn->step_call->kind != CALL_RUN ?
						result_text(res, PQntuples(res) - 1, 1) : NULL;
				}
				break;
			default:
				break;
		}
		PQclear(res);
	}
}

/* Whether s starts with a SQLSTATE: five digits or capital letters. */
static bool
is_sqlstate_text(const char *s)
{
	for (int i = 0; i < 5; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

/* Whether line is libpq's "LOCATION:  function, file.c:line" (label localized). */
static bool
is_location_line(const char *line)
{
	const char *where = strstr(line, ":  ");
	const char *end = line + strlen(line);

	if (where == NULL || strstr(where, ", ") == NULL || end == line || !isdigit((unsigned char) end[-1]))
		return false;
	while (end > where && isdigit((unsigned char) end[-1]))
		end--;
	return end[-1] == ':';
}

/*
 * The SQLSTATE of a failed connection attempt, and its text for users.
 *
 * libpq has no error fields for a failed connection, only its message, and
 * the server writes that in the language of its lc_messages: so nothing is
 * read from the words.  The connection is polled with the verbosity
 * PQERRORS_VERBOSE (conn_open), under which libpq writes a server's error
 * as "<severity>:  <SQLSTATE>: <message>", followed by a "LOCATION:  ..."
 * line, after its own "connection to server at ... failed: ".  The first
 * five-character code after a ":  " and before ":" is the server's
 * SQLSTATE; the severity word is localized too, so only the shape counts.
 * With no such code, libpq itself failed (connection refused, host
 * unknown, timeout): 08001, retried.  A refused login (28P01, 28000) or a
 * database that does not exist (3D000) is not transient: retrying will not
 * fix it; the server's 53300 (too many connections) and 57P03 (starting up
 * or shutting down) are, by their class (remote_sqlstate_is_transient).
 *
 * *text becomes the message as libpq writes it by default: without the
 * code and without the trailing LOCATION line (the server's source file).
 */
static int
connect_failure_sqlstate(char **text)
{
	char	   *msg = *text;
	char	   *p = msg;
	char	   *last_line;
	int			sqlstate;
	StringInfoData buf;

	while ((p = strstr(p, ":  ")) != NULL)
	{
		p += 3;
		if (is_sqlstate_text(p) && p[5] == ':')
			break;
	}
	if (p == NULL)
		return ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION;
	sqlstate = MAKE_SQLSTATE(p[0], p[1], p[2], p[3], p[4]);

	/* the same text without "XXXXX: " and without the last LOCATION line */
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, msg, p - msg);
	p += 5 + (p[6] == ' ' ? 2 : 1);
	last_line = strrchr(p, '\n');
	if (last_line != NULL && is_location_line(last_line + 1))
		appendBinaryStringInfo(&buf, p, last_line - p);
	else
		appendStringInfoString(&buf, p);
	pfree(msg);
	*text = buf.data;
	return sqlstate;
}

/* The socket of the connection given as user_data is ready. */
void
remote_handle_socket(void *user_data, uint32 events)
{
	RemoteConn *conn = (RemoteConn *) user_data;

	if (*(SocketOwner *) user_data == SOCKET_OWNER_HTTP)
	{
		remote_http_handle_socket(user_data, events);
		return;
	}
	switch (conn->state)
	{
		case CONN_CONNECTING:
			/* libpq may move to another socket while connecting */
			conn->poll = PQconnectPoll(conn->pg);
			events_changed = true;
			if (conn->poll == PGRES_POLLING_OK)
			{
				/* errors of calls are read from their result's fields */
				PQsetErrorVerbosity(conn->pg, PQERRORS_DEFAULT);
				conn_established(conn);
			}
			else if (conn->poll == PGRES_POLLING_FAILED)
			{
				char	   *text = conn_error_text(conn);
				int			sqlstate = connect_failure_sqlstate(&text);

				conn_set_error(conn, sqlstate, text);
				conn_finish_call(conn, OUTCOME_ERROR);
			}
			break;
		case CONN_BUSY:
			if (conn->need_flush)
			{
				int			rc = PQflush(conn->pg);

				if (rc < 0)
				{
					conn_set_error(conn, ERRCODE_CONNECTION_FAILURE, conn_error_text(conn));
					conn_finish_call(conn, conn->setup != SETUP_NONE ?
									 OUTCOME_ERROR : OUTCOME_UNKNOWN);
					return;
				}
				set_need_flush(conn, rc == 1);
			}
			conn_read_results(conn);
			break;
		case CONN_IDLE:
			/* the server closed it, or sent a notice: check and drop */
			if (!PQconsumeInput(conn->pg) || PQstatus(conn->pg) != CONNECTION_OK)
				conn_close(conn);
			break;
	}
}

/* Every connection of every pool, as a list the caller may walk and change. */
static List *
all_connections(void)
{
	HASH_SEQ_STATUS seq;
	RemotePool *pool;
	List	   *result = NIL;

	hash_seq_init(&seq, pools);
	while ((pool = hash_seq_search(&seq)) != NULL)
	{
		dlist_iter	iter;

		dlist_foreach(iter, &pool->conns)
			result = lappend(result, dlist_container(RemoteConn, node, iter.cur));
	}
	return result;
}

/* What the worker waits for on conn's socket. */
static uint32
conn_wait_mask(RemoteConn *conn)
{
	if (conn->state == CONN_CONNECTING)
		return conn->poll == PGRES_POLLING_READING ?
			WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
	if (conn->state == CONN_BUSY && conn->need_flush)
		return WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE;
	return WL_SOCKET_READABLE;
}

/*
 * The wait set is rebuilt only when what it waits for changed.  A call
 * moves a connection from idle to busy and back without changing that (it
 * waits for a readable socket either way), so most calls cost no rebuild.
 */
static void
note_wait_change(RemoteConn *conn)
{
	if (conn->wait_mask != conn_wait_mask(conn))
		events_changed = true;
}

/* Adds every connection's socket to set, with conn as user data. */
int
remote_add_wait_events(WaitEventSet *set)
{
	List	   *conns = all_connections();
	ListCell   *lc;
	int			n = 0;

	foreach(lc, conns)
	{
		RemoteConn *conn = lfirst(lc);
		pgsocket	sock = PQsocket(conn->pg);

		if (sock == PGINVALID_SOCKET)
			continue;
		conn->wait_mask = conn_wait_mask(conn);
		AddWaitEventToSet(set, conn->wait_mask, sock, NULL, conn);
		n++;
	}
	list_free(conns);
	return n + remote_http_add_wait_events(set);
}

int
remote_count_sockets(void)
{
	return nsockets + remote_http_count_sockets();
}

/*
 * Ends connection attempts and calls past their deadline.  A call that was
 * sent may have run: its outcome is unknown.
 */
void
remote_check_deadlines(TimestampTz now)
{
	List	   *conns;
	ListCell   *lc;

	remote_http_check_timer(now);
	conns = all_connections();
	foreach(lc, conns)
	{
		RemoteConn *conn = lfirst(lc);

		if (conn->state == CONN_IDLE || conn->deadline > now || conn->http != NULL)
			continue;
		if (conn->state == CONN_CONNECTING || conn->setup != SETUP_NONE)
		{
			conn_set_error(conn, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION, "timeout expired while connecting to the target");
			conn_finish_call(conn, OUTCOME_ERROR);
		}
		else
		{
			conn_set_error(conn, ERRCODE_QUERY_CANCELED, "no answer from the target within the step timeout");
			conn_finish_call(conn, OUTCOME_UNKNOWN);
		}
	}
	list_free(conns);
}

/* When a connection idle since idle_since is closed. */
static TimestampTz
idle_expiry(RemoteConn *conn)
{
	return conn->idle_since + IDLE_CONNECTION_TIMEOUT_MS * INT64CONST(1000);
}

TimestampTz
remote_next_deadline(void)
{
	List	   *conns = all_connections();
	ListCell   *lc;
	TimestampTz next = remote_http_next_timer();

	foreach(lc, conns)
	{
		RemoteConn *conn = lfirst(lc);
		TimestampTz t = conn->state == CONN_IDLE ? idle_expiry(conn) : conn->deadline;

		next = Min(next, t);
	}
	list_free(conns);
	return next;
}

void
remote_close_idle(TimestampTz now)
{
	List	   *conns = all_connections();
	ListCell   *lc;

	foreach(lc, conns)
	{
		RemoteConn *conn = lfirst(lc);

		if (conn->state == CONN_IDLE && idle_expiry(conn) <= now)
			conn_close(conn);
	}
	list_free(conns);
}

/*
 * Gives up on the call in flight on conn for arg without calling its
 * callback: the engine decided its outcome (unknown) itself, on abort or
 * deadline.  A call of its own is cancelled by closing its connection; a
 * step in a batch is only left out, as the batch's other steps go on.
 */
void
remote_abandon(RemoteConn *conn, void *arg)
{
	int			i;

	if (conn->nbatch > 0)
	{
		for (i = 0; i < conn->nbatch; i++)
			if (conn->batch[i].arg == arg)
				conn->batch[i].arg = NULL;
		return;
	}
	conn->done = NULL;
	conn_close(conn);
}

/*
 * Transient SQLSTATE classes: connection exceptions (08), transaction
 * rollbacks such as serialization failures and deadlocks (40), resources
 * (53) and operator intervention such as statement timeouts and shutdowns
 * (57).  Everything else is a business failure.
 */
bool
remote_sqlstate_is_transient(int sqlstate)
{
	/* libpq's own errors (lost sync, out of memory) carry none: retried */
	if (sqlstate == 0)
		return true;
	switch (ERRCODE_TO_CATEGORY(sqlstate))
	{
		case ERRCODE_CONNECTION_EXCEPTION:
		case ERRCODE_TRANSACTION_ROLLBACK:
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_OPERATOR_INTERVENTION:
			return true;
		default:
			return false;
	}
}

/* Is the failed call worth another attempt (see RemoteRetry)? */
bool
remote_outcome_is_transient(const RemoteOutcome *outcome)
{
	if (outcome->kind == OUTCOME_UNKNOWN)
		return true;
	if (outcome->retry != RETRY_BY_SQLSTATE)
		return outcome->retry == RETRY_TRANSIENT;
	return remote_sqlstate_is_transient(outcome->error.sqlstate);
}

/*
 * Does the participant that answered outcome lack what the call needed,
 * its objects predating pg_saga version since?  Only a 42883 raised by the
 * statement the worker sent can say so: an error of the step's own SQL
 * carries the context of the participant function that ran it.  Where the
 * participant said its version, that decides; objects of pg_saga 1.5 or
 * earlier have no version(), and for them such a 42883 is taken to mean
 * it, as before version() existed.
 */
bool
remote_participant_predates(const RemoteOutcome *outcome, int since)
{
	if (outcome->kind != OUTCOME_ERROR ||
		outcome->error.sqlstate != ERRCODE_UNDEFINED_FUNCTION ||
		(outcome->error.context != NULL && outcome->error.context[0] != '\0'))
		return false;
	return outcome->participant_version == PARTICIPANT_VERSION_UNKNOWN ||
		outcome->participant_version < since;
}
