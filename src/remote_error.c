/*-------------------------------------------------------------------------
 *
 * remote_error.c
 *		An error a target reported: its parts as libpq gives them, the text
 *		a step records of it, and raising it again in a user's backend.
 *
 * A participant's error takes one path wherever it arrives.  Its fields
 * (SQLSTATE, message, detail, hint, context) are read into a RemoteError
 * by remote_error_from_result().  The worker keeps it so (remote.c) and
 * makes a step's last_error of it (remote_error_text); a user backend that
 * talked to the target itself (saga.setup_participant(), remote_backend.c)
 * raises it again with remote_error_raise(), with its SQLSTATE, detail,
 * hint and context, as postgres_fdw raises a remote error: the caller sees
 * what the participant said and can catch it by its code.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "libpq-fe.h"

#include "pg_saga.h"
#include "remote.h"

/* A field of a remote error, copied into cxt; NULL if empty. */
static char *
field_copy(const PGresult *res, int field, MemoryContext cxt)
{
	const char *text = PQresultErrorField(res, field);

	return text && *text ? MemoryContextStrdup(cxt, text) : NULL;
}

/* A SQLSTATE as libpq gives it, as an integer; 0 for none. */
static int
sqlstate_from_text(const char *text)
{
	if (text == NULL || strlen(text) != 5)
		return 0;
	return MAKE_SQLSTATE(text[0], text[1], text[2], text[3], text[4]);
}

/*
 * The error of a failed result, in its parts, allocated in cxt.  libpq's
 * own errors (a broken connection) have no fields: SQLSTATE 0, and a
 * message that says nothing more than that.
 */
void
remote_error_from_result(RemoteError *error, const PGresult *res, MemoryContext cxt)
{
	const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	error->sqlstate = sqlstate_from_text(PQresultErrorField(res, PG_DIAG_SQLSTATE));
	error->message = MemoryContextStrdup(cxt, message && *message ? message : "unknown error");
	error->detail = field_copy(res, PG_DIAG_MESSAGE_DETAIL, cxt);
	error->hint = field_copy(res, PG_DIAG_MESSAGE_HINT, cxt);
	error->context = field_copy(res, PG_DIAG_CONTEXT, cxt);
	error->text = NULL;
}

/*
 * The error of one step of a batch, as run_steps() answers it in the
 * columns of its row (SQLSTATE, message, detail, hint, context: text, NULL
 * where empty), allocated in cxt.
 */
void
remote_error_from_fields(RemoteError *error, const char *const *fields, MemoryContext cxt)
{
	error->sqlstate = sqlstate_from_text(fields[0]);
	error->message = MemoryContextStrdup(cxt, fields[1] && *fields[1] ? fields[1] : "unknown error");
	error->detail = fields[2] && *fields[2] ? MemoryContextStrdup(cxt, fields[2]) : NULL;
	error->hint = fields[3] && *fields[3] ? MemoryContextStrdup(cxt, fields[3]) : NULL;
	error->context = fields[4] && *fields[4] ? MemoryContextStrdup(cxt, fields[4]) : NULL;
	error->text = NULL;
}

/*
 * Raises error, which target reported, in a user's backend at elevel: its
 * SQLSTATE (XX000 for libpq's own, which has none), its message after the
 * target's name, and the detail, hint and context as the remote wrote
 * them.  Nothing of it is filtered: unlike a step's last_error, the frames
 * of the participant's functions are what the caller ran there.
 */
void
remote_error_raise(int elevel, const RemoteError *error, const char *target)
{
	ereport(elevel,
			(errcode(error->sqlstate != 0 ? error->sqlstate : ERRCODE_INTERNAL_ERROR),
			 errmsg("target \"%s\" reported an error: %s", target,
					error->message ? error->message : "unknown error"),
			 error->detail ? errdetail_internal("%s", error->detail) : 0,
			 error->hint ? errhint("%s", error->hint) : 0,
			 error->context ? errcontext("%s", error->context) : 0));
}

/*
 * If line starts the quotation of a statement that the participant's own
 * frame ran (the step's SQL), the end of that quotation, which may span
 * lines; NULL otherwise.
 */
static const char *
step_statement_end(const char *line)
{
	const char *end;
	const char *frame;

	if (strncmp(line, "SQL statement \"", 15) != 0 &&
		strncmp(line, "SQL expression \"", 16) != 0)
		return NULL;
	end = strstr(line, "\"\nPL/pgSQL function saga_participant.");
	if (end == NULL)
		return NULL;
	/* another frame in between: the statement is not the step's */
	frame = strstr(line, "\nPL/pgSQL function ");
	if (frame != NULL && frame < end + 1)
		return NULL;
	frame = strstr(line, "\nSQL function ");
	if (frame != NULL && frame < end + 1)
		return NULL;
	return end + 1;
}

/*
 * The CONTEXT lines of a remote error that say something about the step:
 * not the frames of the participant's own functions, nor the line quoting
 * the step's SQL right above the frame that ran it.
 */
static void
append_context(StringInfo buf, const char *context)
{
	const char *line = context;
	bool		first = true;

	while (line && *line)
	{
		const char *skip_to = step_statement_end(line);
		const char *next;

		if (skip_to != NULL)
		{
			line = *skip_to == '\n' ? skip_to + 1 : skip_to;
			continue;
		}
		next = strchr(line, '\n');
		if (!(strncmp(line, "PL/pgSQL function saga_participant.", 35) == 0 ||
			  strncmp(line, "SQL function \"run", 17) == 0 ||
			  (strstr(line, "saga_participant.") != NULL &&
			   (next == NULL || strstr(line, "saga_participant.") < next))))
		{
			appendStringInfoString(buf, first ? "\nCONTEXT: " : "\n");
			appendBinaryStringInfo(buf, line, next ? next - line : (int) strlen(line));
			first = false;
		}
		line = next ? next + 1 : NULL;
	}
}

/*
 * The text of a remote error as the step records it: the message, then its
 * DETAIL, HINT and CONTEXT lines where the remote gave them, so that an
 * operator sees what the participant said.
 */
char *
remote_error_text(const RemoteError *error)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, error->message ? error->message : "unknown error");
	if (error->detail && *error->detail)
		appendStringInfo(&buf, "\nDETAIL: %s", error->detail);
	if (error->hint && *error->hint)
		appendStringInfo(&buf, "\nHINT: %s", error->hint);
	if (error->context && *error->context)
		append_context(&buf, error->context);
	return buf.data;
}

