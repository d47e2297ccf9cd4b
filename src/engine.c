/*-------------------------------------------------------------------------
 *
 * engine.c
 *		The state machine of a saga: which step runs next, and what the
 *		outcome of a call means.
 *
 * A saga moves through up to three phases.  Forward runs every step's
 * action in dependency order.  If every action succeeds, mode saga and msg
 * are done; tcc enters the commit phase and confirms every step.  If an
 * action fails for a business reason, the deadline passes or an abort is
 * requested, the saga enters the rollback phase and compensates every step
 * that ran or may have run, in reverse dependency order.  A mode is only a
 * different plan over the same steps.  Mode at is mode saga with generated
 * second phases: its compensation restores the rows the action changed
 * (the participant recorded their images), and its commit phase forgets
 * those images, one call per target (see "AT mode" below).
 *
 * Nothing here does I/O, nor touches a connection: advancing a saga
 * changes it in memory, marks what must be written, and returns the calls
 * it wants started; a call it gives up on is left for the worker to
 * abandon (see engine.h).  The worker starts what its pools have room for,
 * writes the changes in one transaction and only then acts on a decision,
 * so the decision to compensate (or to commit) is durable before it is
 * acted on.  After a crash, a step found "running" is simply called again:
 * the barrier on the participant turns a repeated call into a no-op.
 *
 * Transitions have one place each: enter_phase() sets a saga's phase with
 * its status, finish_op() ends a step's operation (status, time, event),
 * and the tables of modes (mode_plans, below) and of operations
 * (step_op_info, model.c) say what differs between them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "barrier.h"
#include "engine.h"
#include "remote.h"
#include "results.h"
#include "settings.h"

void
engine_add_event(Saga *saga, int step, const char *event, const char *fmt,...)
{
	MemoryContext old = MemoryContextSwitchTo(saga->cxt);
	SagaEvent  *ev = palloc0(sizeof(SagaEvent));

	ev->step = step;
	ev->event = pstrdup(event);
	/* strictly increasing, so the history sorts by time in the right order */
	ev->at = Max(GetCurrentTimestamp(), saga->last_event_at + 1);
	saga->last_event_at = ev->at;
	if (fmt != NULL)
	{
		va_list		args;
		StringInfoData buf;

		initStringInfo(&buf);
		for (;;)
		{
			int			needed;

			va_start(args, fmt);
			needed = appendStringInfoVA(&buf, fmt, args);
			va_end(args);
			if (needed == 0)
				break;
			enlargeStringInfo(&buf, needed);
		}
		ev->detail = buf.data;
	}
	saga->events = lappend(saga->events, ev);
	saga->dirty = true;
	MemoryContextSwitchTo(old);
}

static void
set_text(Saga *saga, char **field, const char *value)
{
	if (*field)
		pfree(*field);
	*field = value ? MemoryContextStrdup(saga->cxt, value) : NULL;
}

static void
step_set_error(SagaStep *step, int sqlstate, const char *message)
{
	set_text(step->saga, &step->last_error, message);
	set_text(step->saga, &step->last_sqlstate, sqlstate != 0 ? unpack_sql_state(sqlstate) : NULL);
	step->dirty = true;
}

/* The error of a call that failed, as the step keeps it. */
static void
step_set_call_error(SagaStep *step, RemoteOutcome *outcome)
{
	step_set_error(step, outcome->error.sqlstate, outcome->error.text);
}

/* The error text of a call that failed, for history and last_error. */
static const char *
call_error(RemoteOutcome *outcome, const char *none)
{
	return outcome->error.text ? outcome->error.text : none;
}

int
step_timeout_ms(SagaStep *step)
{
	return step->timeout_ms > 0 ? step->timeout_ms : saga_step_timeout_ms;
}

static int
step_max_attempts(SagaStep *step)
{
	return step->max_attempts > 0 ? step->max_attempts : saga_max_attempts;
}

/* Exponential backoff: retry_interval * 2^(attempts-1), capped. */
static TimestampTz
backoff_until(int attempts, TimestampTz now)
{
	int64		delay = saga_retry_interval_ms;
	int			i;

	for (i = 1; i < attempts && delay < saga_max_retry_interval_ms; i++)
		delay *= 2;
	delay = Min(delay, saga_max_retry_interval_ms);
	return now + delay * INT64CONST(1000);
}

/*
 * Sets the saga's status.  The final status is flushed to disk like a
 * decision, as saga.wait() reports it to users and it must therefore stand;
 * the rest of a saga's progress is not (see worker.c), its first start
 * included: a saga whose start a crash lost reads as pending, and the
 * worker treats its steps as maybe applied (see store.c).
 */
