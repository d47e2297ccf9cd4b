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
 * There is one remote layer all the same.  A connection is made with the
 * options target_conninfo() gives and started by remote_connect_start(),
 * as the worker's are; only its other half differs: the worker's event
 * loop finishes the worker's, and this file waits for its own
 * (backend_connect_finish), the blocking wrapper over the same start.  An
 * error the target reports is raised again by remote_error_raise(), with
 * its SQLSTATE, detail, hint and context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "remote.h"
#include "remote_backend.h"
#include "settings.h"
#include "target.h"

/* Waits until pg's socket is ready for events, the deadline, or a latch. */
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

/*
 * The other half of remote_connect_start() for a user backend: polls the
 * connection to the end, waiting on its socket within
 * saga.connect_timeout, then checks the password rule.
 */
static void
backend_connect_finish(PGconn *pg, const char *target, bool need_password)
{
	TimestampTz deadline = GetCurrentTimestamp() + (int64) saga_connect_timeout_ms * 1000;
	PostgresPollingStatusType poll = PGRES_POLLING_WRITING;

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
	if (remote_connect_skipped_password(pg, need_password))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superusers must connect to targets with password authentication, and target \"%s\" did not ask for a password.", target),
				 errhint("Set a password in the user mapping and require password authentication on the target.")));
}

/*
 * Runs sql on the open connection within saga.step_timeout and reads every
 * result; the first error the target reports is raised again once the
 * connection is idle, with all its parts (remote_error_raise).
 */
static void
backend_exec(PGconn *pg, const char *target, const char *sql)
{
	TimestampTz deadline = GetCurrentTimestamp() + (int64) saga_step_timeout_ms * 1000;
	PGresult   *res;
	RemoteError error;
	bool		failed = false;

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
		/* copied out, so that the result is freed before anything is raised */
		if (PQresultStatus(res) == PGRES_FATAL_ERROR && !failed)
		{
			remote_error_from_result(&error, res, CurrentMemoryContext);
			failed = true;
		}
		PQclear(res);
	}
	if (failed)
		remote_error_raise(ERROR, &error, target);
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
	bool		no_descriptor;
	char	   *error;
	int			sqlstate;
	PGconn	   *volatile pg = NULL;

	if (!target_conninfo(target, owner, &keywords, &values, &need_password, &error, &sqlstate))
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("%s", error)));
	pg = remote_connect_start(keywords, values, &no_descriptor);
	if (pg == NULL && no_descriptor)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to target \"%s\"", target),
				 errdetail("There are too many open files on the local server."),
				 errhint("Raise the server's max_files_per_process and/or \"ulimit -n\" limits.")));
	if (pg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PG_TRY();
	{
		backend_connect_finish(pg, target, need_password);
		backend_exec(pg, target, sql);
	}
	PG_FINALLY();
	{
		remote_connect_close(pg);
	}
	PG_END_TRY();
}
