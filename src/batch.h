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
#include "model.h"

extern bool batch_may_share(SagaStep *step, StepOp op);

#endif							/* PG_SAGA_BATCH_H */
