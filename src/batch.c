/*-------------------------------------------------------------------------
 *
 * batch.c
 *		Batches: which planned calls may share one, and how a turn's calls
 *		are formed into batches.
 *
 * Steps of several sagas ready at once for the same target can go as one
 * batch: one remote transaction and one round trip, a pipeline in which
 * each step is run_batch_step() between a savepoint and its release,
 * under a timeout of its own.  This file decides which calls may share a
 * batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pg_saga.h"
#include "batch.h"

/* ---- which calls may share a batch ---- */

/*
 * Can this call share a batch with others (see barrier_batch_step_params)?
 * Not in mode xa, where each step is a prepared transaction of its own, nor
 * in mode at, whose calls go through run_at().  A step of a batch runs
 * under a timeout of its own, so one with its own timeout may join.
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
