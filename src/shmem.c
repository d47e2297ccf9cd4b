/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared memory and the wake-up protocol, and the hooks that serve
 *		them (init.c installs them when the library loads).
 *
 * The launcher and the workers share a small array in shared memory
 * through which backends wake them.  A backend never wakes a worker before
 * its own transaction commits (the worker would find nothing new), so the
 * wake-ups are queued here and delivered from a transaction callback.
 *
 * A submission in a transaction that is prepared (PREPARE TRANSACTION, the
 * application's own two-phase commit) becomes visible only at COMMIT
 * PREPARED, maybe in another session, which cannot know the ids of the
 * sagas it commits: the preparing session drops its queued ids, and COMMIT
 * PREPARED (seen by the ProcessUtility hook) wakes the database's worker to
 * scan its live sagas again from the first, so that a saga older than the
 * ones it already took up is found as promptly as a queued one.
 *
 * A wake-up says whether its saga was submitted or changed (SagaWake): the
 * worker reads a submitted saga once, when its scan takes it up, and
 * rereads a changed one.  The backends in saga.wait() are woken the other
 * way, by the worker once it committed their sagas' final statuses, which
 * it hands them: a wait reads the saga's row once, unless a saga finished
 * while it registered.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "pg_saga.h"
#include "model.h"
#include "progress.h"
#include "settings.h"
#include "shmem.h"

SagaShared *saga_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* Wake-ups queued by this backend until its transaction commits. */
static bool wake_worker_at_commit = false;
static List *ids_at_commit = NIL;	/* of SagaWake, in TopMemoryContext */
static bool start_worker_at_commit = false;
static bool xact_callback_registered = false;

static Size
saga_slots_size(void)
{
	return add_size(offsetof(SagaShared, slots),
					mul_size(sizeof(SagaWorkerSlot), saga_max_workers));
}

static Size
saga_shmem_size(void)
{
	return add_size(MAXALIGN(saga_slots_size()), mul_size(sizeof(SagaWaiter), MaxBackends));
}

static void
saga_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(saga_shmem_size());
	RequestNamedLWLockTranche("pg_saga", 1);
	RequestAddinShmemSpace(progress_shmem_size());
	progress_shmem_request();
}

static void
saga_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	saga_shared = ShmemInitStruct("pg_saga", saga_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(saga_shared, 0, saga_shmem_size());
		saga_shared->lock = &(GetNamedLWLockTranche("pg_saga"))->lock;
		saga_shared->nslots = saga_max_workers;
		saga_shared->waiters = (SagaWaiter *) ((char *) saga_shared + MAXALIGN(saga_slots_size()));
		for (i = 0; i < MaxBackends; i++)
		{
			SpinLockInit(&saga_shared->waiters[i].mutex);
			pg_atomic_init_u64(&saga_shared->waiters[i].saga_id, 0);
			saga_shared->waiters[i].waiting_for = 0;
			saga_shared->waiters[i].final_status = -1;
		}
		pg_atomic_init_u64(&saga_shared->finals_published, 0);
	}
	progress_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/* How long a database's worker stays stopped for a DROP DATABASE. */
#define DROP_HOLD_MS	15000

bool
saga_database_held(Oid dboid, TimestampTz now)
{
	int			i;
	bool		held = false;

	LWLockAcquire(saga_shared->lock, LW_SHARED);
	for (i = 0; i < SAGA_MAX_START_REQUESTS; i++)
		if (saga_shared->held[i] == dboid && saga_shared->held_until[i] > now)
			held = true;
	LWLockRelease(saga_shared->lock);
	return held;
}

/*
 * DROP DATABASE refuses while anyone is connected, the worker included:
 * stop the worker, keep the launcher from restarting it for a while, and
 * wait (briefly) until it has gone.
 */
