/*-------------------------------------------------------------------------
 *
 * batch.c
 *		Batches: which planned calls may share one, and how a turn's calls
 *		are formed into batches.
 *
 * Steps of several sagas ready at once for the same target can go as one
 * batch: one remote transaction and one round trip, one statement
 * (saga_participant.run_steps) that runs each step in a subtransaction of
 * its own.  This file decides which calls may share a
 * batch (batch_may_share, when the worker starts a call) and, once the
 * turn's calls are recorded, groups them by pool and cuts each pool's into
 * batches (batch_send_calls), which it hands back to the worker to send.
 *
 * What a batched call says is barrier.c's (barrier_batch_step_params,
 * barrier_batch_as_bound, barrier_batch_query), as for any call.  Sending
 * a batch and reading its replies stays in remote.c (see "Batches" there):
 * it drives a connection's state (ConnState, the set-up commands, the
 * allowance, the rest of a batch sent on after a slow step was cut short)
 * as any other call does, and is I/O on one connection, not a decision
 * about which calls go together.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pg_saga.h"
#include "batch.h"
#include "remote.h"
#include "settings.h"

/* ---- which calls may share a batch ---- */

/*
 * Can this call share a batch with others (see barrier_batch_step_params)?
 * Not in mode xa, where each step is a prepared transaction of its own, nor
 * in mode at, whose calls go through run_at().  A step of a batch keeps
 * its own timeout (run_steps() checks it), so one with its own may join.
 */
static bool
batchable_in_mode(Saga *saga, SagaStep *step, StepOp op)
{
	return saga->mode != MODE_XA && saga->mode != MODE_AT &&
		(op == OP_ACTION || op == OP_COMPENSATION || op == OP_CONFIRM);
}

/*
 * Is another step of the saga being started on step's target this turn?
 * Then step goes alone: the steps of one batch run one after the other,
 * and steps of one saga that do not depend on each other run concurrently
 * (they may wait for each other), so a batch holds at most one step of a
 * saga.
 */
static bool
sibling_starting_on_target(Saga *saga, SagaStep *step)
{
	int			i;

	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *other = &saga->steps[i];

		if (other != step && step_call_starting(other) && strcmp(other->target, step->target) == 0)
			return true;
	}
	return false;
}

/* May this call share a batch with calls of other sagas? */
bool
batch_may_share(SagaStep *step, StepOp op)
{
	return batchable_in_mode(step->saga, step, op) && !step->send_alone &&
		!sibling_starting_on_target(step->saga, step);
}

/* ---- the batches a turn's calls form ---- */

/* A batch carries at most this much SQL text (and saga.batch_size steps). */
#define MAX_BATCH_BYTES			(1024 * 1024)

/*
 * Sends the batchable calls of one pool, in batches of at most
 * saga.batch_size steps and MAX_BATCH_BYTES of SQL: one round trip and one
 * remote commit serve a whole batch.  While connections are free, a batch
 * takes as many steps as the pool's steps have been quick enough to share
 * (see remote_pool_batch_steps): transfers fill batches even in a closed
 * loop, where on a busy server the commits and round trips saved are worth
 * more than the parallelism (16 clients, A/B: +25-35% sagas/s, -25% CPU
 * per saga), while slow steps take a connection each and wait for no
 * other.  With more batches needed than connections are free, they share
 * what is free, in equal shares.
 */
static void
send_pool_batches(List *starts, const BatchSender *sender)
{
	RemotePool *pool = ((PlannedCall *) linitial(starts))->pool;
	int			m = list_length(starts);
	int			size = Max(saga_batch_size, 1);
	int			per_batch = remote_pool_batch_steps(pool);
	int			nbatches = (m + per_batch - 1) / per_batch;
	int			per;
	PlannedCall **chunk;
	int			n = 0;
	Size		bytes = 0;
	ListCell   *lc;

	if (nbatches > remote_pool_free(pool))
		nbatches = Max(remote_pool_free(pool), (m + size - 1) / size);
	per = (m + nbatches - 1) / nbatches;
	chunk = palloc(sizeof(PlannedCall *) * Max(per, 1));

	foreach(lc, starts)
	{
		PlannedCall *start = lfirst(lc);
		Size		len = strlen(start->step->sql[start->op]);

		if (n > 0 && (n == per || bytes + len > MAX_BATCH_BYTES))
		{
			sender->send_batch(chunk, n);
			n = 0;
			bytes = 0;
		}
		chunk[n++] = start;
		bytes += len;
	}
	if (n > 0)
		sender->send_batch(chunk, n);
}

/*
 * Sends the calls planned this turn, now that they are recorded: those that
 * may share a batch grouped by pool, the others alone.
 */
void
batch_send_calls(List *starts, const BatchSender *sender)
{
	List	   *pools = NIL;	/* RemotePool *, in order of first call */
	List	   *batchable = NIL;	/* List * of PlannedCall *, one per pool */
	ListCell   *lc,
			   *lp,
			   *lb;

	foreach(lc, starts)
	{
		PlannedCall *start = lfirst(lc);
		bool		found = false;

		remote_pool_release(start->pool, start->batchable);
		/* dropped since it was planned: a commit lost to saga.abort() */
		if (!step_call_starting(start->step))
			continue;
		if (!start->batchable)
		{
			sender->send_alone(start);
			continue;
		}
		forboth(lp, pools, lb, batchable)
		{
			if (lfirst(lp) == start->pool)
			{
				lfirst(lb) = lappend(lfirst(lb), start);
				found = true;
				break;
			}
		}
		if (!found)
		{
			pools = lappend(pools, start->pool);
			batchable = lappend(batchable, list_make1(start));
		}
	}
	foreach(lb, batchable)
		send_pool_batches(lfirst(lb), sender);
}