static void
saga_set_status(Saga *saga, SagaStatus status)
{
	if (saga->status != status)
	{
		if (saga_is_final(status))
			saga->durable = true;
		if (saga->status == SAGA_PENDING)
			saga->just_started = true;
		saga->status = status;
		saga->dirty = true;
		if (saga_is_final(status))
			engine_add_event(saga, 0, saga_status_name(status), "%s",
							 saga->last_error ? saga->last_error : "");
	}
}

/*
 * Enters phase with the status that goes with it (saga_phase_status).  A
 * commit or a rollback is a decision: it reaches the disk before anything
 * acts on it, and a commit is written only if no abort came first (see
 * worker.c).
 */
static void
enter_phase(Saga *saga, SagaPhase phase)
{
	saga->phase = phase;
	saga->status = saga_phase_status(phase);
	saga->decided_commit = phase == PHASE_COMMIT;
	if (phase != PHASE_FORWARD)
	{
		saga->durable = true;
		saga->decided = true;
	}
	saga->dirty = true;
}

/*
 * An operation of step ended for good: the step takes status, its finished
 * time, no retry pending, and the history says event (with detail).
 */
static void
finish_op(SagaStep *step, StepStatus status, TimestampTz now, const char *event,
		  const char *detail)
{
	step->status = status;
	step->finished_at = now;
	step->next_attempt_at = 0;
	step->dirty = true;
	engine_add_event(step->saga, step->number, event, "%s", detail);
}

/*
 * What a mode makes of the same steps: whether a commit phase follows the
 * actions, and what it sends; a step's status once its action succeeded.
 * A new mode is a row here (and its operations rows of model.c).
 */
typedef struct ModePlan
{
	StepStatus	action_done;	/* a step's status once its action succeeded */
	bool		commit_phase;	/* every action succeeded: commit, then done */
	StepOp		commit_op;		/* what the commit phase sends each step */
	const char *commit_reason;	/* the detail of the commit decision */
	const char *applied;		/* how the history tells of an action done */
} ModePlan;

static const ModePlan mode_plans[] = {
	[MODE_SAGA] = {STEP_SUCCEEDED, false, OP_ACTION, NULL, "applied"},
	[MODE_TCC] = {STEP_SUCCEEDED, true, OP_CONFIRM, "every try succeeded", "applied"},
	[MODE_XA] = {STEP_PREPARED, true, OP_COMMIT_PREPARED, "every step is prepared", "prepared"},
	[MODE_MSG] = {STEP_SUCCEEDED, false, OP_ACTION, NULL, "applied"},
	[MODE_AT] = {STEP_SUCCEEDED, true, OP_AT_FORGET, "every action succeeded", "applied"},
};

static const ModePlan *
mode_plan(Saga *saga)
{
	return &mode_plans[saga->mode];
}

static bool
any_in_flight(Saga *saga)
{
	int			i;

	for (i = 0; i < saga->nsteps; i++)
		if (step_in_flight(&saga->steps[i]))
			return true;
	return false;
}

static bool
any_stuck(Saga *saga)
{
	int			i;

	for (i = 0; i < saga->nsteps; i++)
		if (saga->steps[i].stuck)
			return true;
	return false;
}

/*
 * The saga cannot go on without an operator: it becomes failed (and says
 * so on the saga_alert channel) once no call of it is in flight.
 */
static void
fail_when_idle(Saga *saga)
{
	if (any_in_flight(saga))
		return;
	saga->alert = true;
	saga->durable = true;
	saga_set_status(saga, SAGA_FAILED);
}

/* ---- the rollback decision ---- */

static bool
step_needs_rollback(SagaStep *step)
{
	switch (step->status)
	{
		case STEP_SUCCEEDED:
		case STEP_PREPARED:
			return true;
		case STEP_PENDING:
		case STEP_RUNNING:
		case STEP_FAILED:
			return step->maybe_applied;
		default:
			return false;
	}
}

/*
 * Decides to roll the saga back.  With cancel, calls in flight are given
 * up (abort, deadline): their outcome is unknown, so they are compensated,
 * and the barrier makes that a no-op where they never took effect.
 * Without cancel (a business failure), they are let finish.
 */
