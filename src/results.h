/*-------------------------------------------------------------------------
 *
 * results.h
 *		A step's results (results.c): which statement answers them, and
 *		what the steps after it read of them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_RESULTS_H
#define PG_SAGA_RESULTS_H

#include "postgres.h"
#include "nodes/nodes.h"
#include "model.h"

extern bool results_statement_returns_rows(Node *stmt);
extern char *results_step_sql(SagaStep *step, StepOp op, const char **prefix);
extern bool results_returns_rows(SagaStep *step, StepOp op);
extern char *results_for_step(SagaStep *step, StepOp op);

#endif							/* PG_SAGA_RESULTS_H */
