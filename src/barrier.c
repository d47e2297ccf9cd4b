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
 * rows, the worker sends it apart (results.c finds where it starts),
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
 * statement, saga_participant.run_steps(), that runs them in one remote
 * transaction, each in a subtransaction of its own, and answers a row per
 * step; its arguments are arrays, element i step i's (barrier_batch_step_params
 * for a step, barrier_batch_params for a batch; remote.c sends it).
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
#include "common/keywords.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "pg_saga.h"
#include "barrier.h"
#include "results.h"
#include "settings.h"

static char *array_text(const char **values, int n);

/* ---- bound values ----
 *
 * A saga's values ($1 .. $n) are bound on the participant, never spliced:
 * the worker sends the statements of an operation that references values
 * one per array element, with the numbers each references, and the values
 * as a text[] parameter; the participant prepares each statement once per
 * session and executes it with its values (saga_participant.bound_call()).
 * PostgreSQL's own scanner finds the references ($n in a string literal or
 * a comment is none), its raw grammar the statements.
 */

/* The values ($n) sql references, as a sorted list of distinct numbers. */
static List *
referenced_values(const char *sql)
{
	MemoryContext old = CurrentMemoryContext;
	List	   *volatile refs = NIL;

	PG_TRY();
	{
		core_yy_extra_type yyextra;
		core_yyscan_t scanner = scanner_init(sql, &yyextra, &ScanKeywords, ScanKeywordTokens);
		core_YYSTYPE lval;
		YYLTYPE		loc;
		int			token;

		/*
		 * A parameter is the token that starts with "$" and a digit: a
		 * dollar quote's tag cannot start with a digit, and the token
		 * numbers (gram.h) are not installed from PostgreSQL 16 on.
		 */
		while ((token = core_yylex(&lval, &loc, scanner)) != 0)
			if (sql[loc] == '$' && isdigit((unsigned char) sql[loc + 1]))
				refs = list_append_unique_int(refs, lval.ival);
		scanner_finish(scanner);
	}
	PG_CATCH();
	{
		/* an unterminated literal, say: the participant reports it */
		MemoryContextSwitchTo(old);
		FlushErrorState();
	}
	PG_END_TRY();
	list_sort(refs, list_int_cmp);
	return refs;
}

/*
 * The highest value ($n) sql references, 0 if none.  A saga's steps never
 * reference a value it lacks (barrier_check_values refuses them at start),
 * so the worker that finds one has read the saga before its values.
 */
int
barrier_values_referenced(const char *sql)
{
	List	   *refs;

	if (sql == NULL || strchr(sql, '$') == NULL)
		return 0;
	refs = referenced_values(sql);
	return refs == NIL ? 0 : llast_int(refs);
}

/* Can a statement that references values be prepared, and so bound? */
static bool
statement_preparable(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_SelectStmt:
			return results_statement_returns_rows(stmt);	/* not SELECT INTO */
		case T_InsertStmt:
		case T_UpdateStmt:
		case T_DeleteStmt:
		case T_MergeStmt:
			return true;
		default:
			return false;
	}
}

/*
 * Splits sql, which references values, into its statements for binding:
 * *statements and *refs as text[] text, one element per statement, with
 * "\nRETURNING NULL" appended to a last INSERT, UPDATE or DELETE whose rows
 * are to be counted (count_last: expect_rows), which the participant then
 * counts (an EXECUTE of a prepared statement reports no row count to
 * PL/pgSQL).  Returns the highest value referenced, 0 when sql references
 * none (nothing else is set then); on a statement that cannot be bound,
 * -1, with *problem and *problem_code saying why.
 */