static void
start_rollback(Saga *saga, const char *reason, bool cancel)
{
	int			i;

	if (saga->phase == PHASE_ROLLBACK)
		return;
	enter_phase(saga, PHASE_ROLLBACK);
	set_text(saga, &saga->last_error, reason);
	engine_add_event(saga, 0, "rollback_decided", "%s", reason);

	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *step = &saga->steps[i];

		/*
		 * A call only planned (starting) has not left: it is sent after the
		 * turn, and its outcome read as any other's.
		 */
		if (step_call_sent(step) && cancel)
		{
			/* the worker abandons the call (see worker.c) */
			step->abandon = step_call_abandon(step);
			if (step->flight_op == OP_ACTION)
			{
				step->maybe_applied = true;
				step->status = STEP_FAILED;
				step_set_error(step, ERRCODE_QUERY_CANCELED, reason);
				engine_add_event(saga, step->number, "action_cancelled", "%s", reason);
			}
		}
		if (step_needs_rollback(step))
		{
			step->attempts = 0;
			step->next_attempt_at = 0;
			step->dirty = true;
		}
	}
}

void
engine_request_abort(Saga *saga, const char *reason)
{
	saga->abort_requested = true;
	set_text(saga, &saga->abort_reason, reason);
}

/*
 * Forgets the saga's unwritten events named event of step (0: the saga):
 * what they tell did not happen after all.  Events are written only with
 * the saga's rows, so those in the list are not stored yet.
 */
static void
forget_unwritten_events(Saga *saga, int step, const char *event)
{
	ListCell   *lc;

	foreach(lc, saga->events)
	{
		SagaEvent  *ev = lfirst(lc);

		if (ev->step == step && strcmp(ev->event, event) == 0)
			saga->events = foreach_delete_current(saga->events, lc);
	}
}

/*
 * The calls of the commit phase that the turn which decided the commit
 * planned (at_forget, a confirm, COMMIT PREPARED) must not leave once the
 * commit is lost: the worker sends only calls still starting, so ending
 * them here keeps them unsent (an at_forget sent beside the rollback
 * deleted the images the restore needed).  They never were attempts, and
 * the history does not say they started.
 */
static void
drop_planned_commit_calls(Saga *saga)
{
	int			i;

	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *step = &saga->steps[i];

		if (!step_call_starting(step) || step->flight_op == OP_ACTION ||
			step->flight_op == OP_XA_PROBE)
			continue;
		forget_unwritten_events(saga, step->number, step_op_info(step->flight_op)->started_event);
		step_call_end(step);
		if (step->attempts > 0)
			step->attempts--;
		step->dirty = true;
	}
}

/*
 * The commit could not be written because saga.abort() was called in the
 * meantime: the abort wins, and the saga rolls back instead.  The decision
 * never became durable nor took effect, so the history keeps no trace of
 * it: neither the final status nor commit_decided that the turn recorded.
 */
void
engine_commit_lost_to_abort(Saga *saga)
{
	forget_unwritten_events(saga, 0, saga_status_name(saga->status));
	forget_unwritten_events(saga, 0, "commit_decided");
	drop_planned_commit_calls(saga);
	enter_phase(saga, PHASE_FORWARD);
	saga->abort_requested = true;
	start_rollback(saga, "aborted by saga.abort()", true);
}

/* ---- planning ---- */

/* Asks the worker to start op of step (see engine_call_starting). */
static void
want_call(SagaStep *step, StepOp op, List **wants)
{
	CallWant   *want = palloc(sizeof(CallWant));

	want->step = step;
	want->op = op;
	*wants = lappend(*wants, want);
}

/*
 * The worker starts a call the engine wanted: it counts as an attempt (a
 * probe does not) and the step is running, with an event; the call is sent
 * once the turn's changes are written.
 */
void
engine_call_starting(SagaStep *step, StepOp op, TimestampTz now)
{
	Saga	   *saga = step->saga;

	step_call_plan(step, op);
	if (op != OP_XA_PROBE)
		step->attempts++;
	step->next_attempt_at = 0;
	if (op == OP_ACTION)
	{
		step->status = STEP_RUNNING;
		if (step->started_at == 0)
			step->started_at = now;
	}
	step->dirty = true;
	if (saga->status == SAGA_PENDING)
		saga_set_status(saga, SAGA_RUNNING);
	engine_add_event(saga, step->number, step_op_info(op)->started_event,
					 "attempt %d on %s", step->attempts, step->target);
}

/* The call could not start: its target is unusable (a failed attempt). */
void
engine_call_refused(SagaStep *step, StepOp op, const char *error, int sqlstate,
					TimestampTz now)
{
	step_call_check_idle(step, "engine_call_refused");
	step->attempts++;
	step->flight_op = op;
	engine_call_failed_to_start(step, error, sqlstate, now);
}

static bool
deps_succeeded(Saga *saga, SagaStep *step)
{
	int			i;

	for (i = 0; i < step->ndeps; i++)
	{
		StepStatus s = saga->steps[step->deps[i]].status;

		/* in xa mode a step is prepared before the steps after it start */
		if (s != STEP_SUCCEEDED && s != STEP_CONFIRMED && s != STEP_PREPARED)
			return false;
	}
	return true;
}

