/*-------------------------------------------------------------------------
 *
 * results.c
 *		A step's results: which of its statements answers them, and what
 *		the steps after it read of them.
 *
 * When the last statement of an action or confirm returns rows, those rows
 * are the operation's result: the worker sends that statement apart (the
 * raw grammar finds where it starts; barrier.c builds the call) and the
 * participant's run_step() answers its rows as one jsonb array, which the
 * engine keeps in the step (engine.c, keep_result).  A step then reads the
 * results of the steps it runs after as saga.results, a jsonb object
 * built here and passed by barrier.c (as a parameter or a quoted literal)
 * or http_request.c (as the request's data).
 *
 * This file holds no state of its own (where a step's SQL splits is kept
 * in the step) and does no I/O; it is called by the engine, barrier.c and
 * http_request.c, none of which it calls back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "pg_saga.h"
#include "results.h"

/* ---- the rows of a step's last statement ---- */

/*
 * Does this statement return rows, which are then a step's result: a query
 * (but SELECT INTO, which makes a table), or INSERT, UPDATE, DELETE (or,
 * where the grammar has it, MERGE) with RETURNING?
 */
bool
results_statement_returns_rows(Node *stmt)
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

		if (results_statement_returns_rows(stmt->stmt))
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
char *
results_step_sql(SagaStep *step, StepOp op, const char **prefix)
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
results_returns_rows(SagaStep *step, StepOp op)
{
	const char *prefix;

	return results_step_sql(step, op, &prefix) != NULL;
}

/* ---- what a step reads of the results before it ---- */

/* Marks step i and every step it comes after, directly or not. */
static void
mark_with_deps(Saga *saga, int i, bool *marked)
{
	int			k;

	if (marked[i])
		return;
	marked[i] = true;
	for (k = 0; k < saga->steps[i].ndeps; k++)
		mark_with_deps(saga, saga->steps[i].deps[k], marked);
}

/*
 * What op of step finds in saga.results: a jsonb object (as text) with the
 * result of every step it runs after, directly or through their own
 * dependencies, under the step's name; in a compensation or confirm also
 * its own action's.  "{}" when there is none.
 */
char *
results_for_step(SagaStep *step, StepOp op)
{
	Saga	   *saga = step->saga;
	int			self = step - saga->steps;
	bool	   *marked;
	StringInfoData buf;
	int			i;
	bool		any = false;

	/*
	 * Its own action's result, which the worker lacks when the action's
	 * reply was lost: [] for an action whose last statement returns no
	 * rows; otherwise the participant adds it from the barrier record.
	 */
	bool		own_empty = op != OP_ACTION && step->result == NULL &&
		!results_returns_rows(step, OP_ACTION);

	for (i = 0; i < saga->nsteps && !any; i++)
		any = saga->steps[i].result != NULL;
	if (!any && !own_empty)
		return "{}";
	marked = palloc0(sizeof(bool) * saga->nsteps);
	mark_with_deps(saga, self, marked);
	if (op == OP_ACTION)
		marked[self] = false;
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *other = &saga->steps[i];

		const char *result = other->result ? other->result :
			(i == self && own_empty) ? "[]" : NULL;

		if (!marked[i] || result == NULL)
			continue;
		if (buf.len > 1)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, other->name);
		appendStringInfoString(&buf, ": ");
		appendStringInfoString(&buf, result);
	}
	appendStringInfoChar(&buf, '}');
	pfree(marked);
	return buf.data;
}
