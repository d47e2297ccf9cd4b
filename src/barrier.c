/*-------------------------------------------------------------------------
 *
 * barrier.c
 *		What a step sends to its participant, and the participant's set-up.
 *
 * A step call is one query string, so one round trip, and so one implicit
 * remote transaction: it sets the step's timeout and the saga.gid and
 * saga.step settings locally, then calls saga_participant.run(), which
 * records the call in the barrier table and runs the user's SQL only if
 * the barrier lets it (see pg_saga_participant.sql).  If anything fails,
 * the whole remote transaction rolls back, barrier record included.
 *
 * The participant objects live in one SQL file, installed with the
 * extension, which setup_participant() sends as it is and which a DBA can
 * run by hand on a managed database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "pg_saga.h"

char *
barrier_call_text(const char *coordinator, const char *gid, int step, StepOp op,
				  const char *sql, bool has_expect_rows, int64 expect_rows,
				  int timeout_ms)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "SELECT pg_catalog.set_config('statement_timeout', '%d', true), "
					 "pg_catalog.set_config('saga.gid', %s, true), "
					 "pg_catalog.set_config('saga.step', '%d', true); ",
					 timeout_ms, quote_literal_cstr(gid), step);
	appendStringInfo(&buf,
					 "SELECT saga_participant.run(%s, %s, %d, '%s', %s, ",
					 quote_literal_cstr(coordinator), quote_literal_cstr(gid), step,
					 step_op_name(op), quote_literal_cstr(sql));
	if (has_expect_rows)
		appendStringInfo(&buf, INT64_FORMAT "::bigint)", expect_rows);
	else
		appendStringInfoString(&buf, "NULL::bigint)");
	return buf.data;
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