static bool
due(SagaStep *step, TimestampTz now)
{
	return !step_in_flight(step) && step->next_attempt_at <= now;
}

static void
advance_forward(Saga *saga, TimestampTz now, List **wants)
{
	int			i;
	bool		all_done = true;

	if (saga->mode != MODE_MSG)
	{
		if (saga->abort_requested)
		{
			start_rollback(saga, saga->abort_reason ? psprintf("aborted: %s", saga->abort_reason) :
						   "aborted by saga.abort()", true);
			return;
		}
		if (saga->deadline != 0 && now >= saga->deadline)
		{
			start_rollback(saga, "deadline passed before the saga completed", true);
			return;
		}
	}

	if (saga->mode == MODE_MSG && any_stuck(saga))
	{
		/* a delivery failed for good: start nothing more */
		fail_when_idle(saga);
		return;
	}

	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *step = &saga->steps[i];

		if (step->status == mode_plan(saga)->action_done)
			continue;
		all_done = false;
		if ((step->status == STEP_PENDING || step->status == STEP_RUNNING) &&
			due(step, now) && deps_succeeded(saga, step))
			want_call(step, step->redo_prepared ? OP_ROLLBACK_PREPARED :
					  step->need_probe ? OP_XA_PROBE : OP_ACTION, wants);
	}
	if (!all_done)
		return;

	if (mode_plan(saga)->commit_phase)
	{
		enter_phase(saga, PHASE_COMMIT);	/* the commit point */
		for (i = 0; i < saga->nsteps; i++)
		{
			saga->steps[i].attempts = 0;
			saga->steps[i].dirty = true;
		}
		engine_add_event(saga, 0, "commit_decided", "%s", mode_plan(saga)->commit_reason);
	}
	else
	{
		saga->decided_commit = true;
		saga_set_status(saga, SAGA_SUCCEEDED);
	}
}

/* ---- AT mode ----
 *
 * The commit phase of an at saga deletes its undo records and reservations
 * on each target: one call (OP_AT_FORGET) per target, sent by the saga's
 * first step there, which marks every step on that target forgotten.  The
 * decision to commit is durable before, so no rollback can follow a
 * forget; the forgotten marks live in memory only, as forgetting again
 * after a crash does no harm.  The forward phase and the rollback are those
 * of mode saga, the rollback calling the participant's restore as the
 * step's compensation.
 */
static bool
at_first_on_target(Saga *saga, SagaStep *step)
{
	int			i;

	for (i = 0; i < saga->nsteps && &saga->steps[i] != step; i++)
		if (strcmp(saga->steps[i].target, step->target) == 0)
			return false;
	return true;
}

static void
advance_at_forget(Saga *saga, TimestampTz now, List **wants)
{
	int			i;
	bool		done = true;
	bool		progress = false;

	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *step = &saga->steps[i];

		if (step->at_forgotten)
			continue;
		done = false;
		/* the saga's first step on the same target forgets for it */
		if (!at_first_on_target(saga, step) || step->stuck)
			continue;
		progress = true;
		if (due(step, now))
			want_call(step, OP_AT_FORGET, wants);
	}
	if (done)
		saga_set_status(saga, SAGA_SUCCEEDED);
	else if (!progress)
		fail_when_idle(saga);
}

static void
at_forgotten_on_target(Saga *saga, SagaStep *first)
{
	int			i;

	for (i = 0; i < saga->nsteps; i++)
		if (strcmp(saga->steps[i].target, first->target) == 0)
			saga->steps[i].at_forgotten = true;
}

static void
advance_commit(Saga *saga, TimestampTz now, List **wants)
{
	int			i;
	bool		done = true;
	bool		progress = false;
	StepOp		op = mode_plan(saga)->commit_op;
	StepStatus	done_status = step_op_info(op)->done_status;

	if (op == OP_AT_FORGET)
	{
		advance_at_forget(saga, now, wants);
		return;
	}
	/* confirms and commits of prepared transactions may run concurrently */
	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *step = &saga->steps[i];

		if (step->status == done_status)
			continue;
		done = false;
		if (step->stuck)
			continue;
		progress = true;
		if (due(step, now))
			want_call(step, op, wants);
	}
	if (done)
		saga_set_status(saga, SAGA_SUCCEEDED);
	else if (!progress)
		fail_when_idle(saga);
}

/*
 * Can step i be compensated now, i.e. are the steps after it settled?  A
 * step after it whose call is in flight is not, even if the call is only
 * planned: the rollback may be decided in the turn that planned it (a
 * sibling refused by its target), and that action is sent after the turn
 * all the same.
 */
