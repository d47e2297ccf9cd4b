/*-------------------------------------------------------------------------
 *
 * compat.h
 *		What differs between the PostgreSQL versions pg_saga builds on.
 *
 * pg_saga builds from one tree on PostgreSQL 15 and 17 (16 too).  Every
 * difference between them is behind PG_VERSION_NUM in this file, so the
 * rest of the code is written once:
 *
 * - the backend's own slot number: PostgreSQL 17 replaced backend ids
 *   (MyBackendId, 1-based, storage/backendid.h) by proc numbers
 *   (MyProcNumber, 0-based, storage/procnumber.h);
 * - privilege checks on a foreign server: object_aclcheck() replaced
 *   pg_foreign_server_aclcheck() in PostgreSQL 16;
 * - wait sets: PostgreSQL 17 ties a WaitEventSet to a resource owner, not a
 *   memory context (NULL: the session's, freed with FreeWaitEventSet);
 * - wait events: PostgreSQL 17 lets an extension name its own
 *   (WaitEventExtensionNew), as postgres_fdw does, so pg_stat_activity
 *   says what a pg_saga process waits on (wait_event_type "Extension",
 *   wait_event "PgSagaWorkerMain", ...).  Before, every wait is "Extension".
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_COMPAT_H
#define PG_SAGA_COMPAT_H

#include "postgres.h"

#include "catalog/pg_foreign_server.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/wait_event.h"

#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#else
#include "storage/backendid.h"
#endif

/*
 * This backend's index in arrays of MaxBackends entries (0 .. MaxBackends
 * - 1), and whether it has one yet.
 */
#if PG_VERSION_NUM >= 170000
#define saga_my_proc_index()	((int) MyProcNumber)
#define saga_have_proc_index()	(MyProcNumber != INVALID_PROC_NUMBER)
#else
#define saga_my_proc_index()	((int) MyBackendId - 1)
#define saga_have_proc_index()	(MyBackendId != InvalidBackendId)
#endif

/* ACL_USAGE and the like on a foreign server: object_aclcheck since 16. */
#if PG_VERSION_NUM >= 160000
#define saga_foreign_server_aclcheck(srvid, roleid, mode) \
	object_aclcheck(ForeignServerRelationId, (srvid), (roleid), (mode))
#else
#define saga_foreign_server_aclcheck(srvid, roleid, mode) \
	pg_foreign_server_aclcheck((srvid), (roleid), (mode))
#endif

/* A wait set that lives until FreeWaitEventSet (or the process's end). */
#if PG_VERSION_NUM >= 170000
#define saga_create_wait_event_set(cxt, nevents) \
	((void) (cxt), CreateWaitEventSet(NULL, (nevents)))
#else
#define saga_create_wait_event_set(cxt, nevents) \
	CreateWaitEventSet((cxt), (nevents))
#endif

/* What a pg_saga process waits on; the names pg_stat_activity shows on 17. */
typedef enum SagaWaitEvent
{
	SAGA_WAIT_LAUNCHER_MAIN,	/* the launcher, between two looks */
	SAGA_WAIT_WORKER_MAIN,		/* a worker: latch, target sockets, timers */
	SAGA_WAIT_SAGA,				/* saga.wait() until the saga is final */
	SAGA_WAIT_TARGET,			/* a backend talking to a target */
	SAGA_WAIT_NEVENTS
} SagaWaitEvent;

#define SAGA_WAIT_EVENT_NAMES \
	{"PgSagaLauncherMain", "PgSagaWorkerMain", "PgSagaWait", "PgSagaTarget"}

/*
 * The wait_event_info to pass to WaitLatch and friends.  On 17 the id is
 * registered the first time a process uses it (shared memory is needed, so
 * not in _PG_init); the same name always gets the same id.
 */
static inline uint32
saga_wait_event(SagaWaitEvent event)
{
#if PG_VERSION_NUM >= 170000
	static const char *const names[SAGA_WAIT_NEVENTS] = SAGA_WAIT_EVENT_NAMES;
	static uint32 ids[SAGA_WAIT_NEVENTS];

	if (ids[event] == 0)
		ids[event] = WaitEventExtensionNew(names[event]);
	return ids[event];
#else
	(void) event;
	return PG_WAIT_EXTENSION;
#endif
}

#endif							/* PG_SAGA_COMPAT_H */
