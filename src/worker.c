/*-------------------------------------------------------------------------
 *
 * worker.c
 *		A database's worker: one event loop driving every live saga.
 *
 * Each turn of the loop:
 *	1. waits on its latch (set by a committing submit, abort or retry), the
 *	   sockets of its connections and the next timer, never longer than a
 *	   few seconds;
 *	2. reads what came back from the participants and hands each outcome
 *	   to the engine (in memory only);
 *	3. in one local transaction: picks up new sagas and abort requests,
 *	   lets the engine advance every saga, and writes every change;
 *	4. after that commit, sends the calls the engine planned.
 * Step 4 after step 3 is what makes the worker safe to kill at any moment:
 * every call it sends is recorded first, and the barrier turns the repeat
 * of a call it sent but did not hear back from into a no-op.
 *
 * The worker serves one database.  It exits with status 1 on any error,
 * so the launcher starts it again and it reloads its sagas from the tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/syncrep.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "pg_saga.h"

/* Live sagas are re-read at least this often, whatever wakes the worker. */
#define RELOAD_INTERVAL_MS		5000
/* Longest wait of one turn. */
#define MAX_WAIT_MS				5000
/* A call's local deadline: the remote statement_timeout fires first. */
#define CALL_GRACE_MS			2000

typedef struct SagaEntry
{
	int64		id;				/* hash key */
	Saga	   *saga;
} SagaEntry;

static int	my_slot = -1;
static MemoryContext worker_cxt = NULL;
static MemoryContext turn_cxt = NULL;
static char *coordinator_id = NULL;
static dlist_head live_sagas = DLIST_STATIC_INIT(live_sagas);
static HTAB *saga_index = NULL;
static int	nlive = 0;			/* sagas in live_sagas */
static bool sagas_waiting = false;	/* live sagas left out for lack of room */
static bool work_pending = true;

/* Saga ids from the wake-up queue, to take up at the next turn. */
static int64 queued[SAGA_QUEUE_SIZE];
static int	nqueued = 0;

/*
 * Where the WAL must be flushed before the worker calls the steps of a saga
 * it starts: past the commits that submitted the sagas it has read.  The
 * worker's own record of the start is not flushed (see write_changes), but
 * the submission must be durable before any step runs, even when its
 * transaction committed with synchronous_commit off; for sagas named in
 * the wake-up queue the committing backends say where their commits end,
 * for the others the WAL written when they were read is a bound.  Usually
 * the clients flushed already and this costs nothing.
 */
static XLogRecPtr submits_end = InvalidXLogRecPtr;
static bool started_any = false;

static bool
sync_standby_configured(void)
{
	return SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0';
}

/* ---- the slot in shared memory ---- */

static void
release_my_slot(int code, Datum arg)
{
	SagaWorkerSlot *slot = &saga_shared->slots[my_slot];

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	slot->pid = 0;
	slot->latch = NULL;
	slot->exited = true;
	LWLockRelease(saga_shared->lock);
}

static void
take_my_slot(void)
{
	SagaWorkerSlot *slot = &saga_shared->slots[my_slot];

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	slot->exited = false;
	LWLockRelease(saga_shared->lock);
	on_shmem_exit(release_my_slot, (Datum) 0);
}

