/*-------------------------------------------------------------------------
 *
 * barrier.c
 *		What a step sends to its participant, and the participant's set-up.
 *
 * A step call is one round trip and one remote transaction (in mode xa, one
 * prepared transaction): it sets the saga.gid, saga.step and saga.results
 * settings for the transaction, then calls a participant function
 * (saga_participant.run() or run_step()), which records the call in the
 * barrier table and runs the user's SQL only if the barrier lets it (see
 * pg_saga_participant.sql).  If anything fails, the whole remote
 * transaction rolls back, barrier record included.
 *
 * Step results: when the last statement of an action or confirm returns
 * rows, the worker sends it apart (the raw grammar finds where it starts),
 * and the participant's run_step() collects its rows as one jsonb array,
 * kept with the barrier record and answered with the reply.  Steps whose last statement
 * returns no rows call run(), which participants set up by any version
 * have.  The results a step reads (saga.results) always travel as a
 * parameter value or a quoted literal, never as SQL.
 *
 * Outside xa a call is one statement, prepared once per connection for
 * each kind of call (barrier_call_statement) and executed with the step's
 * values as parameters, so the participant neither parses nor plans it
 * again; the step's timeout is then the session's statement_timeout, set
 * when it changes.  The same call also exists as a query string
 * (barrier_step_call), used in mode xa, where it sits between BEGIN and
 * PREPARE TRANSACTION, and wherever the statement cannot be prepared.
 *
 * Steps ready at once for the same target can also go as one batch: one
 * remote transaction and one round trip, a pipeline in which each step is
 * run_batch_step() between a savepoint and its release, under a timeout of
 * its own (barrier_batch_step_params; remote.c sends it).
 *
 * In mode at (see "AT mode" below) a call goes through
 * saga_participant.run_at() instead, as a query string and never batched.
 *
 * Every call names the saga by its barrier identity and its gid (see
 * barrier_identity): the participant keys its records by both, and the
 * step's SQL reads the gid as saga.gid.  Once the saga is purged, the
 * worker has the participants forget its records (barrier_forget_call).
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
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "pg_saga.h"
#include "barrier.h"
#include "engine.h"
#include "settings.h"

/* ---- results: the rows of a step's last statement ---- */

/*
 * Does this statement return rows, which are then a step's result: a query
 * (but SELECT INTO, which makes a table), or INSERT, UPDATE, DELETE (or,
 * where the grammar has it, MERGE) with RETURNING?
 */
static bool
statement_returns_rows(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_SelectStmt:
			{
				SelectStmt *select = (SelectStmt *) stmt;
				SelectStmt *leftmost = select;

				while (leftmost->larg != NULL)
					leftmost = leftmost->larg;
				return leftmost->intoClause == NULL && select->intoClause == NULL;
			}
		case T_InsertStmt:
			return ((InsertStmt *) stmt)->returningList != NIL;
		case T_UpdateStmt:
			return ((UpdateStmt *) stmt)->returningList != NIL;
		case T_DeleteStmt:
			return ((DeleteStmt *) stmt)->returningList != NIL;
#if PG_VERSION_NUM >= 170000
		case T_MergeStmt:
			return ((MergeStmt *) stmt)->returningList != NIL;
#endif
		default:
			return false;
	}
}

/*
 * Splits sql before its last statement, if that returns rows: *prefix is
 * what comes before it ("" if nothing), *last the statement itself, whose
 * rows the participant collects (see run_step() there).  Returns false
 * (the SQL runs as it is, with no result) when the last statement returns
 * no rows, or when this server's grammar cannot read the SQL: the
 * participant then reports the syntax error, or runs what its own grammar
 * accepts.
 *
 * Only the raw grammar runs here, which touches no catalog and needs no
 * transaction; the error it may raise is caught and dropped, as nothing
 * but memory, in a context of its own, is left to clean.
 */
