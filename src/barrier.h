/*-------------------------------------------------------------------------
 *
 * barrier.h
 *		What a step sends to its participant (barrier.c): the text and
 *		parameters of its call behind the barrier, the names of xa prepared
 *		transactions, and the participant's objects.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_BARRIER_H
#define PG_SAGA_BARRIER_H

#include "postgres.h"
#include "model.h"
#include "step_call.h"

extern char *barrier_identity(const char *coordinator, Saga *saga);
extern char *barrier_step_call(const char *coordinator, Saga *saga,
							   SagaStep *step, StepOp op, int timeout_ms,
							   RemoteStepCall *params);
extern RemoteStepCall *barrier_step_params(const char *coordinator, Saga *saga,
										   SagaStep *step, StepOp op, int timeout_ms);
extern const char *barrier_call_statement(StepCallKind kind, const Oid **types, int *nargs);
extern const char *barrier_call_statement_name(StepCallKind kind);
extern int	barrier_call_since(StepCallKind kind);
extern RemoteStepCall *barrier_batch_step_params(const char *coordinator, SagaStep *step,
												 StepOp op, int timeout_ms);
extern bool barrier_binds_values(SagaStep *step, StepOp op);
extern int	barrier_values_referenced(const char *sql);
extern void barrier_check_values(const char *sql, int nargs, const char *what,
								 const char *name, bool count_last);
extern void barrier_batch_as_bound(RemoteStepCall *call);
/* run_steps(): run_step()'s 13 parameters as arrays, and the steps' timeouts */
#define BARRIER_BATCH_NARGS 14
/* run_steps()'s argument that holds each step's values (arg_values) */
#define BARRIER_BATCH_VALUES_ARG 12
extern char *barrier_batch_query(RemoteStepCall **calls, int n, const char *values_token);
extern char *barrier_batch_values(RemoteStepCall **calls, int n, const char *values_token);
/* saga_participant.forget() is there since pg_saga 1.5 */
#define BARRIER_FORGET_SINCE PARTICIPANT_VERSION(1, 5)

extern char *barrier_forget_call(const char **identities, const char **gids, int n,
								 int timeout_ms);
extern char *barrier_xa_prefix(const char *coordinator);
extern char *barrier_xa_name(const char *coordinator, int64 saga_id, int step);
extern char *barrier_xa_list_query(const char *coordinator);
extern bool barrier_xa_parse(const char *coordinator, const char *name,
							 int64 *saga_id, int *step);
extern char *barrier_participant_sql(void);

#endif							/* PG_SAGA_BARRIER_H */