/* No pg_saga here (any more): tell the launcher and leave for good. */
static void
leave_no_extension(void)
{
	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	saga_shared->slots[my_slot].no_extension = true;
	LWLockRelease(saga_shared->lock);
	if (IsTransactionState())
	{
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	proc_exit(0);
}

static void
begin_turn_transaction(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_saga: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
end_turn_transaction(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(turn_cxt);
	pgstat_report_stat(false);
}

static void
invalidate_targets(Datum arg, int cacheid, uint32 hashvalue)
{
	remote_invalidate_all();
}

/* ---- the sagas in memory ---- */

static void
forget_saga(Saga *saga)
{
	hash_search(saga_index, &saga->id, HASH_REMOVE, NULL);
	dlist_delete(&saga->node);
	MemoryContextDelete(saga->cxt);
	nlive--;
}

/*
 * Takes up live sagas: new ones are loaded, oldest first, up to
 * saga.max_active_sagas in memory; abort requests are noted.  live lists
 * every live saga (a full reload) or just those named in the wake-up queue.
 */
static void
take_up_sagas(List *live, bool full)
{
	ListCell   *lc;

	if (full)
		sagas_waiting = false;
	foreach(lc, live)
	{
		LiveSagaRef *ref = lfirst(lc);
		bool		found;
		SagaEntry  *entry = hash_search(saga_index, &ref->id,
										nlive < saga_max_active_sagas ? HASH_ENTER : HASH_FIND,
										&found);

		if (entry == NULL)
		{
			sagas_waiting = true;	/* taken up by a full reload later */
			continue;
		}
		if (!found)
		{
			Saga	   *saga = catalog_load_saga(ref->id, worker_cxt);

			if (saga == NULL)
			{
				hash_search(saga_index, &ref->id, HASH_REMOVE, NULL);
				continue;
			}
			entry->saga = saga;
			dlist_push_tail(&live_sagas, &saga->node);
			nlive++;
			work_pending = true;
		}
		else if (ref->abort_requested && !entry->saga->abort_requested)
		{
			engine_request_abort(entry->saga, ref->abort_reason);
			work_pending = true;
		}
	}
}

/* Ids of the sagas that became final this turn, to wake their waiters. */
static int64 *finals = NULL;
static int	nfinals = 0;
static int	maxfinals = 0;

static void
note_final(Saga *saga)
{
	if (nfinals == maxfinals)
	{
		maxfinals = Max(64, maxfinals * 2);
		finals = finals ? repalloc(finals, maxfinals * sizeof(int64)) :
			MemoryContextAlloc(worker_cxt, maxfinals * sizeof(int64));
	}
	finals[nfinals++] = saga->id;
}

/*
 * Writes every change of every saga; true if one became final.
 *
 * Only decisions must reach the disk before the worker acts on them: to
 * roll back, to commit (tcc, xa), to stop as failed; and so must a saga's
 * final status (see saga_set_status).  Progress before (the saga started,
 * a step started or done) is written with synchronous_commit off: after a
 * crash that lost it, the worker calls those steps again and the barrier
 * answers that they are already done, or, if the saga is rolled back
 * instead, compensates them (a no-op where they never ran).  (Except in
 * mode xa: see below.)
 */
static bool
write_changes(void)
{
	dlist_iter	iter;
	bool		any_final = false;
	bool		durable = false;

	dlist_foreach(iter, &live_sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);
		ListCell   *lc;
		int			i;

		if (saga->dirty)
		{
			if (!catalog_write_saga(saga))
			{
				/* saga.abort() came first: it wins over the commit */
				engine_commit_lost_to_abort(saga);
				saga->decided_commit = false;
				(void) catalog_write_saga(saga);
			}
			saga->decided_commit = false;
		}
		for (i = 0; i < saga->nsteps; i++)
		{
			if (saga->steps[i].dirty)
			{
				catalog_write_step(&saga->steps[i]);
				saga->steps[i].dirty = false;
			}
		}
		foreach(lc, saga->events)
			catalog_write_event(saga, lfirst(lc));
		list_free(saga->events);
		saga->events = NIL;
		if (saga->alert)
		{
			Async_Notify("saga_alert", saga->gid);
			saga->alert = false;
		}
		saga->dirty = false;
		/*
		 * xa: a lost "started" would let a step that reached PREPARE look
		 * unsent after a crash; the call sent again would wait on the locks
		 * of its own prepared transaction.  xa progress is flushed.
		 */
		durable |= saga->durable || saga->mode == MODE_XA;
		saga->durable = false;
		if (saga->just_started)
		{
			/*
			 * With a synchronous standby, the submission must also be there
			 * before a step runs: flushing this turn waits for it.
			 */
			started_any = true;
			durable |= sync_standby_configured();
			saga->just_started = false;
		}
		if (saga_is_final(saga->status))
		{
			any_final = true;
			note_final(saga);
		}
	}
	if (!durable)
		(void) set_config_option("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	return any_final;
}

static void
call_done(void *arg, RemoteOutcome *outcome)
{
	SagaStep   *step = (SagaStep *) arg;

	step->starting = false;
	engine_finish_call(step, outcome, GetCurrentTimestamp());
	work_pending = true;
}

/* Sends the calls planned this turn, now that they are recorded. */
static void
send_calls(List *starts)
{
	ListCell   *lc;

	foreach(lc, starts)
	{
		SagaStart  *start = lfirst(lc);
		SagaStep   *step = start->step;
		Saga	   *saga = step->saga;
		int			timeout = step_timeout_ms(step);
		TimestampTz now = GetCurrentTimestamp();
		char	   *query;
		RemoteConn *conn;

		query = barrier_step_call(coordinator_id, saga, step, start->op, timeout);
		conn = remote_call(start->pool, query,
						   barrier_step_params(coordinator_id, saga, step, start->op, timeout),
						   now + ((int64) timeout + CALL_GRACE_MS) * 1000,
						   call_done, step);
		if (conn == NULL)
		{
			step->starting = false;
			engine_call_failed_to_start(step, "no file descriptor free for a new connection",
										"53000", now);
			work_pending = true;
		}
		else if (step->starting)
		{
			/* not finished already, as a call that cannot be sent is */
			step->starting = false;
			step->conn = conn;
		}
	}
}

static bool forgot_any = false;

static void
forget_final_sagas(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &live_sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);
		int			i;
		bool		in_flight = false;

		if (!saga_is_final(saga->status) || saga->dirty)
			continue;
		for (i = 0; i < saga->nsteps; i++)
			in_flight |= saga->steps[i].conn != NULL || saga->steps[i].starting;
		if (!in_flight)
		{
			forget_saga(saga);
			forgot_any = true;
		}
	}
}

