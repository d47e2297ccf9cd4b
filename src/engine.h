/*-------------------------------------------------------------------------
 *
 * engine.h
 *		The state machine of a saga (engine.c): what runs next, and what the
 *		outcome of a call means.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_ENGINE_H
#define PG_SAGA_ENGINE_H

#include "postgres.h"
#include "model.h"
#include "remote.h"

/*
 * The engine decides and the worker acts.  Advancing a saga returns the
 * calls it wants started (in the order they should get connections); the
 * worker starts each one its target's pool has room for, telling the
 * engine (engine_call_starting), and sends them once the turn's changes
 * are written.  A call the engine gives up on is left in step->abandon for
 * the worker to abandon.
 */
typedef struct CallWant
{
	SagaStep   *step;
	StepOp		op;
} CallWant;

extern void engine_add_event(Saga *saga, int step, const char *event, const char *fmt,...) pg_attribute_printf(4, 5);
extern void engine_request_abort(Saga *saga, const char *reason);
extern void engine_commit_lost_to_abort(Saga *saga);
extern void engine_advance(Saga *saga, TimestampTz now, List **wants);
extern void engine_call_starting(SagaStep *step, StepOp op, TimestampTz now);
extern void engine_call_refused(SagaStep *step, StepOp op, const char *error, int sqlstate,
								TimestampTz now);
extern bool engine_goes_first(Saga *saga);
extern void engine_finish_call(SagaStep *step, RemoteOutcome *outcome, TimestampTz now);
extern void engine_call_failed_to_start(SagaStep *step, const char *error,
										int sqlstate, TimestampTz now);
extern void engine_call_not_sent(SagaStep *step);
extern void engine_call_lost_in_batch(SagaStep *step);
extern TimestampTz engine_next_wakeup(Saga *saga);
extern int	step_timeout_ms(SagaStep *step);

#endif							/* PG_SAGA_ENGINE_H */