static int
bound_split(const char *sql, bool count_last, char **statements, char **refs,
			char **problem, int *problem_code)
{
	List	   *all = referenced_values(sql);
	MemoryContext parse_cxt;
	MemoryContext old;
	List	   *volatile parsed = NIL;
	const char **texts;
	const char **ref_texts;
	int			top = 0;
	int			n;
	ListCell   *lc;

	if (all == NIL)
		return 0;
	parse_cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_saga bound parse",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(parse_cxt);
	PG_TRY();
	{
		parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		*problem = psprintf("cannot bind values in SQL this server cannot parse: %s",
							edata->message);
		*problem_code = ERRCODE_SYNTAX_ERROR;
		MemoryContextDelete(parse_cxt);
		return -1;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	n = list_length(parsed);
	texts = palloc0(sizeof(char *) * Max(n, 1));
	ref_texts = palloc0(sizeof(char *) * Max(n, 1));
	n = 0;
	foreach(lc, parsed)
	{
		RawStmt    *stmt = lfirst_node(RawStmt, lc);
		int			len = stmt->stmt_len > 0 ? stmt->stmt_len :
			(int) strlen(sql + stmt->stmt_location);
		char	   *text = pnstrdup(sql + stmt->stmt_location, len);
		List	   *mine = referenced_values(text);
		StringInfoData buf;
		ListCell   *rc;

		if (mine != NIL && !statement_preparable(stmt->stmt))
		{
			*problem = pstrdup("values ($n) can be used only in SELECT, INSERT, UPDATE, DELETE and MERGE statements");
			*problem_code = ERRCODE_FEATURE_NOT_SUPPORTED;
			MemoryContextDelete(parse_cxt);
			return -1;
		}
		if (mine != NIL && count_last && lnext(parsed, lc) == NULL &&
			!results_statement_returns_rows(stmt->stmt))
		{
			if (IsA(stmt->stmt, MergeStmt))
			{
				*problem = pstrdup("the rows of a MERGE that uses values ($n) cannot be counted for expect_rows");
				*problem_code = ERRCODE_FEATURE_NOT_SUPPORTED;
				MemoryContextDelete(parse_cxt);
				return -1;
			}
			text = psprintf("%s\nRETURNING NULL", text);
		}
		initStringInfo(&buf);
		appendStringInfoChar(&buf, '{');
		foreach(rc, mine)
		{
			appendStringInfo(&buf, "%s%d", foreach_current_index(rc) > 0 ? "," : "", lfirst_int(rc));
			top = Max(top, lfirst_int(rc));
		}
		appendStringInfoChar(&buf, '}');
		texts[n] = text;
		ref_texts[n] = buf.data;
		n++;
	}
	MemoryContextDelete(parse_cxt);
	if (linitial_int(all) < 1)
	{
		*problem = pstrdup("$0 is not a value: values are numbered from $1");
		*problem_code = ERRCODE_INVALID_PARAMETER_VALUE;
		return -1;
	}
	*statements = array_text(texts, n);
	*refs = array_text(ref_texts, n);
	return Max(top, llast_int(all));
}

/*
 * Checks what sql, the operation what of step name, does with the values
 * ($n) of a saga that has nargs of them: a reference to a value it lacks
 * is refused (22023), and so is one that cannot be bound (0A000, or the
 * parser's error).  Called where a saga is started, a step added or a
 * definition made, before anything is written.  Touches no catalog.
 */
void
barrier_check_values(const char *sql, int nargs, const char *what, const char *name,
					 bool count_last)
{
	char	   *statements;
	char	   *refs;
	char	   *problem = NULL;
	int			code = 0;
	int			top;

	if (sql == NULL)
		return;
	top = bound_split(sql, count_last, &statements, &refs, &problem, &code);
	if (top < 0)
		ereport(ERROR,
				(errcode(code),
				 errmsg("the %s of step \"%s\" cannot use values: %s", what, name, problem),
				 errhint("A value is bound as a parameter of a prepared statement on the participant.")));
	if (top > nargs)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s of step \"%s\" references $%d, but the saga has %d value%s",
						what, name, top, nargs, nargs == 1 ? "" : "s"),
				 errhint("Pass the values in args, or write $n inside a string literal if it is not a value.")));
}

/*
 * Does op of step reference values of its saga?  Then its statements go
 * apart, with the values as a parameter (see above).  Worked out once per
 * step and operation; a saga without values never has any.
 */
static bool
step_bound(SagaStep *step, StepOp op)
{
	if (step->saga->nargs == 0 || op >= STEP_SQL_OPS || step->sql[op] == NULL)
		return false;
	if (!step->bound_split[op])
	{
		MemoryContext old = MemoryContextSwitchTo(step->saga->cxt);
		char	   *problem = NULL;
		int			code;

		if (bound_split(step->sql[op], op == OP_ACTION && step->has_expect_rows,
						&step->bound_statements[op], &step->bound_refs[op],
						&problem, &code) <= 0)
			step->bound_statements[op] = step->bound_refs[op] = NULL;
		step->bound_split[op] = true;
		MemoryContextSwitchTo(old);
	}
	return step->bound_statements[op] != NULL;
}