/*
 * The coordinator's id keys its barrier records.  pg_restore loads the
 * original id after CREATE EXTENSION made a new one and started this
 * worker, so the id is read again every turn, before any call is planned.
 */
static void
refresh_coordinator_id(void)
{
	char	   *id = catalog_coordinator_id();

	if (coordinator_id == NULL || strcmp(id, coordinator_id) != 0)
	{
		if (coordinator_id)
			pfree(coordinator_id);
		coordinator_id = MemoryContextStrdup(worker_cxt, id);
		recovery_set_coordinator(coordinator_id);
	}
}

/* One turn: read, advance, write, then send. */
static void
run_turn(bool reload)
{
	List	   *starts = NIL;
	dlist_iter	iter;
	TimestampTz now;
	bool		any_final;

	begin_turn_transaction();
	if (reload)
	{
		if (!OidIsValid(get_extension_oid(SAGA_EXTENSION_NAME, true)))
			leave_no_extension();
		submits_end = Max(submits_end, GetXLogInsertRecPtr());
		take_up_sagas(catalog_live_sagas(), true);
	}
	else if (nqueued > 0)
		take_up_sagas(catalog_some_live_sagas(queued, nqueued), false);
	nqueued = 0;
	refresh_coordinator_id();

	/*
	 * SPI leaves its procedure context current, which SPI_finish frees: what
	 * must outlive the transaction (the calls to send) goes in turn_cxt.
	 */
	MemoryContextSwitchTo(turn_cxt);
	now = GetCurrentTimestamp();
	/* sagas holding locks or past their decision first, then in order */
	dlist_foreach(iter, &live_sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);

		if (engine_goes_first(saga))
			engine_advance(saga, now, &starts);
	}
	dlist_foreach(iter, &live_sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);

		if (!engine_goes_first(saga))
			engine_advance(saga, now, &starts);
	}
	any_final = write_changes();
	recovery_turn(&live_sagas, now);
	end_turn_transaction();

	if (any_final)
		saga_wake_waiters(finals, nfinals);
	nfinals = 0;
	if (started_any && !XLogRecPtrIsInvalid(submits_end))
		XLogFlush(submits_end);
	started_any = false;
	send_calls(starts);
	forget_final_sagas();
}

