/*-------------------------------------------------------------------------
 *
 * forget.c
 *		Deleting the barrier records of purged sagas on their participants.
 *
 * A participant keeps a barrier record (and its result) for every call of
 * every saga, so that a repeated call does nothing.  Once a saga is purged
 * nothing will call it again, and its records can go.  The DELETE of final
 * sagas (saga.purge(), or a DBA's) queues in saga.barrier_forget one row
 * per saga and target it used, with the role whose records they are and
 * the saga's barrier identity (see barrier_identity), due once no call the
 * worker gave up on can still arrive (see pg_saga--1.4--1.5.sql).
 *
 * Every few seconds the worker reads the rows that are due, oldest first,
 * groups them by target and role, and sends each group as one call of
 * saga_participant.forget() on that pool's connections, through remote.c
 * as the steps' calls go: never blocking, its reply read in the worker's
 * wait loop.  Once the participant committed, the rows are deleted at the
 * next turn (a crash in between only sends them again: forget() is
 * idempotent).  A call that fails keeps its rows, and that target and role
 * are left alone for a while, twice as long after each failure
 * (saga.retry_interval up to saga.max_retry_interval): a participant that
 * is down gets its records deleted once it is back, and holds up no other.
 * A participant set up before pg_saga 1.5 has no forget(): that is logged,
 * and its rows wait (tried again every saga.max_retry_interval) until
 * saga.setup_participant() runs again for it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "barrier.h"
#include "forget.h"
#include "remote.h"
#include "settings.h"
#include "store.h"

/* How often the queue is read while nothing was forgotten. */
#define FORGET_INTERVAL_MS		5000
/* Most queued rows read at once, and so sent in one turn. */
#define FORGET_BATCH_ROWS		1000
/* A call's local deadline past its statement_timeout. */
#define FORGET_GRACE_MS			2000

/* A target and role the worker forgets records on, with its failures. */
typedef struct ForgetPool
{
	char	   *target;
	Oid			owner;
	bool		in_flight;
	int			failures;		/* in a row */
	TimestampTz retry_at;		/* left alone until then */
	bool		told_old;		/* logged that it has no forget() */
} ForgetPool;

/* A call in flight. */
typedef struct ForgetCall
{
	ForgetPool *fp;
	int			n;
	int64	   *ids;
} ForgetCall;

static MemoryContext forget_cxt = NULL;
static List *forget_pools = NIL;	/* ForgetPool *, in forget_cxt */
static TimestampTz next_check = 0;

/* Rows whose records the participants forgot: deleted at the next turn. */
static int64 *done_ids = NULL;
static int	ndone = 0;
static int	maxdone = 0;

void
forget_init(MemoryContext cxt)
{
	forget_cxt = AllocSetContextCreate(cxt, "pg_saga forget", ALLOCSET_SMALL_SIZES);
}

static ForgetPool *
forget_pool(const char *target, Oid owner)
{
	ListCell   *lc;
	ForgetPool *fp;
	MemoryContext old;

	foreach(lc, forget_pools)
	{
		fp = lfirst(lc);
		if (fp->owner == owner && strcmp(fp->target, target) == 0)
			return fp;
	}
	old = MemoryContextSwitchTo(forget_cxt);
	fp = palloc0(sizeof(ForgetPool));
	fp->target = pstrdup(target);
	fp->owner = owner;
	forget_pools = lappend(forget_pools, fp);
	MemoryContextSwitchTo(old);
	return fp;
}

static void
note_done(const int64 *ids, int n)
{
	if (ndone + n > maxdone)
	{
		maxdone = Max(ndone + n, Max(64, maxdone * 2));
		done_ids = done_ids ? repalloc(done_ids, sizeof(int64) * maxdone) :
			MemoryContextAlloc(forget_cxt, sizeof(int64) * maxdone);
	}
	memcpy(done_ids + ndone, ids, sizeof(int64) * n);
	ndone += n;
}

/*
 * A call on fp failed: leave it alone for a while, longer each time, or
 * for the longest interval if the participant predates forget() (until
 * saga.setup_participant() runs there again).
 */
