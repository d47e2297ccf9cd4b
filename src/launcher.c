/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		The launcher: keeps one worker running in every database that has
 *		the extension.
 *
 * A database does not say from outside whether it has pg_saga, so the
 * launcher starts a worker in every database that accepts connections; a
 * worker that finds no extension marks its slot and leaves, and the
 * launcher does not try that database again until CREATE EXTENSION asks
 * (saga._start_worker) or the launcher itself restarts.  A worker that
 * stops for any other reason (a crash, pg_terminate_backend) is started
 * again after a short pause.  The launcher starts only once recovery has
 * finished, so nothing runs on a standby, and starts on promotion.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "settings.h"
#include "shmem.h"
#include "worker.h"

/* How often the launcher looks for new databases, and restart pauses. */
#define LAUNCHER_RESCAN_MS		10000
#define WORKER_RESTART_DELAY_MS	1000

/* What the launcher knows of one database. */
typedef struct DatabaseEntry
{
	Oid			dboid;			/* hash key */
	bool		no_extension;	/* probed: no pg_saga there */
	bool		requested;		/* CREATE EXTENSION asked for a worker */
	bool		wanted;			/* still exists and accepts connections */
	int			slot;			/* worker slot, or -1 */
	BackgroundWorkerHandle *handle;
	TimestampTz not_before;		/* restart pause after a stop */
} DatabaseEntry;

static HTAB *databases = NULL;

void
saga_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_saga");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "saga_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_saga launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_saga launcher");
	RegisterBackgroundWorker(&worker);
}

/* Marks every connectable database as wanted, adding new ones. */
static void
scan_databases(void)
{
	HASH_SEQ_STATUS seq;
	DatabaseEntry *entry;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	hash_seq_init(&seq, databases);
	while ((entry = hash_seq_search(&seq)) != NULL)
		entry->wanted = false;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		bool		found;

		if (!db->datallowconn || db->datistemplate ||
			db->datconnlimit == DATCONNLIMIT_INVALID_DB)
			continue;
		entry = hash_search(databases, &db->oid, HASH_ENTER, &found);
		if (!found)
		{
			entry->no_extension = false;
			entry->requested = false;
			entry->slot = -1;
			entry->handle = NULL;
			entry->not_before = 0;
		}
		entry->wanted = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* Turns CREATE EXTENSION's requests into fresh probes. */
static void
take_start_requests(void)
{
	Oid			requests[SAGA_MAX_START_REQUESTS];
	int			n,
				i;

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	n = saga_shared->nrequests;
	memcpy(requests, saga_shared->requests, n * sizeof(Oid));
	saga_shared->nrequests = 0;
	LWLockRelease(saga_shared->lock);

	for (i = 0; i < n; i++)
	{
		bool		found;
		DatabaseEntry *entry = hash_search(databases, &requests[i], HASH_ENTER, &found);

		if (!found)
		{
			entry->slot = -1;
			entry->handle = NULL;
		}
		entry->wanted = true;
		entry->no_extension = false;
		entry->requested = true;
		entry->not_before = 0;
	}
}

/* Is slot i held by a worker this launcher did not start? */
static bool
slot_is_foreign(int i)
{
	HASH_SEQ_STATUS seq;
	DatabaseEntry *entry;
	bool		mine = false;

	hash_seq_init(&seq, databases);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (entry->slot == i)
			mine = true;
	return !mine;
}

/*
 * Takes a free slot for dboid, or returns -1 when none is free or dboid is
 * already served by a worker that a previous launcher started.
 */
static int
claim_free_slot(Oid dboid)
{
	int			i;
	int			result = -1;

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < saga_shared->nslots; i++)
	{
		SagaWorkerSlot *slot = &saga_shared->slots[i];

		if (slot->dboid == InvalidOid || !slot_is_foreign(i))
			continue;
		if (slot->exited)
			slot->dboid = InvalidOid;	/* left behind: reusable */
		else if (slot->dboid == dboid)
		{
			LWLockRelease(saga_shared->lock);
			return -1;			/* served already */
		}
	}
	for (i = 0; i < saga_shared->nslots && result < 0; i++)
	{
		SagaWorkerSlot *slot = &saga_shared->slots[i];

		if (slot->dboid == InvalidOid)
		{
			slot->dboid = dboid;
			slot->pid = 0;
			slot->latch = NULL;
			slot->no_extension = false;
			slot->exited = false;
			result = i;
		}
	}
	LWLockRelease(saga_shared->lock);
	return result;
}