static bool
split_result_statement(const char *sql, char **prefix, char **last)
{
	MemoryContext parse_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_saga step parse",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(parse_cxt);
	List	   *volatile parsed = NIL;
	bool		found = false;

	PG_TRY();
	{
		parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(parse_cxt);
		FlushErrorState();
		parsed = NIL;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	if (parsed != NIL)
	{
		RawStmt    *stmt = llast_node(RawStmt, parsed);

		if (statement_returns_rows(stmt->stmt))
		{
			int			len = stmt->stmt_len > 0 ? stmt->stmt_len :
				(int) strlen(sql + stmt->stmt_location);

			*prefix = list_length(parsed) > 1 ? pnstrdup(sql, stmt->stmt_location) : pstrdup("");
			*last = pnstrdup(sql + stmt->stmt_location, len);
			found = true;
		}
	}
	MemoryContextDelete(parse_cxt);
	return found;
}

/*
 * The last statement of op of step, whose rows are its result; NULL when
 * op keeps none (a compensation) or that statement returns no rows.  The
 * SQL to run before it in *prefix.  Worked out once per step and operation.
 */
static char *
step_result_sql(SagaStep *step, StepOp op, const char **prefix)
{
	*prefix = step->sql[op];
	if (op != OP_ACTION && op != OP_CONFIRM)
		return NULL;
	if (!step->result_split[op])
	{
		MemoryContext old = MemoryContextSwitchTo(step->saga->cxt);

		if (!split_result_statement(step->sql[op], &step->result_prefix[op],
									&step->result_sql[op]))
			step->result_prefix[op] = step->result_sql[op] = NULL;
		step->result_split[op] = true;
		MemoryContextSwitchTo(old);
	}
	if (step->result_sql[op] != NULL)
		*prefix = step->result_prefix[op];
	return step->result_sql[op];
}

/* Does op of step end with a statement that returns rows (its result)? */
bool
barrier_returns_rows(SagaStep *step, StepOp op)
{
	const char *prefix;

	return step_result_sql(step, op, &prefix) != NULL;
}

/* ---- step calls ---- */

/*
 * The barrier identity of saga's calls, which the participant's functions
 * take as their "coordinator": the coordinator's id and the saga's key,
 * "<coordinator>:<key>".  A gid can be used again once its saga is purged;
 * a key never is, so the records of a saga are its own and the next saga
 * of the same gid meets none of them.  A saga created before pg_saga 1.5
 * has no key and keeps the coordinator's id alone, the identity its calls
 * made before the update carry.  xa prepared transactions are named after
 * the coordinator and the saga's internal id (barrier_xa_name), which is
 * never reused either.
 */
char *
barrier_identity(const char *coordinator, Saga *saga)
{
	if (saga->key == 0)
		return pstrdup(coordinator);
	return psprintf("%s:" INT64_FORMAT, coordinator, saga->key);
}

/*
 * The statements prepared for step calls, by StepCallKind: their text,
 * parameter types and names.  The settings of CALL_RUN are made in a
 * subquery, so they are in place before run() executes; run_step() and
 * run_batch() make them themselves.  run()'s answer is the first column,
 * run_step()'s result the second, as the worker reads replies.  A step
 * whose last statement returns no rows calls run(), which participants set
 * up by any version have.
 */
static const Oid run_types[] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, INT8OID, TEXTOID};
static const Oid run_result_types[] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, INT8OID,
TEXTOID, TEXTOID, INT4OID, TEXTOID};

const char *
barrier_call_statement(StepCallKind kind, const Oid **types, int *nargs)
{
	switch (kind)
	{
		case CALL_RUN:
			*types = run_types;
			*nargs = lengthof(run_types);
			return "SELECT saga_participant.run($1, $2, $3, $4, $5, $6) "
				"FROM (SELECT pg_catalog.set_config('saga.gid', $2, true), "
				"pg_catalog.set_config('saga.step', $3::text, true), "
				"pg_catalog.set_config('saga.results', $7, true) OFFSET 0) AS settings";
		case CALL_RUN_RESULT:
			*types = run_result_types;
			*nargs = lengthof(run_result_types);
			return "SELECT reply, result "
				"FROM saga_participant.run_step($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
		case CALL_BATCH:
			*types = run_result_types;
			*nargs = lengthof(run_result_types);
			return "SELECT reply, result "
				"FROM saga_participant.run_batch_step($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
	}
	pg_unreachable();
}

/* Names start with pgsaga_: clean_session() keeps those. */
const char *
barrier_call_statement_name(StepCallKind kind)
{
	static const char *const names[STEP_CALL_KINDS] = {"pgsaga_step", "pgsaga_step_result",
	"pgsaga_batch_step"};

	return names[kind];
}

/*
 * Does op of step need its own action's result, which the worker does not
 * have (the action's reply was lost), but the action's barrier record may?
 */
static bool
needs_own_result(SagaStep *step, StepOp op)
{
	return op != OP_ACTION && step->result == NULL && barrier_returns_rows(step, OP_ACTION);
}

