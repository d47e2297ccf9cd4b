/*-------------------------------------------------------------------------
 *
 * model.c
 *		The names of modes, statuses, phases and step operations, as the
 *		tables store them and the views show them, in one place; and the
 *		lifecycle of a step's call (StepCallState, model.h): one predicate
 *		per question asked of it, and its transitions, each checking the
 *		state it starts from, so that no other file reads it off the fields.
 *
 * Each enum of model.h has one table of names here, in enum order; the C
 * code and the CHECK constraints of the tables (saga._valid_name) both
 * read them, so a new status is one entry.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/builtins.h"

#include "pg_saga.h"
#include "model.h"

static const char *const mode_names[] = {"saga", "tcc", "xa", "msg", "at"};
static const char *const status_names[] = {
	"building", "pending", "running", "committing", "compensating",
	"succeeded", "aborted", "failed"
};
static const char *const phase_names[] = {"forward", "commit", "rollback"};
static const char *const step_status_names[] = {
	"pending", "running", "prepared", "succeeded", "confirmed", "failed",
	"compensated", "skipped"
};

/*
 * What each step operation is called and which events tell of it.  The
 * name is also what the participant's run() receives as op for the three
 * operations that run user SQL.  done_status is the step's status once the
 * operation succeeded; STEP_PENDING where it is not set by the operation
 * alone (an action: its mode decides; a probe; a forget).
 */
static const StepOpInfo op_infos[] = {
	[OP_ACTION] = {"action", "action_started", "action_succeeded", "action_failed", STEP_PENDING},
	[OP_COMPENSATION] = {"compensation", "compensation_started", "compensation_done",
	"compensation_failed", STEP_COMPENSATED},
	[OP_CONFIRM] = {"confirm", "confirm_started", "confirm_done", "confirm_failed", STEP_CONFIRMED},
	[OP_XA_PROBE] = {"probe", "probe_started", NULL, NULL, STEP_PENDING},
	[OP_COMMIT_PREPARED] = {"commit prepared", "commit_started", "commit_done", "resolve_failed",
	STEP_SUCCEEDED},
	[OP_ROLLBACK_PREPARED] = {"rollback prepared", "rollback_started", "rollback_done",
	"resolve_failed", STEP_COMPENSATED},
	[OP_AT_FORGET] = {"forget", "forget_started", "forget_done", "forget_failed", STEP_PENDING},
};

static int
name_index(const char *const *names, int n, const char *name)
{
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* The index of a name read back from the tables, which must be known. */
static int
known_name_index(const char *const *names, int n, const char *name, const char *what)
{
	int			i = name_index(names, n, name);

	if (i < 0)
		elog(ERROR, "unknown %s \"%s\"", what, name);
	return i;
}

const char *
saga_mode_name(SagaMode mode)
{
	return mode_names[mode];
}

bool
saga_mode_from_name(const char *name, SagaMode *mode)
{
	int			i = name_index(mode_names, lengthof(mode_names), name);

	if (i < 0)
		return false;
	*mode = (SagaMode) i;
	return true;
}

const char *
saga_status_name(SagaStatus status)
{
	return status_names[status];
}

SagaStatus
saga_status_from_name(const char *name)
{
	return (SagaStatus) known_name_index(status_names, lengthof(status_names), name, "saga status");
}

const char *
saga_phase_name(SagaPhase phase)
{
	return phase_names[phase];
}

SagaPhase
saga_phase_from_name(const char *name)
{
	return (SagaPhase) known_name_index(phase_names, lengthof(phase_names), name, "saga phase");
}

const char *
step_status_name(StepStatus status)
{
	return step_status_names[status];
}

StepStatus
step_status_from_name(const char *name)
{
	return (StepStatus) known_name_index(step_status_names, lengthof(step_status_names), name, "step status");
}

const char *
step_op_name(StepOp op)
{
	return op_infos[op].name;
}

const StepOpInfo *
step_op_info(StepOp op)
{
	return &op_infos[op];
}

/*
 * The status a saga has while in phase: the forward phase runs, a commit
 * delivers its decision, a rollback compensates.  saga.retry() resumes a
 * failed saga with the status of its phase, as the worker enters it.
 */
SagaStatus
saga_phase_status(SagaPhase phase)
{
	switch (phase)
	{
		case PHASE_FORWARD:
			return SAGA_RUNNING;
		case PHASE_COMMIT:
			return SAGA_COMMITTING;
		case PHASE_ROLLBACK:
			return SAGA_COMPENSATING;
	}
	pg_unreachable();
}

/*
 * The statuses, final or live (those the worker drives: not building, not
 * final), as an SQL list "('a', 'b')", for the statements that select
 * sagas by status; built once from the names above, so the list is
 * written in one place.  The string lives as long as the process.
 */
const char *
saga_status_sql_list(bool final)
{
	static char *lists[2] = {NULL, NULL};

	if (lists[final] == NULL)
	{
		StringInfoData buf;
		int			i;

		initStringInfo(&buf);
		for (i = 0; i < lengthof(status_names); i++)
		{
			if (i == SAGA_BUILDING || saga_is_final((SagaStatus) i) != final)
				continue;
			appendStringInfo(&buf, "%s'%s'", buf.len == 0 ? "(" : ", ", status_names[i]);
		}
		appendStringInfoChar(&buf, ')');
		lists[final] = MemoryContextStrdup(TopMemoryContext, buf.data);
		pfree(buf.data);
	}
	return lists[final];
}

/*
 * saga._valid_name(kind, name): the CHECK constraints of the status columns
 * (since 1.2).  A CHECK on an IN list is parsed again from its stored form
 * by every statement that writes the table, which cost the worker a tenth
 * of its time; a call of this function is a far smaller expression.
 */
PG_FUNCTION_INFO_V1(saga_valid_name);

Datum
saga_valid_name(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *const *names;
	int			n;

	if (strcmp(kind, "mode") == 0)
		names = mode_names, n = lengthof(mode_names);
	else if (strcmp(kind, "status") == 0)
		names = status_names, n = lengthof(status_names);
	else if (strcmp(kind, "phase") == 0)
		names = phase_names, n = lengthof(phase_names);
	else if (strcmp(kind, "step status") == 0)
		names = step_status_names, n = lengthof(step_status_names);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown kind of name \"%s\"", kind),
				 errhint("Kinds are mode, status, phase and step status.")));
	PG_RETURN_BOOL(name_index(names, n, name) >= 0);
}