static void
stop_worker_for_drop(Oid dboid)
{
	int			i;
	int			oldest = 0;
	pid_t		pid = 0;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < SAGA_MAX_START_REQUESTS; i++)
		if (saga_shared->held_until[i] < saga_shared->held_until[oldest])
			oldest = i;
	saga_shared->held[oldest] = dboid;
	saga_shared->held_until[oldest] = now + DROP_HOLD_MS * INT64CONST(1000);
	for (i = 0; i < saga_shared->nslots; i++)
		if (saga_shared->slots[i].dboid == dboid && saga_shared->slots[i].pid != 0)
			pid = saga_shared->slots[i].pid;
	LWLockRelease(saga_shared->lock);

	if (pid == 0)
		return;
	(void) kill(pid, SIGTERM);
	for (i = 0; i < 500; i++)
	{
		bool		gone = true;
		int			j;

		LWLockAcquire(saga_shared->lock, LW_SHARED);
		for (j = 0; j < saga_shared->nslots; j++)
			if (saga_shared->slots[j].pid == pid)
				gone = false;
		LWLockRelease(saga_shared->lock);
		if (gone)
			break;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

static void saga_wake_worker(Oid dboid, List *ids, bool rescan);

static void
saga_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					 ProcessUtilityContext context, ParamListInfo params,
					 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	bool		commit_prepared = IsA(pstmt->utilityStmt, TransactionStmt) &&
		((TransactionStmt *) pstmt->utilityStmt)->kind == TRANS_STMT_COMMIT_PREPARED;

	if (IsA(pstmt->utilityStmt, DropdbStmt))
	{
		DropdbStmt *stmt = (DropdbStmt *) pstmt->utilityStmt;
		Oid			dboid = get_database_oid(stmt->dbname, true);

		if (OidIsValid(dboid))
			stop_worker_for_drop(dboid);
	}
	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
								  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	/*
	 * The prepared transaction is committed and visible now (COMMIT PREPARED
	 * runs outside a transaction block, in this database only).  Whether it
	 * submitted sagas is not known here: the worker of this database, if
	 * there is one, looks again.  One scan per turn however many commits.
	 */
	if (commit_prepared)
		saga_wake_worker(MyDatabaseId, NIL, true);
}

/*
 * Installs the hooks of this file: the shared memory request and start-up,
 * and ProcessUtility (COMMIT PREPARED wakes a worker, DROP DATABASE stops
 * one).  Called once, by _PG_init.
 */
void
saga_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = saga_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = saga_shmem_startup;

	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = saga_process_utility;
}

/* ---- waking workers ---- */

/*
 * Hands the ids of sagas just committed to the worker serving dboid, if one
 * runs, and sets its latch.  The ids let it load just those sagas instead
 * of rereading every live one; if the queue is full it rereads them all.
 * rescan: sagas whose ids are not known became visible; the worker scans
 * its live sagas again from the first.
 */
static void
saga_wake_worker(Oid dboid, List *ids, bool rescan)
{
	int			i;

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < saga_shared->nslots; i++)
	{
		SagaWorkerSlot *slot = &saga_shared->slots[i];
		ListCell   *lc;

		if (slot->dboid != dboid || slot->latch == NULL)
			continue;
		/* the worker makes these commits durable before it acts on them */
		if (XactLastCommitEnd > slot->submit_lsn)
			slot->submit_lsn = XactLastCommitEnd;
		foreach(lc, ids)
		{
			if (slot->nqueued < SAGA_QUEUE_SIZE)
				slot->queue[slot->nqueued++] = *(SagaWake *) lfirst(lc);
			else
				slot->overflow = true;
		}
		if (rescan)
			slot->rescan = true;
		SetLatch(slot->latch);
	}
	LWLockRelease(saga_shared->lock);
}

/* The worker in slot takes the queued ids; returns how many. */
int
saga_take_queue(int slot_index, SagaWake *wakes, bool *overflow, bool *rescan,
				XLogRecPtr *submit_lsn)
{
	SagaWorkerSlot *slot = &saga_shared->slots[slot_index];
	int			n;

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	n = (int) slot->nqueued;
	memcpy(wakes, slot->queue, n * sizeof(SagaWake));
	*overflow = slot->overflow;
	*rescan = slot->rescan;
	*submit_lsn = slot->submit_lsn;
	slot->nqueued = 0;
	slot->overflow = false;
	slot->rescan = false;
	LWLockRelease(saga_shared->lock);
	return n;
}

/* Asks the launcher to start (or restart) the worker of dboid. */
void
saga_request_worker(Oid dboid)
{
	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	if (saga_shared->nrequests < SAGA_MAX_START_REQUESTS)
		saga_shared->requests[saga_shared->nrequests++] = dboid;
	if (saga_shared->launcher_latch)
		SetLatch(saga_shared->launcher_latch);
	LWLockRelease(saga_shared->lock);
}

