/*-------------------------------------------------------------------------
 *
 * step_call.h
 *		A step call as it travels to a participant: the statement of its
 *		kind and that statement's parameters, and the participant versions
 *		that have each kind.  barrier.c builds calls, remote.c sends them:
 *		both read this vocabulary, neither owns it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_STEP_CALL_H
#define PG_SAGA_STEP_CALL_H

#include "postgres.h"

/*
 * The version of a participant's objects, as saga_participant.version()
 * says it (since pg_saga 1.6), as major * 100 + minor: what the worker
 * knows of which participant functions it may call.  Objects set up by an
 * earlier pg_saga have no version(): unknown.
 */
#define PARTICIPANT_VERSION(major, minor) ((major) * 100 + (minor))
#define PARTICIPANT_VERSION_UNKNOWN 0

/*
 * The statements a connection prepares for step calls, one per kind (see
 * barrier.c): run() for a step whose last statement returns no rows (which
 * participants set up by any version have), run_step() for one that does;
 * and the same with the saga's values bound (pg_saga 1.5), for an
 * operation that references values.  A step in a batch (the two batch
 * kinds) is an element of run_steps()'s arrays, sent as query text for
 * the whole batch (barrier_batch_query).
 */
typedef enum StepCallKind
{
	CALL_RUN,
	CALL_RUN_RESULT,
	CALL_BATCH,
	CALL_BOUND,
	CALL_BATCH_BOUND
} StepCallKind;

#define STEP_CALL_KINDS 5
#define STEP_CALL_MAX_NARGS 13
#define STEP_CALL_IS_BATCH(kind) ((kind) == CALL_BATCH || (kind) == CALL_BATCH_BOUND)

/* A step call as the parameters of its kind's statement, as text. */
typedef struct RemoteStepCall
{
	StepCallKind kind;
	int			nargs;
	const char *values[STEP_CALL_MAX_NARGS];
	int			timeout_ms;		/* the statement timeout it runs under */
} RemoteStepCall;

#endif							/* PG_SAGA_STEP_CALL_H */
