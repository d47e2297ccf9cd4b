/*-------------------------------------------------------------------------
 *
 * recovery.c
 *		Resolution of in-doubt prepared transactions left by xa sagas.
 *
 * The engine resolves the prepared transactions it knows of: after the
 * commit point it delivers COMMIT PREPARED, otherwise ROLLBACK PREPARED.
 * What it cannot know of is a prepared transaction that appears after it
 * gave up on the call that made it: an attempt cut off by a timeout, an
 * abort or a crash may still reach PREPARE on the participant (on
 * PostgreSQL 14 and later the participant usually notices its client is
 * gone and aborts it instead).  So every saga.recovery_interval (and when
 * the worker starts) this sweep lists this coordinator's
 * prepared transactions on every target of recent xa sagas, parses each
 * name back to its saga and step, and resolves it from the local decision:
 *
 *	- saga decided commit (phase commit, or succeeded): COMMIT PREPARED;
 *	- saga still in its forward phase: left alone, the engine owns it
 *	  (it probes before calling an action again), which avoids resolving a
 *	  transaction while its saga is still preparing it;
 *	- saga rolling back: ROLLBACK PREPARED once the engine is done with
 *	  that step; saga final without commit, or unknown: ROLLBACK PREPARED.
 *
 * The list of prepared transactions is read before the sagas' state, so a
 * decision taken in between is never missed: it can only be newer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "barrier.h"
#include "recovery.h"
#include "remote.h"
#include "settings.h"
#include "store.h"

typedef struct FoundXact
{
	StoreTarget where;
	char	   *name;
} FoundXact;

static MemoryContext recovery_cxt = NULL;	/* messages of resolutions in flight */
static MemoryContext sweep_cxt = NULL;	/* targets and names of the last sweep */
static const char *coordinator = NULL;
static TimestampTz next_sweep = 0;
static int	sweeps_in_flight = 0;
static List *found = NIL;

void
recovery_init(MemoryContext cxt)
{
	recovery_cxt = AllocSetContextCreate(cxt, "pg_saga recovery", ALLOCSET_SMALL_SIZES);
	sweep_cxt = AllocSetContextCreate(recovery_cxt, "pg_saga sweep", ALLOCSET_SMALL_SIZES);
}

/* The worker's current coordinator id (it owns the string). */
void
recovery_set_coordinator(const char *coordinator_id)
{
	coordinator = coordinator_id;
}

static void
sweep_done(void *arg, RemoteOutcome *outcome)
{
	StoreTarget *where = arg;
	MemoryContext old;
	char	   *names;
	char	   *name;
	char	   *save;

	sweeps_in_flight--;
	if (outcome->kind != OUTCOME_OK || outcome->text == NULL)
		return;
	old = MemoryContextSwitchTo(sweep_cxt);
	names = pstrdup(outcome->text);
	for (name = strtok_r(names, " ", &save); name; name = strtok_r(NULL, " ", &save))
	{
		FoundXact  *fx = palloc(sizeof(FoundXact));

		fx->where = *where;
		fx->name = pstrdup(name);
		found = lappend(found, fx);
	}
	MemoryContextSwitchTo(old);
}

static void
resolve_done(void *arg, RemoteOutcome *outcome)
{
	char	   *what = arg;

	if (outcome->kind == OUTCOME_OK || outcome->error.sqlstate == ERRCODE_UNDEFINED_OBJECT)
		ereport(LOG, (errmsg("pg_saga: %s", what)));
	else
		ereport(LOG,
				(errmsg("pg_saga: could not resolve in-doubt prepared transaction: %s", what),
				 errdetail_internal("%s", outcome->error.text ? outcome->error.text : "")));
	pfree(what);
}

/* Sends query on the pool of where, if it can be had now. */
static bool
send_on(StoreTarget *where, char *query, RemoteDoneCallback done, void *arg)
{
	RemotePool *pool = remote_pool_lookup(where->target, where->owner);
	char	   *error;
	int			sqlstate;

	if (!remote_pool_ready(pool) && !remote_pool_resolve(pool, &error, &sqlstate))
		return false;
	/* resolving an in-doubt transaction releases its locks: it goes first */
	if (!remote_pool_has_room(pool, false, true))
		return false;
	return remote_call(pool, query, NULL,
					   GetCurrentTimestamp() + (int64) saga_step_timeout_ms * 1000,
					   done, arg) != NULL;
}

/* Lists prepared transactions on every target of recent xa sagas. */
static void
start_sweep(void)
{
	char	   *query = barrier_xa_list_query(coordinator);
	ListCell   *lc;

	MemoryContextReset(sweep_cxt);
	foreach(lc, store_xa_targets(sweep_cxt))
	{
		StoreTarget *where = lfirst(lc);

		if (send_on(where, query, sweep_done, where))
			sweeps_in_flight++;
	}
}

static Saga *
find_live(dlist_head *live, int64 id)
{
	dlist_iter	iter;

	dlist_foreach(iter, live)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);

		if (saga->id == id)
			return saga;
	}
	return NULL;
}

/* What to do with the prepared transaction of step in saga id: +1, -1, 0. */
static int
decide(dlist_head *live, int64 id, int stepno)
{
	Saga	   *saga = find_live(live, id);
	SagaStatus	status;
	SagaPhase	phase;

	if (saga != NULL)
	{
		SagaStep   *step;

		if (saga->phase != PHASE_ROLLBACK || stepno < 1 || stepno > saga->nsteps)
			return 0;			/* the engine delivers it */
		step = &saga->steps[stepno - 1];
		if (step_in_flight(step) ||
			(step->status != STEP_COMPENSATED && step->status != STEP_SKIPPED &&
			 !(step->status == STEP_FAILED && !step->maybe_applied)))
			return 0;
		return -1;				/* appeared after its rollback was delivered */
	}
	if (!store_saga_state(id, &status, &phase))
		return -1;				/* no saga explains it */
	if (phase == PHASE_COMMIT || status == SAGA_SUCCEEDED)
		return +1;
	if (!saga_is_final(status) && phase == PHASE_FORWARD)
		return 0;				/* live but not loaded yet */
	return -1;
}

static void
resolve_found(dlist_head *live)
{
	ListCell   *lc;

	foreach(lc, found)
	{
		FoundXact  *fx = lfirst(lc);
		int64		id;
		int			stepno;
		int			verdict;
		char	   *what;

		if (!barrier_xa_parse(coordinator, fx->name, &id, &stepno))
			continue;
		verdict = decide(live, id, stepno);
		if (verdict == 0)
			continue;
		what = MemoryContextStrdup(recovery_cxt,
								   psprintf("%s in-doubt prepared transaction %s on target %s",
											verdict > 0 ? "committed" : "rolled back",
											fx->name, fx->where.target));
		(void) send_on(&fx->where,
					   psprintf("%s PREPARED %s", verdict > 0 ? "COMMIT" : "ROLLBACK",
								quote_literal_cstr(fx->name)),
					   resolve_done, what);
	}
	found = NIL;				/* its cells live in sweep_cxt */
}

/* Called once per worker turn, inside its transaction. */
void
recovery_turn(dlist_head *live, TimestampTz now)
{
	if (found != NIL)
		resolve_found(live);
	if (now >= next_sweep && sweeps_in_flight == 0)
	{
		start_sweep();
		next_sweep = now + (int64) saga_recovery_interval_ms * 1000;
	}
}