/*
 * The call of op for step as the parameters of its statement: CALL_RUN
 * unless its last statement returns rows, or it needs its action's result
 * from the participant (CALL_RUN_RESULT), so that a participant set up
 * before results existed runs every other step.
 */
static RemoteStepCall *
step_call(const char *coordinator, Saga *saga, SagaStep *step, StepOp op, int timeout_ms)
{
	RemoteStepCall *call = palloc0(sizeof(RemoteStepCall));
	const char *sql;
	char	   *result_sql = step_result_sql(step, op, &sql);
	char	   *results = engine_step_results(step, op);

	call->values[0] = barrier_identity(coordinator, saga);
	call->values[1] = saga->gid;
	call->values[2] = psprintf("%d", step->number);
	call->values[3] = step_op_name(op);
	call->values[4] = sql;
	call->values[5] = step->has_expect_rows && op == OP_ACTION ?
		psprintf(INT64_FORMAT, step->expect_rows) : NULL;
	if (result_sql == NULL && !needs_own_result(step, op))
	{
		call->kind = CALL_RUN;
		call->nargs = 7;
		call->values[6] = results;
	}
	else
	{
		call->kind = CALL_RUN_RESULT;
		call->nargs = 10;
		call->values[6] = result_sql;
		call->values[7] = results;
		call->values[8] = psprintf("%d", saga_max_result_size);
		call->values[9] = step->name;
	}
	call->timeout_ms = timeout_ms;
	return call;
}

/* A parameter of a call as an SQL literal of its type. */
static void
append_literal(StringInfo buf, const char *value, const char *type)
{
	if (value == NULL)
		appendStringInfo(buf, "NULL::%s", type);
	else
		appendStringInfo(buf, "%s::%s", quote_literal_cstr(value), type);
}

/* The call as query text: what its statement does, with literals. */
static void
append_step_call_text(StringInfo buf, RemoteStepCall *call)
{
	static const char *const run_arg_types[] = {"text", "text", "int", "text", "text",
	"bigint", "text", "text", "int", "text"};
	int			nargs = call->kind == CALL_RUN ? 6 : 10;
	int			i;

	if (call->kind == CALL_RUN)
	{
		appendStringInfoString(buf, "SELECT pg_catalog.set_config('saga.gid', ");
		append_literal(buf, call->values[1], "text");
		appendStringInfoString(buf, ", true), pg_catalog.set_config('saga.step', ");
		append_literal(buf, call->values[2], "text");
		appendStringInfoString(buf, ", true), pg_catalog.set_config('saga.results', ");
		append_literal(buf, call->values[6], "text");
		appendStringInfoString(buf, ", true); SELECT saga_participant.run(");
	}
	else
		appendStringInfoString(buf, "SELECT reply, result FROM saga_participant.run_step(");
	for (i = 0; i < nargs; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		append_literal(buf, call->values[i], run_arg_types[i]);
	}
	appendStringInfoChar(buf, ')');
}

/*
 * An at call as query text: run_at() (see pg_saga_participant.sql), which
 * records the action's row images or restores them, after the settings.
 * An action whose last statement returns rows is split as for other steps,
 * and run_at() answers its result.
 */
static void
append_at_call_text(StringInfo buf, const char *coordinator, Saga *saga, SagaStep *step,
					StepOp op)
{
	const char *sql;
	char	   *result_sql = step_result_sql(step, op, &sql);

	appendStringInfoString(buf, "SELECT pg_catalog.set_config('saga.gid', ");
	append_literal(buf, saga->gid, "text");
	appendStringInfo(buf, ", true), pg_catalog.set_config('saga.step', '%d', true), "
					 "pg_catalog.set_config('saga.results', ", step->number);
	append_literal(buf, engine_step_results(step, op), "text");
	appendStringInfoString(buf, ", true); SELECT reply, result FROM saga_participant.run_at(");
	append_literal(buf, barrier_identity(coordinator, saga), "text");
	appendStringInfoString(buf, ", ");
	append_literal(buf, saga->gid, "text");
	appendStringInfo(buf, ", %d, '%s', ", step->number, step_op_name(op));
	append_literal(buf, sql, "text");
	appendStringInfoString(buf, ", ");
	append_literal(buf, step->has_expect_rows && op == OP_ACTION ?
				   psprintf(INT64_FORMAT, step->expect_rows) : NULL, "bigint");
	appendStringInfoString(buf, ", ");
	append_literal(buf, result_sql, "text");
	appendStringInfo(buf, ", %d)", saga_max_result_size);
}

