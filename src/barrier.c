/*-------------------------------------------------------------------------
 *
 * barrier.c
 *		What a step sends to its participant, and the participant's set-up.
 *
 * A step call is one round trip and one remote transaction (in mode xa, one
 * prepared transaction): it sets the saga.gid and saga.step settings for
 * the transaction, then calls saga_participant.run(), which records the
 * call in the barrier table and runs the user's SQL only if the barrier
 * lets it (see pg_saga_participant.sql).  If anything fails, the whole
 * remote transaction rolls back, barrier record included.
 *
 * Outside xa a call is one statement, prepared once per connection
 * (barrier_step_statement) and executed with the step's values as
 * parameters, so the participant neither parses nor plans it again; the
 * step's timeout is then the session's statement_timeout, set when it
 * changes.  The same call also exists as a query string
 * (barrier_step_call), used in mode xa, where it sits between BEGIN and
 * PREPARE TRANSACTION, and wherever the statement cannot be prepared.
 *
 * Steps ready at once for the same target can also go as one batch: one
 * statement, run_batch(), runs each of them behind the barrier in a
 * subtransaction of its own, in one remote transaction and one round trip
 * (barrier_batch_params).
 *
 * In mode at (see "AT mode" below) a call goes through
 * saga_participant.run_at() instead, as a query string and never batched.
 *
 * The participant objects live in one SQL file, installed with the
 * extension, which setup_participant() sends as it is and which a DBA can
 * run by hand on a managed database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "pg_saga.h"

/* SET LOCAL of the step's timeout and of saga.gid / saga.step. */
static void
append_step_settings(StringInfo buf, const char *gid, int step, int timeout_ms)
{
	appendStringInfo(buf,
					 "SELECT pg_catalog.set_config('statement_timeout', '%d', true), "
					 "pg_catalog.set_config('saga.gid', %s, true), "
					 "pg_catalog.set_config('saga.step', '%d', true); ",
					 timeout_ms, quote_literal_cstr(gid), step);
}

static void
append_run(StringInfo buf, const char *coordinator, const char *gid, SagaStep *step,
		   StepOp op, bool at)
{
	appendStringInfo(buf,
					 "SELECT saga_participant.%s(%s, %s, %d, '%s', %s, ",
					 at ? "run_at" : "run",
					 quote_literal_cstr(coordinator), quote_literal_cstr(gid), step->number,
					 step_op_name(op),
					 step->sql[op] ? quote_literal_cstr(step->sql[op]) : "NULL::text");
	if (step->has_expect_rows && op == OP_ACTION)
		appendStringInfo(buf, INT64_FORMAT "::bigint)", step->expect_rows);
	else
		appendStringInfoString(buf, "NULL::bigint)");
}

/*
 * The query string of one call of op for step.  One string, so one round
 * trip.  Without BEGIN it runs as one implicit transaction; in mode xa the
 * explicit transaction ends with PREPARE TRANSACTION instead, under a name
 * the recovery can parse back to the saga and step.
 */
char *
barrier_step_call(const char *coordinator, Saga *saga, SagaStep *step, StepOp op,
				  int timeout_ms)
{
	StringInfoData buf;
	char	   *xa_name = saga->mode == MODE_XA ?
		quote_literal_cstr(barrier_xa_name(coordinator, saga->id, step->number)) : NULL;

	initStringInfo(&buf);
	switch (op)
	{
		case OP_ACTION:
		case OP_COMPENSATION:
		case OP_CONFIRM:
			if (saga->mode == MODE_XA)
				appendStringInfoString(&buf, "BEGIN; "
									   "SELECT pg_catalog.set_config('saga_participant.prepare', 'on', true); ");
			append_step_settings(&buf, saga->gid, step->number, timeout_ms);
			append_run(&buf, coordinator, saga->gid, step, op, saga->mode == MODE_AT);
			if (saga->mode == MODE_XA)
				appendStringInfo(&buf, "; PREPARE TRANSACTION %s", xa_name);
			break;
		case OP_XA_PROBE:
			appendStringInfo(&buf,
							 "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts "
							 "WHERE gid = %s AND database = pg_catalog.current_database()) "
							 "THEN 'prepared' ELSE 'absent' END", xa_name);
			break;
		case OP_COMMIT_PREPARED:
			appendStringInfo(&buf, "COMMIT PREPARED %s", xa_name);
			break;
		case OP_ROLLBACK_PREPARED:
			appendStringInfo(&buf, "ROLLBACK PREPARED %s", xa_name);
			break;
		case OP_AT_FORGET:
			append_step_settings(&buf, saga->gid, step->number, timeout_ms);
			appendStringInfo(&buf, "SELECT saga_participant.at_forget(%s, %s)",
							 quote_literal_cstr(coordinator), quote_literal_cstr(saga->gid));
			break;
	}
	return buf.data;
}

