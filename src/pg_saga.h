/*-------------------------------------------------------------------------
 *
 * pg_saga.h
 *		What every file of pg_saga shares: the extension's names and limits.
 *
 * Each file offers what its header of the same name declares:
 *		init.c		loading the library: settings, hooks, the launcher
 *		shmem.c		shared memory, the wake-up protocol (shmem.h)
 *		settings.c	the saga.* settings (GUCs)
 *		model.c		the saga in memory, and the names of its statuses (model.h)
 *		launcher.c	the launcher: one worker per database with the extension
 *		worker.c	a database's worker: the event loop (worker.h, both)
 *		progress.c	running sagas' progress in shared memory, for the views
 *		engine.c	the state machine of a saga: what runs next, what an
 *					outcome means; modes are plans for the same steps
 *		remote.c	the worker's non-blocking libpq connections, pooled per
 *					target and role
 *		remote_http.c	the worker's HTTP requests: libcurl's multi interface in
 *					its wait loop, a call of a pool like a libpq one
 *		http_request.c	the request of a step on an HTTP target: saga.http(),
 *					its checks, its data, its Idempotency-Key
 *		remote_backend.c	a user backend's blocking connection to a target
 *		barrier.c	the remote text of a step call and the participant set-up
 *		batch.c		which planned calls share a batch, and the batches a
 *					turn's calls form (the rounds that send one: remote.c)
 *		results.c	a step's results: the statement that answers them, what
 *					the steps after it read (saga.results)
 *		recovery.c	in-doubt prepared transactions of xa sagas
 *		forget.c	deleting the barrier records of purged sagas on the
 *					participants
 *		store.c		reading and writing the extension's tables with SPI
 *		target.c	the foreign-data wrapper, targets (databases, HTTP
 *					services) and user mappings
 *		functions.c	the SQL-callable functions (no header: SQL calls them)
 *		compat.h	what differs between PostgreSQL versions
 *
 * docs/architecture.md shows how a saga flows through them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_H
#define PG_SAGA_H

#include "postgres.h"

#include "compat.h"

#define SAGA_EXTENSION_NAME		"pg_saga"
#define SAGA_SCHEMA				"saga"
#define SAGA_MAX_GID_LEN		128

/*
 * SAGA_CHECK_STATE(cond, format, ...): a check that a lifecycle transition
 * (a step's call, a connection: docs/architecture.md) starts from a state
 * it may start from.  PostgreSQL's Assert is compiled out of the server
 * packages the tests run against, so the extension has its own: built with
 * SAGA_CHECKS defined (`make SAGA_CHECKS=1`, which scripts/test.sh does), a
 * failed check raises an ERROR saying which transition found which state
 * (in the worker, the worker exits and restarts, and the test suite fails
 * on the message in the log: see test/perl/SagaTest.pm).  Built without it
 * the check is compiled but never runs, and the transition goes on as it
 * always did: a production worker does not stop for a state it copes with.
 */
#ifdef SAGA_CHECKS
#define SAGA_CHECKS_ON true
#else
#define SAGA_CHECKS_ON false
#endif
/* compiled either way (its format checked, its names used), run with checks */
#define SAGA_CHECK_STATE(cond, ...) \
	do { \
		if (SAGA_CHECKS_ON && !(cond)) \
			elog(ERROR, "pg_saga state check failed: " __VA_ARGS__); \
	} while (0)

#endif							/* PG_SAGA_H */