bool
saga_is_final(SagaStatus status)
{
	return status == SAGA_SUCCEEDED || status == SAGA_ABORTED || status == SAGA_FAILED;
}

/* ---- a step's call (see StepCallState in model.h) ---- */

static const char *const step_call_state_names[] = {"idle", "starting", "sent"};

const char *
step_call_state_name(StepCallState state)
{
	return step_call_state_names[state];
}

/*
 * Is a call of the step planned or on its way?  Then the step gets no other
 * call, and what it did is not known until that call's outcome arrives.
 */
bool
step_in_flight(const SagaStep *step)
{
	return step->call_state != STEP_CALL_IDLE;
}

/* Planned this turn, to be sent once the turn is committed. */
bool
step_call_starting(const SagaStep *step)
{
	return step->call_state == STEP_CALL_STARTING;
}

/* Sent on a connection (step->conn), which abandoning the call closes. */
bool
step_call_sent(const SagaStep *step)
{
	return step->call_state == STEP_CALL_SENT;
}

/* Checks that the step has no call, before a transition that needs none. */
void
step_call_check_idle(const SagaStep *step, const char *transition)
{
	SAGA_CHECK_STATE(step->call_state == STEP_CALL_IDLE,
					 "%s: the call of step %d is %s, not idle",
					 transition, step->number, step_call_state_name(step->call_state));
}

/*
 * The engine plans a call of op.  A step with a call already would lose
 * track of it (the first call's outcome would be read as the second's), so
 * this is checked in every build: the worker restarts from what its tables
 * hold rather than go on.
 */
void
step_call_plan(SagaStep *step, StepOp op)
{
	if (step->call_state != STEP_CALL_IDLE)
		elog(ERROR, "step %d of saga %s planned for a call while its call is %s",
			 step->number, step->saga->gid, step_call_state_name(step->call_state));
	step->flight_op = op;
	step->call_state = STEP_CALL_STARTING;
}

/* The worker sent the planned call on conn. */
void
step_call_send(SagaStep *step, RemoteConn *conn)
{
	SAGA_CHECK_STATE(step->call_state == STEP_CALL_STARTING,
					 "step_call_send: the call of step %d is %s, not starting",
					 step->number, step_call_state_name(step->call_state));
	step->conn = conn;
	step->call_state = STEP_CALL_SENT;
}

/* The call ended: its outcome arrived, or it could not be sent. */
void
step_call_end(SagaStep *step)
{
	SAGA_CHECK_STATE(step->call_state != STEP_CALL_IDLE,
					 "step_call_end: step %d has no call", step->number);
	step->conn = NULL;
	step->call_state = STEP_CALL_IDLE;
}

/*
 * The engine gives up on the sent call: the step is idle, and the call's
 * connection is returned, for the worker to abandon.
 */
RemoteConn *
step_call_abandon(SagaStep *step)
{
	RemoteConn *conn = step->conn;

	SAGA_CHECK_STATE(step->call_state == STEP_CALL_SENT,
					 "step_call_abandon: the call of step %d is %s, not sent",
					 step->number, step_call_state_name(step->call_state));
	step->conn = NULL;
	step->call_state = STEP_CALL_IDLE;
	return conn;
}