/*
 * The query string of one call of op for step.  One string, so one round
 * trip.  Without BEGIN it runs as one implicit transaction; in mode xa the
 * explicit transaction ends with PREPARE TRANSACTION instead, under a name
 * the recovery can parse back to the saga and step.  params, if not NULL,
 * is what barrier_step_params() made for the same call, so that its values
 * (the results passed on, above all) are worked out once.
 */
char *
barrier_step_call(const char *coordinator, Saga *saga, SagaStep *step, StepOp op,
				  int timeout_ms, RemoteStepCall *params)
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
			appendStringInfo(&buf, "SELECT pg_catalog.set_config('statement_timeout', '%d', true); ",
							 timeout_ms);
			if (saga->mode == MODE_AT)
				append_at_call_text(&buf, coordinator, saga, step, op);
			else
				append_step_call_text(&buf, params ? params :
									  step_call(coordinator, saga, step, op, timeout_ms));
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
			appendStringInfo(&buf, "SELECT pg_catalog.set_config('statement_timeout', '%d', true); ",
							 timeout_ms);
			appendStringInfo(&buf, "SELECT saga_participant.at_forget(%s, %s)",
							 quote_literal_cstr(barrier_identity(coordinator, saga)),
							 quote_literal_cstr(saga->gid));
			break;
	}
	return buf.data;
}

/*
 * The parameters of the prepared statement for op of step; NULL in mode xa
 * and for the operations that are not step calls.
 */
RemoteStepCall *
barrier_step_params(const char *coordinator, Saga *saga, SagaStep *step, StepOp op,
					int timeout_ms)
{
	if (saga->mode == MODE_XA || saga->mode == MODE_AT ||
		(op != OP_ACTION && op != OP_COMPENSATION && op != OP_CONFIRM))
		return NULL;
	return step_call(coordinator, saga, step, op, timeout_ms);
}

/*
 * Can this call share a batch with others (see barrier_batch_step_params)?
 * Not in mode xa, where each step is a prepared transaction of its own, nor
 * in mode at, whose calls go through run_at().  A step of a batch runs
 * under a timeout of its own, so one with its own timeout may join.
 */
bool
barrier_batchable(Saga *saga, SagaStep *step, StepOp op)
{
	return saga->mode != MODE_XA && saga->mode != MODE_AT &&
		(op == OP_ACTION || op == OP_COMPENSATION || op == OP_CONFIRM);
}

/*
 * The parameters of op of step as one element of a batch: run_step()'s,
 * for run_batch_step() (see pg_saga_participant.sql), under timeout_ms.
 */
RemoteStepCall *
barrier_batch_step_params(const char *coordinator, SagaStep *step, StepOp op, int timeout_ms)
{
	RemoteStepCall *call = step_call(coordinator, step->saga, step, op, timeout_ms);

	if (call->kind == CALL_RUN)
	{
		/* run()'s arguments to run_step()'s: no result statement */
		call->values[7] = call->values[6];
		call->values[6] = NULL;
		call->values[8] = psprintf("%d", saga_max_result_size);
		call->values[9] = step->name;
	}
	call->kind = CALL_BATCH;
	call->nargs = 10;
	return call;
}

/* ---- forgetting the records of purged sagas ---- */

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
 * The query that deletes, on one participant, the calling role's barrier
 * records of n purged sagas: saga_participant.forget() (see
 * pg_saga_participant.sql) with the barrier identity of each and, for a
 * saga created before pg_saga 1.5 (identity: the coordinator's), its gid
 * (NULL otherwise).  One statement and one remote transaction, bounded by
 * timeout_ms.
 */
char *
barrier_forget_call(const char **identities, const char **gids, int n, int timeout_ms)
{
	return psprintf("SELECT pg_catalog.set_config('statement_timeout', '%d', true); "
					"SELECT saga_participant.forget(%s::text[], %s::text[])",
					timeout_ms,
					quote_literal_cstr(array_text(identities, n)),
					quote_literal_cstr(array_text(gids, n)));
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
barrier_xa_name(const char *coordinator, int64 saga_id, int step)
{
	return psprintf("%s" INT64_FORMAT "_%d", barrier_xa_prefix(coordinator), saga_id, step);
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
barrier_xa_parse(const char *coordinator, const char *name, int64 *saga_id, int *step)
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
	*saga_id = (int64) id;
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
