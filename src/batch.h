/*-------------------------------------------------------------------------
 *
 * batch.h
 *		Batches (batch.c): which planned calls may share one, and how a
 *		turn's calls are formed into batches.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_BATCH_H
#define PG_SAGA_BATCH_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "model.h"
#include "remote.h"

/*
 * A planned call: one the engine wanted and the worker started this turn
 * (engine_call_starting: the step's call is "starting"), to send once the
 * turn's changes are written.
 */
typedef struct PlannedCall
{
	SagaStep   *step;
	StepOp		op;
	RemotePool *pool;
	bool		batchable;		/* may share a batch with other sagas' steps */
} PlannedCall;

/*
 * How the worker sends what batch_send_calls formed: one planned call
 * alone, or n planned calls of one pool as one batch (n >= 1).  Sending is
 * the worker's (it knows the coordinator's id and hears the outcomes);
 * which calls go together is decided here.
 */
typedef struct BatchSender
{
	void		(*send_alone) (PlannedCall *call);
	void		(*send_batch) (PlannedCall **calls, int n);
} BatchSender;

extern bool batch_may_share(SagaStep *step, StepOp op);
extern void batch_send_calls(List *starts, const BatchSender *sender);

#endif							/* PG_SAGA_BATCH_H */