static bool
dependents_settled(Saga *saga, int i)
{
	int			j,
				k;

	for (j = 0; j < saga->nsteps; j++)
	{
		SagaStep   *other = &saga->steps[j];

		for (k = 0; k < other->ndeps; k++)
			if (other->deps[k] == i &&
				(step_in_flight(other) || step_needs_rollback(other)))
				return false;
	}
	return true;
}

/*
 * at: can step i be restored now?  Each restore checks that the rows are as
 * its action left them, so steps that changed the same row must be
 * restored in the reverse order of their actions, whether or not a
 * dependency orders them.  The participant knows that order (its undo
 * records are numbered in the order of change) and refuses, transiently, a
 * restore that would come too early; what it cannot see is an action still
 * in flight, whose changes are not committed yet.  So a restore waits until
 * no other step of its target has its action in flight.  Nor does it go
 * while another step of its target is stuck on a dirty rollback: it could
 * wait for that one forever, and the saga must stop as failed for an
 * operator, whose saga.retry() then restores both.
 */
static bool
at_target_ready(Saga *saga, int i)
{
	SagaStep   *step = &saga->steps[i];
	int			j;

	for (j = 0; j < saga->nsteps; j++)
	{
		SagaStep   *other = &saga->steps[j];

		if (j == i || strcmp(other->target, step->target) != 0)
			continue;
		if (step_in_flight(other) && other->flight_op == OP_ACTION)
			return false;
		if (other->stuck && step_needs_rollback(other))
			return false;
	}
	return true;
}

static void
advance_rollback(Saga *saga, TimestampTz now, List **wants)
{
	int			i;
	bool		done = true;
	bool		progress = false;

	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *step = &saga->steps[i];

		if (step_in_flight(step))
		{
			done = false;
			progress = true;
			continue;
		}
		if (step_needs_rollback(step))
		{
			done = false;
			/* rollbacks of prepared transactions need no order */
			if (step->stuck || (saga->mode != MODE_XA && !dependents_settled(saga, i)) ||
				(saga->mode == MODE_AT && !at_target_ready(saga, i)))
				continue;
			progress = true;
			if (saga->mode == MODE_XA)
			{
				if (step->next_attempt_at <= now)
					want_call(step, OP_ROLLBACK_PREPARED, wants);
			}
			else if (step->sql[OP_COMPENSATION] == NULL && saga->mode != MODE_AT)
			{
				/* nothing to undo on the participant */
				finish_op(step, STEP_COMPENSATED, now, "compensation_done", "no compensation given");
			}
			else if (step->next_attempt_at <= now)
				want_call(step, OP_COMPENSATION, wants);
		}
		else if (step->status == STEP_PENDING || step->status == STEP_RUNNING)
		{
			step->status = STEP_SKIPPED;
			step->next_attempt_at = 0;
			step->dirty = true;
		}
	}
	if (done)
		saga_set_status(saga, SAGA_ABORTED);
	else if (!progress)
		fail_when_idle(saga);
}

/*
 * Should this saga go before others for a free connection?  Sagas past their
 * decision finish the work that frees everything they hold, and an xa saga
 * with a prepared step holds row locks that other sagas may be waiting on:
 * in submission order alone, older sagas retrying against those locks could
 * take every connection and starve it.
 */
bool
engine_goes_first(Saga *saga)
{
	int			i;

	if (saga->phase != PHASE_FORWARD)
		return true;
	if (saga->mode == MODE_XA)
		for (i = 0; i < saga->nsteps; i++)
			if (saga->steps[i].status == STEP_PREPARED)
				return true;
	return false;
}

void
engine_advance(Saga *saga, TimestampTz now, List **wants)
{
	if (saga_is_final(saga->status))
		return;
	if (saga->phase == PHASE_FORWARD)
		advance_forward(saga, now, wants);
	/* a rollback decided just now proceeds in the same turn */
	if (saga->phase == PHASE_COMMIT)
		advance_commit(saga, now, wants);
	else if (saga->phase == PHASE_ROLLBACK)
		advance_rollback(saga, now, wants);
}

/* ---- results ---- */

/*
 * Keeps the result an action or confirm answered; an operation whose last
 * statement returns no rows answers none, which is "[]".  Returns how the
 * history tells of it: its size, never its content.
 */
static const char *
keep_result(SagaStep *step, StepOp op, RemoteOutcome *outcome)
{
	const char *result = outcome->result ? outcome->result : "[]";

	set_text(step->saga, op == OP_CONFIRM ? &step->confirm_result : &step->result, result);
	step->result_dirty = true;
	if (strcmp(result, "[]") == 0)
		return "";
	return psprintf(", result of %zu bytes", strlen(result));
}

/* ---- outcomes ---- */