static TimestampTz
next_timer(TimestampTz next_reload)
{
	TimestampTz next = Min(next_reload, remote_next_deadline());
	dlist_iter	iter;

	dlist_foreach(iter, &live_sagas)
	{
		TimestampTz t = engine_next_wakeup(dlist_container(Saga, node, iter.cur));

		if (t < next)
			next = t;
	}
	return next;
}

/*
 * The wait set lives across turns (creating one costs system calls) and is
 * rebuilt only when a connection opened, closed or needs other events.
 */
static WaitEventSet *wait_set = NULL;
static int	wait_set_size = 0;

static void
rebuild_wait_set(void)
{
	if (wait_set)
		FreeWaitEventSet(wait_set);
	wait_set_size = 2 + remote_count_sockets();
	wait_set = saga_create_wait_event_set(worker_cxt, wait_set_size);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	remote_add_wait_events(wait_set);
}

/* Waits for the latch, a socket or the next timer; true if the latch was set. */
static bool
wait_for_work(TimestampTz next)
{
	WaitEvent  *events;
	int			nevents;
	int			i;
	bool		latch_set = false;
	long		timeout;

	timeout = work_pending ? 0 :
		Min(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next), MAX_WAIT_MS);
	if (wait_set == NULL || remote_wait_events_changed())
		rebuild_wait_set();
	events = palloc(sizeof(WaitEvent) * wait_set_size);
	nevents = WaitEventSetWait(wait_set, timeout, events, wait_set_size,
							   saga_wait_event(SAGA_WAIT_WORKER_MAIN));
	for (i = 0; i < nevents; i++)
	{
		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_set = true;
		}
		else if (events[i].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			/* handling a socket can close only its own connection */
			remote_handle_socket(events[i].user_data);
		}
	}
	return latch_set;
}

void
saga_worker_main(Datum arg)
{
	HASHCTL		ctl;
	Oid			dboid;
	TimestampTz next_reload = 0;

	my_slot = DatumGetInt32(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	dboid = saga_shared->slots[my_slot].dboid;
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	take_my_slot();
	pgstat_report_appname("pg_saga worker");

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "pg_saga worker", ALLOCSET_DEFAULT_SIZES);
	turn_cxt = AllocSetContextCreate(worker_cxt, "pg_saga turn", ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(SagaEntry);
	ctl.hcxt = worker_cxt;
	saga_index = hash_create("pg_saga sagas", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	begin_turn_transaction();
	if (!OidIsValid(get_extension_oid(SAGA_EXTENSION_NAME, true)))
		leave_no_extension();
	catalog_prepare();
	ereport(LOG, (errmsg("pg_saga worker started for database \"%s\"",
						 get_database_name(MyDatabaseId))));
	end_turn_transaction();

	remote_init(worker_cxt);
	recovery_init(worker_cxt);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, invalidate_targets, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, invalidate_targets, (Datum) 0);

	for (;;)
	{
		TimestampTz now;
		bool		reload;

		MemoryContextReset(turn_cxt);
		MemoryContextSwitchTo(turn_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		remote_check_deadlines(now);
		remote_close_idle(now);
		/* room freed while sagas wait to be taken up */
		if (forgot_any && sagas_waiting && nlive < saga_max_active_sagas)
			reload = true;
		else
			reload = now >= next_reload;
		forgot_any = false;
		if (reload || work_pending || next_timer(next_reload) <= now)
		{
			work_pending = false;
			pgstat_report_activity(STATE_RUNNING, NULL);
			run_turn(reload);
			pgstat_report_activity(STATE_IDLE, NULL);
			if (reload)
				next_reload = now + RELOAD_INTERVAL_MS * INT64CONST(1000);
		}
		if (wait_for_work(next_timer(next_reload)))
		{
			/* woken: someone submitted, aborted or retried these sagas */
			bool		overflow;
			XLogRecPtr	submit_lsn;

			if (nqueued > 0)
				next_reload = 0;	/* not taken up yet: reread everything */
			nqueued = saga_take_queue(my_slot, queued, &overflow, &submit_lsn);
			submits_end = Max(submits_end, submit_lsn);
			if (overflow)
				next_reload = 0;
			else if (nqueued > 0)
				work_pending = true;
		}
	}
}