/*
 * saga.wait() registers the saga it waits for, and the worker wakes the
 * waiters of the sagas it finished once it committed them, handing each
 * the final status: a waiter either has seen that status in the saga's row
 * or is woken with it.  Only the waiters of those sagas wake, however many
 * backends wait.
 *
 * A waiter that read the saga's row before registering knows whether the
 * worker finished any saga since (saga_finals_published() again): if not,
 * what it read still holds, as a finish published after its registration
 * finds it.  The waiter writes saga_id, then reads the count after a full
 * barrier (the one in saga_finals_published(), which this depends on: a
 * spinlock's release is not one); the worker adds to the count (a full
 * barrier) before it reads saga_id: each sees the other's write.
 */
uint64
saga_finals_published(void)
{
	pg_memory_barrier();
	return pg_atomic_read_u64(&saga_shared->finals_published);
}

void
saga_wait_register(int64 saga_id)
{
	SagaWaiter *w = &saga_shared->waiters[saga_my_proc_index()];

	SpinLockAcquire(&w->mutex);
	w->dboid = MyDatabaseId;
	w->latch = MyLatch;
	w->final_status = -1;
	w->waiting_for = saga_id;
	SpinLockRelease(&w->mutex);
	pg_atomic_write_u64(&w->saga_id, (uint64) saga_id);
}

/* The final status the worker handed this backend's wait, or -1. */
int
saga_wait_final_status(void)
{
	SagaWaiter *w = &saga_shared->waiters[saga_my_proc_index()];
	int			status;

	SpinLockAcquire(&w->mutex);
	status = w->final_status;
	SpinLockRelease(&w->mutex);
	return status;
}

void
saga_wait_unregister(void)
{
	SagaWaiter *w;

	if (!saga_have_proc_index())
		return;
	w = &saga_shared->waiters[saga_my_proc_index()];
	pg_atomic_write_u64(&w->saga_id, 0);
	SpinLockAcquire(&w->mutex);
	w->waiting_for = 0;
	SpinLockRelease(&w->mutex);
}

/* Called by the worker once the final statuses of saga_ids are committed. */
void
saga_wake_waiters(const int64 *saga_ids, const int *statuses, int n)
{
	int			i,
				j;

	if (n == 0)
		return;
	(void) pg_atomic_fetch_add_u64(&saga_shared->finals_published, 1);
	for (i = 0; i < MaxBackends; i++)
	{
		SagaWaiter *w = &saga_shared->waiters[i];
		uint64		id = pg_atomic_read_u64(&w->saga_id);

		if (id == 0)
			continue;
		for (j = 0; j < n; j++)
			if ((uint64) saga_ids[j] == id)
			{
				Latch	   *latch = NULL;

				SpinLockAcquire(&w->mutex);
				if (w->waiting_for == saga_ids[j] && w->dboid == MyDatabaseId)
				{
					w->final_status = statuses[j];
					latch = w->latch;
				}
				SpinLockRelease(&w->mutex);
				if (latch != NULL)
					SetLatch(latch);
				break;
			}
	}
}

static void
saga_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (start_worker_at_commit)
				saga_request_worker(MyDatabaseId);
			if (wake_worker_at_commit)
				saga_wake_worker(MyDatabaseId, ids_at_commit, false);
			start_worker_at_commit = wake_worker_at_commit = false;
			list_free_deep(ids_at_commit);
			ids_at_commit = NIL;
			break;
		case XACT_EVENT_PREPARE:
			/*
			 * Nothing is visible until COMMIT PREPARED, which wakes the
			 * worker itself (saga_process_utility); the ids must not wait
			 * for this session's next commit, which has nothing to do with
			 * them.
			 */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			start_worker_at_commit = wake_worker_at_commit = false;
			list_free_deep(ids_at_commit);
			ids_at_commit = NIL;
			break;
		default:
			break;
	}
}

static void
ensure_xact_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(saga_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/*
 * The worker of this database should look at saga saga_id after commit:
 * submitted by this transaction, or changed by it (see SagaWake).
 */
void
saga_wake_worker_at_commit(int64 saga_id, bool submitted)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	SagaWake   *wake = palloc(sizeof(SagaWake));

	wake->id = saga_id;
	wake->submitted = submitted;
	ids_at_commit = lappend(ids_at_commit, wake);
	MemoryContextSwitchTo(old);
	ensure_xact_callback();
	wake_worker_at_commit = true;
}

PG_FUNCTION_INFO_V1(saga_start_worker);

/* Called by CREATE EXTENSION: this database needs a worker once committed. */
Datum
saga_start_worker(PG_FUNCTION_ARGS)
{
	ensure_xact_callback();
	start_worker_at_commit = true;
	PG_RETURN_VOID();
}