/*
 * The statement a connection prepares for step calls, and its parameter
 * types.  The settings are made in a subquery, so they are in place before
 * run() executes; run()'s answer is the first column, as the worker reads
 * replies.  Only saga_participant.run() of pg_saga_participant.sql is
 * called, so participants set up by any version keep working.
 */
const char *
barrier_step_statement(const Oid **types)
{
	static const Oid step_types[STEP_CALL_NARGS] = {TEXTOID, TEXTOID, INT4OID, TEXTOID,
	TEXTOID, INT8OID};

	*types = step_types;
	return "SELECT saga_participant.run($1, $2, $3, $4, $5, $6) "
		"FROM (SELECT pg_catalog.set_config('saga.gid', $2, true), "
		"pg_catalog.set_config('saga.step', $3::text, true) OFFSET 0) AS settings";
}

/*
 * The parameters of the prepared statement for op of step; NULL in mode xa
 * and for the operations that are not step calls.
 */
RemoteStepCall *
barrier_step_params(const char *coordinator, Saga *saga, SagaStep *step, StepOp op,
					int timeout_ms)
{
	RemoteStepCall *call;

	if (saga->mode == MODE_XA || saga->mode == MODE_AT ||
		(op != OP_ACTION && op != OP_COMPENSATION && op != OP_CONFIRM))
		return NULL;
	call = palloc0(sizeof(RemoteStepCall));
	call->values[0] = coordinator;
	call->values[1] = saga->gid;
	call->values[2] = psprintf("%d", step->number);
	call->values[3] = step_op_name(op);
	call->values[4] = step->sql[op];
	call->values[5] = step->has_expect_rows && op == OP_ACTION ?
		psprintf(INT64_FORMAT, step->expect_rows) : NULL;
	call->timeout_ms = timeout_ms;
	return call;
}

/*
 * Can this call share a batch with others (see barrier_batch_params)?  Not
 * in mode xa, where each step is a prepared transaction of its own, not in
 * mode at, whose calls go through run_at(), and not for a step with a
 * timeout of its own: a batch runs under saga.step_timeout.
 */
bool
barrier_batchable(Saga *saga, SagaStep *step, StepOp op)
{
	return saga->mode != MODE_XA && saga->mode != MODE_AT && step->timeout_ms == 0 &&
		(op == OP_ACTION || op == OP_COMPENSATION || op == OP_CONFIRM);
}

/*
 * The statement a connection prepares for batches: run_batch() answers one
 * row per step, in order (see pg_saga_participant.sql).
 */
const char *
barrier_batch_statement(const Oid **types)
{
	static const Oid batch_types[STEP_CALL_NARGS] = {TEXTOID, TEXTARRAYOID, INT4ARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};

	*types = batch_types;
	return "SELECT reply, error_sqlstate, error_message, error_detail, error_hint, error_context "
		"FROM saga_participant.run_batch($1, $2, $3, $4, $5, $6)";
}

/*
 * The text of a one-dimensional array of n values, NULL elements where
 * values[i] is NULL.  Written by hand, as the worker sends outside any
 * transaction and so cannot look up array_out's type data: every element
 * is double-quoted, with backslashes and quotes escaped.
 */
static char *
array_text(const char **values, int n)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < n; i++)
	{
		const char *p;

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		if (values[i] == NULL)
		{
			appendStringInfoString(&buf, "NULL");
			continue;
		}
		appendStringInfoChar(&buf, '"');
		for (p = values[i]; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *p);
		}
		appendStringInfoChar(&buf, '"');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * The parameters of one batch of n step calls (ops[i] of steps[i]), all run
 * under the same statement timeout.
 */