/* Does op of step bind values (and so need a participant of pg_saga 1.5)? */
bool
barrier_binds_values(SagaStep *step, StepOp op)
{
	return step_bound(step, op);
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
 * run_steps() make them themselves.  run()'s answer is the first column,
 * run_step()'s result the second, as the worker reads replies.  A step
 * whose last statement returns no rows calls run(), which participants set
 * up by any version have.
 */
static const Oid run_types[] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, INT8OID, TEXTOID};
static const Oid run_result_types[] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, INT8OID,
TEXTOID, TEXTOID, INT4OID, TEXTOID};
static const Oid run_bound_types[] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, INT8OID,
TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};


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
		case CALL_BATCH_BOUND:
			/* a batch goes as query text: see barrier_batch_query */
			*types = NULL;
			*nargs = 0;
			return NULL;
		case CALL_BOUND:
			*types = run_bound_types;
			*nargs = lengthof(run_bound_types);
			return "SELECT reply, result "
				"FROM saga_participant.run_step($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
				"$11, $12, $13)";
	}
	pg_unreachable();
}

/* Names start with pgsaga_: clean_session() keeps those. */
const char *
barrier_call_statement_name(StepCallKind kind)
{
	static const char *const names[STEP_CALL_KINDS] = {"pgsaga_step", "pgsaga_step_result",
	"pgsaga_batch", "pgsaga_step_bound", "pgsaga_batch_bound"};

	return names[kind];
}

/*
 * The first pg_saga version whose participant objects have the function
 * that kind's statement calls: run() every version, run_step() 1.4,
 * the forms that bind values 1.5, run_steps() (batches) 1.7.  The worker calls
 * nothing a participant that says its version lacks (remote.c).
 */
int
barrier_call_since(StepCallKind kind)
{
	static const int since[STEP_CALL_KINDS] = {
		PARTICIPANT_VERSION(1, 0),	/* CALL_RUN */
		PARTICIPANT_VERSION(1, 4),	/* CALL_RUN_RESULT */
		PARTICIPANT_VERSION(1, 7),	/* CALL_BATCH */
		PARTICIPANT_VERSION(1, 5),	/* CALL_BOUND */
		PARTICIPANT_VERSION(1, 9)	/* CALL_BATCH_BOUND: its values apart */
	};

	return since[kind];
}

/*
 * Does op of step need its own action's result, which the worker does not
 * have (the action's reply was lost), but the action's barrier record may?
 */
static bool
needs_own_result(SagaStep *step, StepOp op)
{
	return op != OP_ACTION && step->result == NULL && results_returns_rows(step, OP_ACTION);
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
	char	   *result_sql = results_step_sql(step, op, &sql);
	char	   *results = results_for_step(step, op);

	call->values[0] = barrier_identity(coordinator, saga);
	call->values[1] = saga->gid;
	call->values[2] = psprintf("%d", step->number);
	call->values[3] = step_op_name(op);
	call->values[4] = sql;
	call->values[5] = step->has_expect_rows && op == OP_ACTION ?
		psprintf(INT64_FORMAT, step->expect_rows) : NULL;
	if (step_bound(step, op))
	{
		/* the statements apart, the values a parameter: none in any text */
		call->kind = CALL_BOUND;
		call->nargs = 13;
		call->values[4] = NULL;
		call->values[6] = result_sql;
		call->values[7] = results;
		call->values[8] = psprintf("%d", saga_max_result_size);
		call->values[9] = step->name;
		call->values[10] = step->bound_statements[op];
		call->values[11] = step->bound_refs[op];
		call->values[12] = saga->args;
	}
	else if (result_sql == NULL && !needs_own_result(step, op))
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
	char	   *result_sql = results_step_sql(step, op, &sql);

	appendStringInfoString(buf, "SELECT pg_catalog.set_config('saga.gid', ");
	append_literal(buf, saga->gid, "text");
	appendStringInfo(buf, ", true), pg_catalog.set_config('saga.step', '%d', true), "
					 "pg_catalog.set_config('saga.results', ", step->number);
	append_literal(buf, results_for_step(step, op), "text");
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
			{
				RemoteStepCall *call = params ? params :
					step_call(coordinator, saga, step, op, timeout_ms);

				/*
				 * A call that binds values has no text with them: where its
				 * statement cannot be prepared, remote.c sends the statement
				 * with its parameters (xa and at take no values).
				 */
				if (call->kind == CALL_BOUND)
				{
					const Oid  *types;
					int			nargs;

					if (saga->mode == MODE_XA)
						elog(ERROR, "pg_saga: an xa saga cannot bind values");
					return pstrdup(barrier_call_statement(CALL_BOUND, &types, &nargs));
				}
				append_step_call_text(&buf, call);
			}
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
 * The parameters of op of step as one element of a batch: run_step()'s,
 * which barrier_batch_params makes element i of run_steps()'s arrays (see
 * pg_saga_participant.sql), under timeout_ms.
 */