static void
note_failure(ForgetPool *fp, const char *error, bool predates_forget)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		wait_ms;
	int			i;

	fp->failures++;
	if (predates_forget)
	{
		if (!fp->told_old)
			ereport(LOG,
					(errmsg("pg_saga: target \"%s\" cannot forget the barrier records of purged sagas",
							fp->target),
					 errdetail_internal("%s", error ? error : ""),
					 errhint("Its objects were set up by an earlier pg_saga: run saga.setup_participant('%s') again. "
							 "Until then its records stay queued in saga.barrier_forget.",
							 fp->target)));
		fp->told_old = true;
		wait_ms = saga_max_retry_interval_ms;
	}
	else
	{
		if (fp->failures == 1)
			ereport(LOG,
					(errmsg("pg_saga: could not forget the barrier records of purged sagas on target \"%s\"; trying again later",
							fp->target),
					 errdetail_internal("%s", error ? error : "")));
		wait_ms = saga_retry_interval_ms;
		for (i = 1; i < fp->failures && wait_ms < saga_max_retry_interval_ms; i++)
			wait_ms *= 2;
		wait_ms = Min(wait_ms, saga_max_retry_interval_ms);
	}
	fp->retry_at = now + wait_ms * 1000;
}

static void
forget_done(void *arg, RemoteOutcome *outcome)
{
	ForgetCall *call = arg;
	ForgetPool *fp = call->fp;

	fp->in_flight = false;
	if (outcome->kind == OUTCOME_OK)
	{
		note_done(call->ids, call->n);
		fp->failures = 0;
		fp->told_old = false;
		next_check = 0;			/* more may be due */
	}
	else
		note_failure(fp, outcome->error.text,
					 remote_participant_predates(outcome, BARRIER_FORGET_SINCE));
	pfree(call->ids);
	pfree(call);
}

/* Sends one group of queued rows to its participant; false if it cannot now. */
static bool
send_group(StoreForget *group, ForgetPool *fp, TimestampTz now)
{
	RemotePool *pool = remote_pool_lookup(group->where.target, group->where.owner);
	ForgetCall *call;
	char	   *error;
	int			sqlstate;

	if (!remote_pool_ready(pool) && !remote_pool_resolve(pool, &error, &sqlstate))
	{
		note_failure(fp, error, false);
		return false;
	}
	if (remote_pool_is_http(pool))
	{
		/* a service keeps its own keys: nothing to forget there */
		note_done(group->ids, group->n);
		return true;
	}
	/* the steps' calls first */
	if (!remote_pool_has_room(pool, false, false))
		return false;
	call = MemoryContextAlloc(forget_cxt, sizeof(ForgetCall));
	call->fp = fp;
	call->n = group->n;
	call->ids = MemoryContextAlloc(forget_cxt, sizeof(int64) * group->n);
	memcpy(call->ids, group->ids, sizeof(int64) * group->n);
	/* set first: a call that cannot be sent is finished before remote_call returns */
	fp->in_flight = true;
	if (remote_call(pool,
					barrier_forget_call((const char **) group->identities,
										(const char **) group->gids, group->n,
										saga_step_timeout_ms),
					NULL,
					now + ((int64) saga_step_timeout_ms + FORGET_GRACE_MS) * 1000,
					forget_done, call) == NULL)
	{
		fp->in_flight = false;
		pfree(call->ids);
		pfree(call);
		return false;
	}
	return true;
}

/*
 * Called once per worker turn, inside its transaction, on a schema that has
 * saga.barrier_forget: deletes the rows forgotten since the last turn, and
 * every few seconds (at once after a call succeeded) sends the rows due.
 */
void
forget_turn(TimestampTz now)
{
	StoreTarget *skip;
	int			nskip = 0;
	ListCell   *lc;
	List	   *groups;
	bool		all_sent = true;

	if (!store_has_saga_key())
		return;
	if (ndone > 0)
	{
		store_forget_done(done_ids, ndone);
		ndone = 0;
	}
	if (now < next_check)
		return;
	next_check = now + FORGET_INTERVAL_MS * INT64CONST(1000);

	/* what the read leaves out: calls in flight, participants that failed */
	skip = palloc(sizeof(StoreTarget) * Max(list_length(forget_pools), 1));
	foreach(lc, forget_pools)
	{
		ForgetPool *fp = lfirst(lc);

		if (fp->in_flight || fp->retry_at > now)
		{
			skip[nskip].target = fp->target;
			skip[nskip].owner = fp->owner;
			nskip++;
		}
	}
	groups = store_forget_due(FORGET_BATCH_ROWS, skip, nskip, CurrentMemoryContext);
	foreach(lc, groups)
	{
		StoreForget *group = lfirst(lc);

		all_sent &= send_group(group, forget_pool(group->where.target, group->where.owner), now);
	}
	/* a pool that had no room now may have some shortly */
	if (!all_sent)
		next_check = Min(next_check, now + (int64) saga_retry_interval_ms * 1000);
}