/*
 * Whether the remote error came from a statement the worker sent (PREPARE
 * TRANSACTION, the call of a participant function) rather than from the
 * step's SQL, which always runs inside a participant function and so
 * carries that function in its error context.  This tells, in any language
 * of the participant's messages, what the text of the error would say.
 */
static bool
raised_by_statement_sent(const RemoteOutcome *outcome)
{
	return outcome->kind == OUTCOME_ERROR && outcome->error.message != NULL &&
		(outcome->error.context == NULL || outcome->error.context[0] == '\0');
}

static void
schedule_retry(SagaStep *step, const char *what, TimestampTz now)
{
	step->next_attempt_at = backoff_until(step->attempts, now);
	/* a target's "not before" (HTTP Retry-After), within the longest backoff */
	if (step->not_before > step->next_attempt_at)
		step->next_attempt_at = Min(step->not_before,
									now + saga_max_retry_interval_ms * INT64CONST(1000));
	step->not_before = 0;
	step->dirty = true;
	/* SPEC: a step's attempt count is durable once a retry was scheduled */
	step->saga->durable = true;
	engine_add_event(step->saga, step->number, "retry_scheduled", "%s attempt %d failed: %s",
					 what, step->attempts, step->last_error ? step->last_error : "");
}

static void
finish_action(SagaStep *step, RemoteOutcome *outcome, TimestampTz now)
{
	Saga	   *saga = step->saga;
	bool		transient;
	const char *about_result;

	if (outcome->kind == OUTCOME_OK)
	{
		if (outcome->reply == REPLY_HANGING)
		{
			/* its compensation ran first: the action was blocked for good */
			finish_op(step, STEP_COMPENSATED, now, "action_blocked",
					  "the step was compensated before its action arrived");
			if (saga->phase == PHASE_FORWARD)
				start_rollback(saga, psprintf("step %d was compensated before its action arrived", step->number), false);
			return;
		}
		about_result = keep_result(step, OP_ACTION, outcome);
		finish_op(step, mode_plan(saga)->action_done, now, "action_succeeded",
				  psprintf("%s%s", outcome->reply == REPLY_DUPLICATE ?
						   "already applied (barrier)" : mode_plan(saga)->applied,
						   about_result));
		return;
	}

	if (outcome->kind == OUTCOME_UNKNOWN || outcome->applied)
	{
		step->maybe_applied = true;
		step->need_probe = saga->mode == MODE_XA;
	}
	/* 55000 from PREPARE TRANSACTION itself: max_prepared_transactions = 0 */
	if (saga->mode == MODE_XA && outcome->error.sqlstate == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE &&
		raised_by_statement_sent(outcome))
		outcome->error.text = psprintf("target \"%s\" does not accept prepared transactions: "
									   "set max_prepared_transactions above zero there",
									   step->target);
	step_set_call_error(step, outcome);
	transient = remote_outcome_is_transient(outcome);

	if (saga->phase == PHASE_FORWARD &&
		(saga->mode == MODE_MSG ? (transient || step->attempts < step_max_attempts(step))
		 : (transient && step->attempts < step_max_attempts(step))))
	{
		/*
		 * xa: an earlier attempt may still reach PREPARE after this one
		 * failed (a session whose client gave up runs on), and a new call
		 * would only wait on its locks: look for it before every retry.
		 */
		if (saga->mode == MODE_XA)
			step->need_probe = true;
		schedule_retry(step, "action", now);
		return;
	}

	/* a business failure, or transient ones past max_attempts */
	finish_op(step, STEP_FAILED, now, "action_failed",
			  psprintf("%s%s", transient ? "gave up after retries: " : "", call_error(outcome, "")));
	if (saga->phase != PHASE_FORWARD)
		return;
	if (saga->mode == MODE_MSG)
	{
		step->stuck = true;
		set_text(saga, &saga->last_error,
				 psprintf("delivery of step %d failed: %s", step->number,
						  call_error(outcome, "")));
		return;
	}
	start_rollback(saga, psprintf("step %d failed: %s", step->number,
								  call_error(outcome, "unknown error")),
				   false);
}

/*
 * xa: the rollback of an attempt found prepared whose result was lost (see
 * finish_probe).  Done, the action is called again.  Refused for good, the
 * step counts as failed with an unknown outcome and the saga rolls back,
 * which tries that rollback again and stops for an operator if it cannot.
 */