RemoteStepCall *
barrier_batch_params(const char *coordinator, SagaStep **steps, StepOp *ops, int n,
					 int timeout_ms)
{
	RemoteStepCall *call = palloc0(sizeof(RemoteStepCall));
	const char **gids = palloc(sizeof(char *) * n);
	const char **numbers = palloc(sizeof(char *) * n);
	const char **opnames = palloc(sizeof(char *) * n);
	const char **sqls = palloc(sizeof(char *) * n);
	const char **expect = palloc(sizeof(char *) * n);
	int			i;

	for (i = 0; i < n; i++)
	{
		SagaStep   *step = steps[i];

		gids[i] = step->saga->gid;
		numbers[i] = psprintf("%d", step->number);
		opnames[i] = step_op_name(ops[i]);
		sqls[i] = step->sql[ops[i]];
		expect[i] = step->has_expect_rows && ops[i] == OP_ACTION ?
			psprintf(INT64_FORMAT, step->expect_rows) : NULL;
	}
	call->batch = true;
	call->values[0] = coordinator;
	call->values[1] = array_text(gids, n);
	call->values[2] = array_text(numbers, n);
	call->values[3] = array_text(opnames, n);
	call->values[4] = array_text(sqls, n);
	call->values[5] = array_text(expect, n);
	call->timeout_ms = timeout_ms;
	return call;
}

/* ---- AT mode ----
 *
 * An at step's action is run by saga_participant.run_at(), which records
 * the before- and after-image of every row it changes; its compensation is
 * run_at(..., 'compensation', NULL), the restore of those images behind the
 * barrier (pg_saga_participant.sql).  Once the saga succeeded, one call per
 * target, at_forget(), deletes its undo records and reservations there: it
 * is sent by the saga's first step on that target (see engine.c), as
 * barrier_step_call(..., OP_AT_FORGET).
 */

/*
 * Prepared-transaction names: "pgsaga_<coordinator>_<saga id>_<step>", the
 * coordinator's id without its dashes.  Derived from internal ids, so any
 * gid works, and well inside PostgreSQL's 200-byte limit.
 */
char *
barrier_xa_prefix(const char *coordinator)
{
	StringInfoData buf;
	const char *p;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "pgsaga_");
	for (p = coordinator; *p; p++)
		if (*p != '-')
			appendStringInfoChar(&buf, *p);
	appendStringInfoChar(&buf, '_');
	return buf.data;
}

char *
barrier_xa_name(const char *coordinator, int64 gtx_id, int step)
{
	return psprintf("%s" INT64_FORMAT "_%d", barrier_xa_prefix(coordinator), gtx_id, step);
}

/* Lists this coordinator's prepared transactions on a target, space-separated. */
char *
barrier_xa_list_query(const char *coordinator)
{
	return psprintf("SELECT pg_catalog.string_agg(gid, ' ') FROM pg_catalog.pg_prepared_xacts "
					"WHERE pg_catalog.starts_with(gid, %s) "
					"AND database = pg_catalog.current_database()",
					quote_literal_cstr(barrier_xa_prefix(coordinator)));
}

bool
barrier_xa_parse(const char *coordinator, const char *name, int64 *gtx_id, int *step)
{
	char	   *prefix = barrier_xa_prefix(coordinator);
	size_t		len = strlen(prefix);
	long long	id;
	int			n;
	int			consumed = 0;

	if (strncmp(name, prefix, len) != 0)
		return false;
	if (sscanf(name + len, "%lld_%d%n", &id, &n, &consumed) != 2 ||
		name[len + consumed] != '\0')
		return false;
	*gtx_id = (int64) id;
	*step = n;
	return true;
}

/* The text of pg_saga_participant.sql from the installation's share dir. */
char *
barrier_participant_sql(void)
{
	char		sharepath[MAXPGPATH];
	char	   *path;
	FILE	   *file;
	StringInfoData buf;
	char		chunk[8192];
	size_t		n;

	get_share_path(my_exec_path, sharepath);
	path = psprintf("%s/extension/pg_saga_participant.sql", sharepath);
	file = AllocateFile(path, "r");
	if (file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path),
				 errhint("The file is installed with the extension; reinstall pg_saga.")));
	initStringInfo(&buf);
	while ((n = fread(chunk, 1, sizeof(chunk), file)) > 0)
		appendBinaryStringInfo(&buf, chunk, n);
	if (ferror(file))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	FreeFile(file);
	return buf.data;
}