RemoteStepCall *
barrier_batch_step_params(const char *coordinator, SagaStep *step, StepOp op, int timeout_ms)
{
	RemoteStepCall *call = step_call(coordinator, step->saga, step, op, timeout_ms);

	if (call->kind == CALL_BOUND)
	{
		call->kind = CALL_BATCH_BOUND;
		return call;
	}
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

/*
 * A batch step call of kind CALL_BATCH as CALL_BATCH_BOUND, binding no
 * value: so that a batch whose steps bind values takes the others too,
 * all through one statement.
 */
void
barrier_batch_as_bound(RemoteStepCall *call)
{
	Assert(call->kind == CALL_BATCH || call->kind == CALL_BATCH_BOUND);
	call->kind = CALL_BATCH_BOUND;
	call->nargs = 13;
}

/* Column arg of run_steps()'s arguments for the n calls: the text of its array. */
static char *
batch_column(RemoteStepCall **calls, int n, int arg)
{
	const char **column = palloc(sizeof(char *) * Max(n, 1));
	char	   *array;
	int			i;

	for (i = 0; i < n; i++)
		column[i] = arg == BARRIER_BATCH_NARGS - 1 ? psprintf("%d", calls[i]->timeout_ms) :
			arg < calls[i]->nargs ? calls[i]->values[arg] : NULL;
	array = array_text(column, n);
	pfree(column);
	return array;
}

/*
 * The query that runs the n calls of a batch: run_steps() with, for each of
 * run_step()'s parameters, the array of the calls' values (NULL where a
 * call has none), and last the calls' timeouts in ms.  It goes as query
 * text, not as a prepared statement, so that the participant's
 * statement_timestamp() is taken before the statement's timer starts, as
 * run_steps() needs to tell that timer's cancel from a step's own 57014
 * (with Bind and Execute each taking it anew, it could be a moment later).
 * The saga's values are data, never SQL text (SPEC, "Bound values"): with
 * a values_token, the call is run_steps()'s form of 1.9 that takes them
 * from the session, where the worker put them just before (see
 * barrier_batch_values), after that token.  Its columns are those remote.c
 * reads (BatchColumn there).
 */
char *
barrier_batch_query(RemoteStepCall **calls, int n, const char *values_token)
{
	StringInfoData buf;
	int			arg;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT i, reply, result, error_sqlstate, error_message, "
						   "error_detail, error_hint, error_context, cut, ms "
						   "FROM saga_participant.run_steps(");
	for (arg = 0; arg < BARRIER_BATCH_NARGS; arg++)
	{
		char	   *array;

		if (values_token && arg == BARRIER_BATCH_VALUES_ARG)
			continue;
		if (arg > 0)
			appendStringInfoString(&buf, ", ");
		array = batch_column(calls, n, arg);
		append_literal(&buf, array, "text[]");
		pfree(array);
	}
	if (values_token)
	{
		appendStringInfoString(&buf, ", ");
		append_literal(&buf, values_token, "text");
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * The values of the n calls of a batch, as the session keeps them for
 * run_steps(): values_token, a colon, then the text of the array that
 * run_steps() takes as arg_values.  Sent as a parameter, apart from the
 * batch's query (see barrier_batch_query).
 */
char *
barrier_batch_values(RemoteStepCall **calls, int n, const char *values_token)
{
	char	   *array = batch_column(calls, n, BARRIER_BATCH_VALUES_ARG);
	char	   *kept = psprintf("%s:%s", values_token, array);

	pfree(array);
	return kept;
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