static void
finish_redo_rollback(SagaStep *step, RemoteOutcome *outcome, bool already, TimestampTz now)
{
	Saga	   *saga = step->saga;

	if (outcome->kind == OUTCOME_OK || already)
	{
		step->redo_prepared = false;
		step->next_attempt_at = 0;
		step->dirty = true;
		engine_add_event(saga, step->number, "rollback_done",
						 "the earlier attempt is rolled back; the action runs again");
		return;
	}
	step_set_call_error(step, outcome);
	if (outcome->kind == OUTCOME_UNKNOWN || remote_sqlstate_is_transient(outcome->error.sqlstate))
	{
		schedule_retry(step, "rollback", now);
		return;
	}
	step->redo_prepared = false;
	step->maybe_applied = true;
	finish_op(step, STEP_FAILED, now, "action_failed",
			  psprintf("the attempt found prepared could not be rolled back: %s",
					   call_error(outcome, "")));
	start_rollback(saga, psprintf("step %d: the attempt found prepared could not be rolled back: %s",
								  step->number, call_error(outcome, "unknown error")),
				   false);
}

/* How the history tells of a second-phase operation that is done. */
static const char *
second_phase_done_detail(Saga *saga, RemoteOutcome *outcome, bool already)
{
	if (already)
		return "no such prepared transaction: already resolved";
	if (outcome->reply == REPLY_NULL)
		return "null compensation: the action never took effect";
	if (outcome->reply == REPLY_DUPLICATE)
		return "already applied (barrier)";
	return saga->mode == MODE_AT ? "restored from before-images" : "applied";
}

/* A compensation or confirm: retried until it succeeds, unless refused. */
static void
finish_second_phase(SagaStep *step, RemoteOutcome *outcome, TimestampTz now)
{
	Saga	   *saga = step->saga;
	StepOp		op = step->flight_op;
	const char *what = step_op_name(op);
	bool		prepared_op = op == OP_COMMIT_PREPARED || op == OP_ROLLBACK_PREPARED;
	/* delivering a commit or rollback that already happened counts as done */
	bool		already = prepared_op && outcome->kind == OUTCOME_ERROR &&
		outcome->error.sqlstate == ERRCODE_UNDEFINED_OBJECT;

	if (step->redo_prepared && op == OP_ROLLBACK_PREPARED && saga->phase == PHASE_FORWARD)
	{
		finish_redo_rollback(step, outcome, already, now);
		return;
	}
	if (saga->phase != PHASE_FORWARD)
		step->redo_prepared = false;

	if (op == OP_AT_FORGET && outcome->kind == OUTCOME_OK)
	{
		/* a forget leaves the steps' statuses as they are */
		step->next_attempt_at = 0;
		step->dirty = true;
		at_forgotten_on_target(saga, step);
		engine_add_event(saga, step->number, step_op_info(op)->done_event,
						 "undo records and reservations deleted on %s", step->target);
		return;
	}
	if (outcome->kind == OUTCOME_OK || already)
	{
		const char *about_result = op == OP_CONFIRM ? keep_result(step, op, outcome) : "";

		finish_op(step, step_op_info(op)->done_status, now, step_op_info(op)->done_event,
				  psprintf("%s%s", second_phase_done_detail(saga, outcome, already), about_result));
		return;
	}
	step_set_call_error(step, outcome);
	if (remote_outcome_is_transient(outcome))
	{
		schedule_retry(step, what, now);
		return;
	}
	step->stuck = true;
	step->next_attempt_at = 0;
	if (saga->mode == MODE_AT && op == OP_COMPENSATION)
	{
		/*
		 * A dirty rollback: the step's rows changed since its action, so
		 * nothing of it was restored.  The step is failed and still to be
		 * rolled back once an operator reconciled the rows.
		 */
		step->status = STEP_FAILED;
		step->maybe_applied = true;
		step->finished_at = now;
	}
	set_text(saga, &saga->last_error,
			 psprintf("%s of step %d failed: %s", what, step->number,
					  call_error(outcome, "")));
	engine_add_event(saga, step->number, step_op_info(op)->failed_event,
					 "%s", call_error(outcome, ""));
}

/*
 * xa: before calling an action again whose earlier attempt may have
 * prepared, look: a prepared attempt is kept, and a new one would only
 * wait on the locks the prepared one holds.
 */