static void
release_slot(int i, bool *no_extension)
{
	SagaWorkerSlot *slot = &saga_shared->slots[i];

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	*no_extension = slot->no_extension;
	slot->dboid = InvalidOid;
	slot->pid = 0;
	slot->latch = NULL;
	slot->no_extension = false;
	LWLockRelease(saga_shared->lock);
}

static void
start_worker(DatabaseEntry *entry)
{
	BackgroundWorker worker;
	int			slot = claim_free_slot(entry->dboid);

	if (slot < 0)
		return;					/* saga.max_workers reached; try later */

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_saga");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "saga_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_saga worker for database %u", entry->dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_saga worker");
	worker.bgw_main_arg = Int32GetDatum(slot);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &entry->handle))
	{
		bool		ignored;

		release_slot(slot, &ignored);
		ereport(WARNING,
				(errmsg("pg_saga launcher could not start a worker for database %u", entry->dboid),
				 errhint("Raise max_worker_processes.")));
		entry->not_before = GetCurrentTimestamp() +
			WORKER_RESTART_DELAY_MS * INT64CONST(1000) * 10;
		return;
	}
	entry->slot = slot;
	entry->requested = false;
}

/* Notices workers that stopped, and starts the ones that should run. */
static void
supervise_workers(void)
{
	HASH_SEQ_STATUS seq;
	DatabaseEntry *entry;
	TimestampTz now = GetCurrentTimestamp();

	hash_seq_init(&seq, databases);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (entry->slot >= 0)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(entry->handle, &pid) != BGWH_STOPPED)
				continue;
			release_slot(entry->slot, &entry->no_extension);
			pfree(entry->handle);
			entry->handle = NULL;
			entry->slot = -1;
			if (entry->requested)
			{
				/* that worker may have looked before the extension existed */
				entry->no_extension = false;
				entry->not_before = 0;
			}
			else if (!entry->no_extension)
				entry->not_before = now + WORKER_RESTART_DELAY_MS * INT64CONST(1000);
		}
		if (entry->wanted && !entry->no_extension && now >= entry->not_before &&
			!saga_database_held(entry->dboid, now))
			start_worker(entry);
	}
}

void
saga_launcher_main(Datum arg)
{
	HASHCTL		ctl;
	TimestampTz next_scan = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* No database: the launcher reads only the shared catalog pg_database. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	saga_shared->launcher_pid = MyProcPid;
	saga_shared->launcher_latch = MyLatch;
	LWLockRelease(saga_shared->lock);

	/*
	 * Slots of workers started by a previous launcher are still in use if
	 * those workers run: leave them alone, and serve the rest.
	 */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(DatabaseEntry);
	databases = hash_create("pg_saga databases", 64, &ctl, HASH_ELEM | HASH_BLOBS);

	ereport(LOG, (errmsg("pg_saga launcher started")));

	for (;;)
	{
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		if (now >= next_scan)
		{
			scan_databases();
			next_scan = now + LAUNCHER_RESCAN_MS * INT64CONST(1000);
		}
		take_start_requests();
		supervise_workers();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 WORKER_RESTART_DELAY_MS, saga_wait_event(SAGA_WAIT_LAUNCHER_MAIN));
		ResetLatch(MyLatch);
	}
}
