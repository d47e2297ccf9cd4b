/*-------------------------------------------------------------------------
 *
 * remote_backend.c
 *		A user backend's own connection to a target: one statement, waiting
 *		on the socket with the latch so that the backend stays cancellable.
 *
 * saga.setup_participant() runs here, in the caller's backend and under
 * its rights.  The worker never does: a blocking call would stop its
 * event loop, so it talks to targets through remote.c only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "remote_backend.h"
#include "settings.h"
#include "target.h"

/* Notices of the target (a NOTICE from CREATE ... IF NOT EXISTS) are not the user's. */
static void
ignore_notice(void *arg, const char *message)
{
}

static void
backend_wait_socket(PGconn *pg, int events, TimestampTz deadline)
{
	long		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
	int			rc;

	if (timeout <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("timeout expired while talking to the target")));
	rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
						   PQsocket(pg), timeout, saga_wait_event(SAGA_WAIT_TARGET));
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
backend_exec(PGconn *pg, const char *target, bool need_password, const char *sql)
{
	TimestampTz deadline = GetCurrentTimestamp() + (int64) saga_connect_timeout_ms * 1000;
	PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
	PGresult   *res;
	char	   *error = NULL;
	int			sqlstate = 0;

	while (poll != PGRES_POLLING_OK)
	{
		if (poll == PGRES_POLLING_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to target \"%s\"", target),
					 errdetail_internal("%s", pchomp(PQerrorMessage(pg)))));
		backend_wait_socket(pg, poll == PGRES_POLLING_READING ?
							WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE, deadline);
		poll = PQconnectPoll(pg);
	}
	if (need_password && !PQconnectionUsedPassword(pg))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superusers must connect to targets with password authentication, and target \"%s\" did not ask for a password.", target),
				 errhint("Set a password in the user mapping and require password authentication on the target.")));

	deadline = GetCurrentTimestamp() + (int64) saga_step_timeout_ms * 1000;
	if (!PQsendQuery(pg, sql))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not send a query to target \"%s\"", target),
				 errdetail_internal("%s", pchomp(PQerrorMessage(pg)))));
	for (;;)
	{
		while (PQisBusy(pg))
		{
			backend_wait_socket(pg, WL_SOCKET_READABLE, deadline);
			if (!PQconsumeInput(pg))
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("lost the connection to target \"%s\"", target),
						 errdetail_internal("%s", pchomp(PQerrorMessage(pg)))));
		}
		res = PQgetResult(pg);
		if (res == NULL)
			break;
		if (PQresultStatus(res) == PGRES_FATAL_ERROR && error == NULL)
		{
			const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			error = pstrdup(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
			sqlstate = code && strlen(code) == 5 ?
				MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]) : ERRCODE_INTERNAL_ERROR;
		}
		PQclear(res);
	}
	if (error)
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("target \"%s\" reported an error: %s", target, error)));
}

/*
 * Runs sql on target as owner's mapped user, waiting on the socket with the
 * latch so that the backend stays cancellable.  Raises the remote error.
 */
void
remote_exec_in_backend(const char *target, Oid owner, const char *sql)
{
	const char **keywords;
	const char **values;
	bool		need_password;
	char	   *error;
	int			sqlstate;
	PGconn	   *volatile pg = NULL;

	if (!target_conninfo(target, owner, &keywords, &values, &need_password, &error, &sqlstate))
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("%s", error)));
	if (!AcquireExternalFD())
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to target \"%s\"", target),
				 errdetail("There are too many open files on the local server."),
				 errhint("Raise the server's max_files_per_process and/or \"ulimit -n\" limits.")));
	pg = PQconnectStartParams(keywords, values, false);
	if (pg == NULL)
	{
		ReleaseExternalFD();
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	PQsetNoticeProcessor(pg, ignore_notice, NULL);
	PG_TRY();
	{
		backend_exec(pg, target, need_password, sql);
	}
	PG_FINALLY();
	{
		PQfinish(pg);
		ReleaseExternalFD();
	}
	PG_END_TRY();
}