static void
finish_probe(SagaStep *step, RemoteOutcome *outcome, TimestampTz now)
{
	if (outcome->kind == OUTCOME_OK && outcome->reply == REPLY_PREPARED &&
		step->saga->phase == PHASE_FORWARD && results_returns_rows(step, OP_ACTION))
	{
		/*
		 * The attempt's result went with its lost reply, and its barrier
		 * record is not readable until the decision: undo it (nothing was
		 * decided yet) and run the action again, which answers it.
		 */
		step->need_probe = false;
		step->redo_prepared = true;
		step->dirty = true;
		engine_add_event(step->saga, step->number, "prepared_discarded",
						 "an earlier attempt was found prepared but its result is unknown: "
						 "it is rolled back and the action runs again");
	}
	else if (outcome->kind == OUTCOME_OK && outcome->reply == REPLY_PREPARED)
	{
		step->need_probe = false;
		finish_op(step, STEP_PREPARED, now, step_op_info(OP_ACTION)->done_event,
				  "found prepared by an earlier attempt");
	}
	else if (outcome->kind == OUTCOME_OK)
		step->need_probe = false;	/* not prepared: call the action again */
	else
	{
		/* the target could not be asked: a failed attempt of the step */
		step->attempts++;
		step_set_call_error(step, outcome);
		if (step->attempts < step_max_attempts(step))
			schedule_retry(step, "probe", now);
		else
		{
			finish_op(step, STEP_FAILED, now, step_op_info(OP_ACTION)->failed_event,
					  psprintf("gave up after retries: %s", call_error(outcome, "")));
			if (step->saga->phase == PHASE_FORWARD)
				start_rollback(step->saga,
							   psprintf("step %d failed: %s", step->number,
										call_error(outcome, "unknown error")),
							   false);
		}
	}
}

/*
 * A participant set up by pg_saga before 1.4 has no run_step(), which steps
 * that return rows or read results need, nor before 1.5 the forms that bind
 * values: say what to do about it.  Whether the participant predates them
 * is its version's to say (remote_participant_predates).
 */
static void
explain_old_participant(SagaStep *step, RemoteOutcome *outcome)
{
	if (barrier_binds_values(step, step->flight_op) &&
		remote_participant_predates(outcome, barrier_call_since(CALL_BOUND)))
		outcome->error.text = psprintf("%s\nHINT: The participant objects on target \"%s\" predate "
									   "bound values (pg_saga 1.5): run saga.setup_participant('%s') "
									   "on the coordinator.",
									   outcome->error.text, step->target, step->target);
	else if (remote_participant_predates(outcome, barrier_call_since(CALL_RUN_RESULT)))
		outcome->error.text = psprintf("%s\nHINT: The participant objects on target \"%s\" predate "
									   "step results (pg_saga 1.4): run saga.setup_participant('%s') "
									   "on the coordinator.",
									   outcome->error.text, step->target, step->target);
}

void
engine_finish_call(SagaStep *step, RemoteOutcome *outcome, TimestampTz now)
{
	step_call_check_idle(step, "engine_finish_call");
	explain_old_participant(step, outcome);
	step->not_before = outcome->not_before;
	step->send_alone = false;
	if (step->flight_op == OP_ACTION)
		finish_action(step, outcome, now);
	else if (step->flight_op == OP_XA_PROBE)
		finish_probe(step, outcome, now);
	else
		finish_second_phase(step, outcome, now);
	step->saga->dirty = true;
}

/* A call that could not even be started counts as a failed attempt. */
void
engine_call_failed_to_start(SagaStep *step, const char *error,
							int sqlstate, TimestampTz now)
{
	RemoteOutcome outcome;

	memset(&outcome, 0, sizeof(outcome));
	outcome.kind = OUTCOME_ERROR;
	outcome.error.sqlstate = sqlstate;
	outcome.error.message = outcome.error.text = (char *) error;
	engine_finish_call(step, &outcome, now);
}

/*
 * The call did not run: its batch could not be run by the target, or it
 * would have waited for a lock inside its batch.  It is planned again, on
 * its own, as if it had not been planned, attempts included.
 */
void
engine_call_not_sent(SagaStep *step)
{
	step_call_check_idle(step, "engine_call_not_sent");
	step->send_alone = true;
	if (step->flight_op != OP_XA_PROBE && step->attempts > 0)
		step->attempts--;
	step->next_attempt_at = 0;
	step->dirty = true;
	step->saga->dirty = true;
}

/*
 * The call's batch was lost (its connection broke or it timed out) after
 * it was sent: the call may have run, which the barrier will tell, but its
 * step is not charged for what may have been another step's doing.  It is
 * planned again at once, on its own, where a fault of its own is its own.
 */
void
engine_call_lost_in_batch(SagaStep *step)
{
	if (step->flight_op == OP_ACTION)
		step->maybe_applied = true;
	engine_call_not_sent(step);
}

TimestampTz
engine_next_wakeup(Saga *saga)
{
	TimestampTz next = DT_NOEND;
	int			i;

	if (saga_is_final(saga->status))
		return next;
	if (saga->phase == PHASE_FORWARD && saga->deadline != 0)
		next = saga->deadline;
	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *step = &saga->steps[i];

		if (!step_in_flight(step) && step->next_attempt_at != 0 && step->next_attempt_at < next)
			next = step->next_attempt_at;
	}
	return next;
}
