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
 *	   lets the engine advance every saga and acts on what it decided
 *	   (starts the calls it wants as far as the pools have room, abandons
 *	   the calls it gave up on), and writes every change;
 *	4. sends the calls the engine planned: after that commit when the turn
 *	   wrote a decision to roll back or commit (or in mode xa), otherwise
 *	   while the commit waits for its flush.
 * A decision is on disk before anything acts on it, which is what makes the
 * worker safe to kill at any moment; a call sent before its start was
 * recorded counts as maybe applied after a crash, and the barrier turns the
 * repeat of a call it sent but did not hear back from into a no-op.
 *
 * The worker serves one database.  It exits with status 1 on any error,
 * so the launcher starts it again and it reloads its sagas from the tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
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
#include "barrier.h"
#include "batch.h"
#include "engine.h"
#include "forget.h"
#include "http_request.h"
#include "progress.h"
#include "recovery.h"
#include "remote.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "worker.h"

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

/*
 * Everything the worker keeps from one turn to the next, in one place: who
 * it is, the sagas it holds, how far it has taken them up, what the turn
 * carries over, and its wait set.  There is one worker per process, so one
 * instance, worker; every function reaches it by name.  The worker has no
 * signal flags of its own: SIGHUP and SIGTERM use PostgreSQL's handlers
 * (ConfigReloadPending, die), whose flags are PostgreSQL's volatile
 * sig_atomic_t globals, as a handler needs; none of them belongs here.
 * The pools and connections are remote.c's, the settings settings.c's.
 */

/* The sagas in memory. */
typedef struct LiveSagas
{
	dlist_head	sagas;			/* Saga, in the order taken up */
	HTAB	   *index;			/* SagaEntry by id */
	int			count;			/* sagas in sagas */
} LiveSagas;

/*
 * Taking up sagas costs what is taken up, however many wait (see
 * take_up_sagas): every live saga up to taken_upto is in memory, finished,
 * or named by a wake-up still to come; more_to_take says live sagas after
 * it may wait to be taken up.
 */
typedef struct TakeUp
{
	int64		taken_upto;
	bool		more_to_take;
	int64		highest_loaded;	/* the highest id ever taken up */
	int			room_left;		/* while taking up: sagas that still fit */
	/* Sagas from the wake-up queue, to take up at the next turn. */
	SagaWake	queued[SAGA_QUEUE_SIZE];
	int			nqueued;
	int64		to_read[SAGA_QUEUE_SIZE];	/* those of them to read */
} TakeUp;

/* What a turn leaves for the next, or for the wait between them. */
typedef struct TurnState
{
	bool		work_pending;	/* an outcome or a wake-up: turn at once */

	/*
	 * Where the WAL must be flushed before the worker calls the steps of a
	 * saga it starts: past the commits that submitted the sagas it has read.
	 * The worker's own record of the start is not flushed (see
	 * write_changes), but the submission must be durable before any step
	 * runs, even when its transaction committed with synchronous_commit off;
	 * for sagas named in the wake-up queue the committing backends say where
	 * their commits end, for the others the WAL written when they were read
	 * is a bound.  Usually the clients flushed already and this costs
	 * nothing.
	 */
	XLogRecPtr	submits_end;
	bool		started_any;

	/* The sagas that became final this turn, to wake their waiters. */
	int64	   *finals;
	int		   *final_statuses;	/* finals[i]'s status */
	int			nfinals;
	int			maxfinals;

	TimestampTz sagas_wakeup;	/* see compute_sagas_wakeup */
	TimestampTz batch_hold_until;	/* see holds_for_batch; DT_NOEND: none */
	uint64		number;			/* turns run so far */
} TurnState;

/*
 * The wait set lives across turns (creating one costs system calls) and is
 * rebuilt only when a connection opened, closed or needs other events.
 */
typedef struct WaitState
{
	WaitEventSet *set;
	int			size;
} WaitState;

typedef struct WorkerState
{
	int			slot;			/* in saga_shared->slots */
	MemoryContext cxt;			/* lives as long as the worker */
	MemoryContext turn_cxt;		/* reset at every turn */
	char	   *coordinator_id; /* see refresh_coordinator_id */
	bool		restore_watch;	/* see restore_under_way */
	bool		restore_seen;
	LiveSagas	live;
	TakeUp		take_up;
	TurnState	turn;
	WaitState	wait;
} WorkerState;

static WorkerState worker = {
	.slot = -1,
	.restore_watch = true,
	.live.sagas = DLIST_STATIC_INIT(worker.live.sagas),
	.take_up.more_to_take = true,
	.turn.work_pending = true,
	.turn.submits_end = InvalidXLogRecPtr,
};

static void compute_sagas_wakeup(TimestampTz now);

static bool
sync_standby_configured(void)
{
	return SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0';
}

/* ---- the slot in shared memory ---- */

static void
release_my_slot(int code, Datum arg)
{
	SagaWorkerSlot *slot = &saga_shared->slots[worker.slot];

	LWLockAcquire(saga_shared->lock, LW_EXCLUSIVE);
	slot->pid = 0;
	slot->latch = NULL;
	slot->exited = true;
	LWLockRelease(saga_shared->lock);
}

static void
take_my_slot(void)
{
	SagaWorkerSlot *slot = &saga_shared->slots[worker.slot];

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
	saga_shared->slots[worker.slot].no_extension = true;
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
	MemoryContextSwitchTo(worker.turn_cxt);
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
	hash_search(worker.live.index, &saga->id, HASH_REMOVE, NULL);
	progress_release(saga);
	dlist_delete(&saga->node);
	MemoryContextDelete(saga->cxt);
	worker.live.count--;
}

static SagaEntry *
find_saga(int64 id)
{
	return hash_search(worker.live.index, &id, HASH_FIND, NULL);
}

/* Sagas in memory after id, which a read of the sagas after id meets again. */
static int
count_live_after(int64 id)
{
	dlist_iter	iter;
	int			n = 0;

	dlist_foreach(iter, &worker.live.sagas)
		n += dlist_container(Saga, node, iter.cur)->id > id;
	return n;
}

static void
note_abort_request(Saga *saga, bool abort_requested, const char *reason)
{
	if (abort_requested && !saga->abort_requested)
	{
		engine_request_abort(saga, reason);
		worker.turn.work_pending = true;
	}
}

/* A saga read by the scan after taken_upto: load it unless it is in memory. */
static bool
want_scanned(int64 id, bool abort_requested, const char *abort_reason)
{
	SagaEntry  *entry = find_saga(id);

	if (entry != NULL)
	{
		note_abort_request(entry->saga, abort_requested, abort_reason);
		return false;
	}
	return true;
}

/*
 * A saga named by a wake-up: one in memory may have an abort request; one
 * after taken_upto is left to the scan, which takes sagas in order; an
 * older one (retried, or submitted late) is loaded if it fits, and
 * otherwise the scan goes back to it.
 */
static bool
want_named(int64 id, bool abort_requested, const char *abort_reason)
{
	SagaEntry  *entry = find_saga(id);

	if (entry != NULL)
	{
		note_abort_request(entry->saga, abort_requested, abort_reason);
		return false;
	}
	if (id > worker.take_up.taken_upto)
	{
		worker.take_up.more_to_take = true;
		return false;
	}
	if (worker.take_up.room_left > 0)
	{
		worker.take_up.room_left--;
		return true;
	}
	worker.take_up.taken_upto = Min(worker.take_up.taken_upto, id - 1);
	worker.take_up.more_to_take = true;
	return false;
}

static void
add_live_sagas(List *sagas)
{
	ListCell   *lc;

	foreach(lc, sagas)
	{
		Saga	   *saga = lfirst(lc);
		SagaEntry  *entry = hash_search(worker.live.index, &saga->id, HASH_ENTER, NULL);

		entry->saga = saga;
		dlist_push_tail(&worker.live.sagas, &saga->node);
		worker.live.count++;
		worker.take_up.highest_loaded = Max(worker.take_up.highest_loaded, saga->id);
		worker.turn.work_pending = true;
	}
}

/*
 * Of the sagas named by wake-ups, puts those whose rows must be read in
 * to_read and returns how many: a changed one in memory (an abort
 * requested), and one at most taken_upto that is not in memory (retried,
 * or committed after the scan passed its id).  Nothing else is read, as
 * want_named() would only refuse it: a saga after taken_upto is left to the
 * scan, which takes sagas in order (the common wake-up, a submission, only
 * says that the scan has more to take), and a submitted saga in memory was
 * read when the scan took it up, abort request included.
 */
static int
named_to_read(void)
{
	int			i,
				n = 0;

	for (i = 0; i < worker.take_up.nqueued; i++)
	{
		SagaWake   *wake = &worker.take_up.queued[i];
		bool		in_memory = find_saga(wake->id) != NULL;

		if (!in_memory && wake->id > worker.take_up.taken_upto)
			worker.take_up.more_to_take = true;
		else if (!(in_memory && wake->submitted))
			worker.take_up.to_read[n++] = wake->id;
	}
	return n;
}

/*
 * Takes up live sagas, oldest first, up to saga.max_active_sagas in memory,
 * and notes abort requests.  What it reads is bounded by what it takes up
 * and what is in memory, never by the number of sagas waiting: the sagas
 * named by wake-ups, then a scan after taken_upto of at most the sagas that
 * fit (plus those in memory it will meet again).  recheck (every few
 * seconds, and when wake-ups were lost) rereads the abort requests of the
 * sagas in memory and starts the scan over from the first saga, so that a
 * saga no wake-up named is taken up all the same.
 */
static void
take_up_sagas(bool recheck)
{
	int64		last;

	if (recheck)
	{
		ListCell   *lc;

		foreach(lc, store_abort_requests(worker.take_up.highest_loaded))
		{
			LiveSagaRef *ref = lfirst(lc);
			SagaEntry  *entry = find_saga(ref->id);

			if (entry != NULL)
				note_abort_request(entry->saga, ref->abort_requested, ref->abort_reason);
		}
		worker.take_up.taken_upto = 0;
		worker.take_up.more_to_take = true;
	}
	worker.take_up.room_left = saga_max_active_sagas - worker.live.count;
	if (worker.take_up.nqueued > 0)
	{
		int			nread = named_to_read();

		if (nread > 0)
			add_live_sagas(store_live_sagas_named(worker.take_up.to_read, nread,
												  INT_MAX, want_named, &last, worker.cxt));
		worker.take_up.nqueued = 0;
	}
	worker.take_up.room_left = saga_max_active_sagas - worker.live.count;
	if (worker.take_up.more_to_take && worker.take_up.room_left > 0)
	{
		int			limit = worker.take_up.room_left + count_live_after(worker.take_up.taken_upto);
		bool		exhausted;

		last = worker.take_up.taken_upto;
		add_live_sagas(store_live_sagas_after(worker.take_up.taken_upto, limit,
											  worker.take_up.room_left, want_scanned,
											  &last, &exhausted, worker.cxt));
		worker.take_up.taken_upto = last;
		worker.take_up.more_to_take = !exhausted;
	}
}

/* ---- acting on what the engine decided ---- */

/* The calls the engine gave up on (abort, deadline): cancelled, never heard of again. */
static void
abandon_calls(Saga *saga)
{
	int			i;

	for (i = 0; i < saga->nsteps; i++)
	{
		SagaStep   *step = &saga->steps[i];

		if (step->abandon != NULL)
		{
			remote_abandon(step->abandon, step);
			step->abandon = NULL;
		}
	}
}

/*
 * Does the text op of step sends fit its target's kind (read just now)?
 * A target altered or re-created as the other kind after the step was
 * added holds SQL for a service or a request for a database; so does an
 * xa call on a target turned HTTP.  Building or sending such a call would
 * raise an error in the worker (or send JSON as SQL): the attempt fails
 * instead, with 22023 in *error.
 */
static bool
step_fits_target(SagaStep *step, StepOp op, RemotePool *pool, char **error)
{
	const char *text = op < STEP_SQL_OPS ? step->sql[op] : NULL;
	bool		is_request = http_is_request(text);

	if (remote_pool_is_http(pool) && !is_request)
	{
		*error = text == NULL ?
			psprintf("the %s of step \"%s\" cannot be sent: target \"%s\" is now an HTTP target",
					 step_op_name(op), step->name, step->target) :
			psprintf("the %s of step \"%s\" is SQL text, but target \"%s\" is now an HTTP target",
					 step_op_name(op), step->name, step->target);
		return false;
	}
	if (!remote_pool_is_http(pool) && is_request)
	{
		*error = psprintf("the %s of step \"%s\" is a request, but target \"%s\" is now a database",
						  step_op_name(op), step->name, step->target);
		return false;
	}
	return true;
}

/*
 * Does step's pool hold it back, for the batch in flight there
 * (remote_pool_batch_holds)?  Then it waits for a later turn: the one that
 * batch's reply makes, or the timer set here for when the hold ends.  A
 * step is held once, for the batch it first waited for: on a busy target
 * some batch is always young, and the oldest steps (advanced first every
 * turn) would otherwise wait as long as the load lasts.
 */
static bool
holds_for_batch(SagaStep *step, TimestampTz now)
{
	TimestampTz until;

	if (step->batch_hold_until != 0 && now >= step->batch_hold_until)
		return false;
	if (!remote_pool_batch_holds(step->pool, worker.turn.number, now, &until))
		return false;
	if (step->batch_hold_until == 0)
		step->batch_hold_until = until;
	worker.turn.batch_hold_until = Min(worker.turn.batch_hold_until, step->batch_hold_until);
	return true;
}

/*
 * Starts the calls the engine wants for saga, in its order, as far as the
 * pools of their targets have room; the others wait for a later turn, in
 * saga order.  Pools live as long as the worker: a step looks its own up
 * once.  A target that cannot be used fails the attempt.
 */
static void
start_wanted_calls(Saga *saga, List *wants, TimestampTz now, List **starts)
{
	ListCell   *lc;

	foreach(lc, wants)
	{
		CallWant   *want = lfirst(lc);
		SagaStep   *step = want->step;
		PlannedCall *start;
		char	   *error;
		int			sqlstate;
		bool		batchable;

		if (step->pool == NULL)
			step->pool = remote_pool_lookup(step->target, saga->owner);
		if (!remote_pool_ready(step->pool) && !remote_pool_resolve(step->pool, &error, &sqlstate))
		{
			engine_call_refused(step, want->op, error, sqlstate, now);
			continue;
		}
		if (!step_fits_target(step, want->op, step->pool, &error))
		{
			engine_call_refused(step, want->op, error, ERRCODE_INVALID_PARAMETER_VALUE, now);
			continue;
		}
		batchable = batch_may_share(step, want->op) && remote_pool_batches(step->pool, now);
		if (batchable && !engine_goes_first(saga) && holds_for_batch(step, now))
			continue;
		if (!remote_pool_has_room(step->pool, batchable, engine_goes_first(saga)))
			continue;
		step->batch_hold_until = 0;
		remote_pool_reserve(step->pool, batchable);
		engine_call_starting(step, want->op, now);
		start = palloc(sizeof(PlannedCall));
		start->step = step;
		start->op = want->op;
		start->pool = step->pool;
		start->batchable = batchable;
		*starts = lappend(*starts, start);
	}
}

/*
 * Lets the engine advance saga, then acts on what it decided.  A call that
 * could not start (its target unusable) may decide a rollback: that
 * proceeds in the same turn, as one decided by the engine itself does.
 * Phases only move on (forward, then commit or rollback), so this ends.
 */
static void
advance_saga(Saga *saga, TimestampTz now, List **starts)
{
	SagaPhase	phase;

	do
	{
		List	   *wants = NIL;

		engine_advance(saga, now, &wants);
		phase = saga->phase;
		abandon_calls(saga);
		start_wanted_calls(saga, wants, now, starts);
	} while (saga->phase != phase && !saga_is_final(saga->status));
}

static void
note_final(Saga *saga)
{
	if (worker.turn.nfinals == worker.turn.maxfinals)
	{
		worker.turn.maxfinals = Max(64, worker.turn.maxfinals * 2);
		worker.turn.finals = worker.turn.finals ?
			repalloc(worker.turn.finals, worker.turn.maxfinals * sizeof(int64)) :
			MemoryContextAlloc(worker.cxt, worker.turn.maxfinals * sizeof(int64));
		worker.turn.final_statuses = worker.turn.final_statuses ?
			repalloc(worker.turn.final_statuses, worker.turn.maxfinals * sizeof(int)) :
			MemoryContextAlloc(worker.cxt, worker.turn.maxfinals * sizeof(int));
	}
	worker.turn.final_statuses[worker.turn.nfinals] = (int) saga->status;
	worker.turn.finals[worker.turn.nfinals++] = saga->id;
}

/*
 * Events the timestamps of a saga and its steps tell as well: saga.history
 * derives them for a saga of mode saga or msg whose history holds nothing
 * else (see pg_saga--1.5--1.6.sql).  An action found already applied is
 * told by its event alone.
 */
static bool
event_is_ordinary(const SagaEvent *event)
{
	if (event->step == 0)
		return strcmp(event->event, "succeeded") == 0;
	if (strcmp(event->event, "action_started") == 0)
		return true;
	return strcmp(event->event, "action_succeeded") == 0 &&
		(event->detail == NULL || strncmp(event->detail, "already", 7) != 0);
}

static bool
events_all_ordinary(Saga *saga)
{
	ListCell   *lc;

	foreach(lc, saga->events)
		if (!event_is_ordinary(lfirst(lc)))
			return false;
	return true;
}

/* The step's result is more than "no rows": it must be in its row. */
static bool
result_to_write(SagaStep *step)
{
	return step->result_dirty &&
		((step->result != NULL && strcmp(step->result, "[]") != 0) ||
		 step->confirm_result != NULL);
}

static bool
saga_has_changes(Saga *saga)
{
	int			i;

	if (saga->dirty || saga->alert || list_length(saga->events) > saga->events_held)
		return true;
	for (i = 0; i < saga->nsteps; i++)
		if (saga->steps[i].dirty)
			return true;
	return false;
}

/*
 * The saga's changes of this turn stay in memory: its rows are now behind
 * (written by write_saga with the next change that must be), its events
 * held, and the dirty flags clear, so a saga that does not change costs a
 * later turn nothing.
 */
static void
hold_changes(Saga *saga)
{
	int			i;

	saga->rows_behind |= saga->dirty;
	saga->dirty = false;
	for (i = 0; i < saga->nsteps; i++)
	{
		saga->steps[i].row_behind |= saga->steps[i].dirty;
		saga->steps[i].dirty = false;
	}
	saga->events_held = list_length(saga->events);
}

/*
 * Whether the saga's changes must reach its rows this turn.  What must be
 * durable is written (a decision, a final status, a failure and its
 * error, a retry's attempt count: none of them is an ordinary event, see
 * SPEC "What is durable"), and so is everything of xa sagas (see
 * write_saga) and of a second phase.  The rest, a forward phase's ordinary
 * progress, stays in memory, shown from shared memory (progress.c), as
 * long as there is room there; it is written with the next change that
 * must be.
 */
static bool
must_write(Saga *saga)
{
	int			i;

	if (!store_has_derived_history())
		return true;
	if (saga->durable || saga->decided || saga->alert || saga->mode == MODE_XA ||
		saga->phase != PHASE_FORWARD || saga_is_final(saga->status))
		return true;
	/* with a synchronous standby, the turn that starts a saga flushes */
	if (saga->just_started && sync_standby_configured())
		return true;
	if (!events_all_ordinary(saga))
		return true;
	/* a history that is stored goes on being stored, as it happens */
	if (saga->history_stored && saga->events != NIL)
		return true;
	for (i = 0; i < saga->nsteps; i++)
		if (result_to_write(&saga->steps[i]))
			return true;
	return !progress_publish(saga);
}

/*
 * The saga's history may be left to saga.history to derive: it ends as
 * its timestamps tell, and nothing else was stored of it.
 */
static bool
history_derived(Saga *saga)
{
	return store_has_derived_history() && !saga->history_stored &&
		saga_is_final(saga->status) &&
		(saga->mode == MODE_SAGA || saga->mode == MODE_MSG) && events_all_ordinary(saga);
}

/* Writes the saga's rows and events; see write_changes. */
static void
write_saga(Saga *saga, bool *durable, bool *send_after_commit)
{
	ListCell   *lc;
	int			i;

	if (saga->dirty || saga->rows_behind)
	{
		if (!store_write_saga(saga))
		{
			/* saga.abort() came first: it wins over the commit */
			engine_commit_lost_to_abort(saga);
			abandon_calls(saga);
			saga->decided_commit = false;
			(void) store_write_saga(saga);
		}
		saga->decided_commit = false;
	}
	for (i = 0; i < saga->nsteps; i++)
	{
		if (saga->steps[i].dirty || saga->steps[i].row_behind)
		{
			store_write_step(&saga->steps[i]);
			saga->steps[i].dirty = false;
			saga->steps[i].row_behind = false;
		}
	}
	saga->rows_behind = false;
	if (!history_derived(saga))
	{
		foreach(lc, saga->events)
			store_write_event(saga, lfirst(lc));
		saga->history_stored |= saga->events != NIL;
	}
	list_free(saga->events);
	saga->events = NIL;
	saga->events_held = 0;
	if (saga->alert)
	{
		Async_Notify("saga_alert", saga->gid);
		saga->alert = false;
	}
	saga->dirty = false;

	/*
	 * xa: a lost "started" would let a step that reached PREPARE look
	 * unsent after a crash; the call sent again would wait on the locks of
	 * its own prepared transaction.  xa progress is flushed.
	 */
	*durable |= saga->durable || saga->mode == MODE_XA;
	/* a decision is acted on only once it is on disk; xa, see above */
	*send_after_commit |= saga->decided || saga->mode == MODE_XA;
	saga->durable = false;
	saga->decided = false;
	if (saga->just_started)
	{
		/*
		 * With a synchronous standby, the submission must also be there
		 * before a step runs: flushing this turn waits for it.
		 */
		*durable |= sync_standby_configured();
		*send_after_commit |= sync_standby_configured();
	}
	/*
	 * The views show memory where it is ahead of the rows, but not a
	 * decision or a final status before its commit: they are published
	 * once it is (publish_written_sagas).
	 */
	saga->publish_after_commit = saga->progress_entry != 0;
}

/* After the turn's commit: the views show what it wrote (see write_saga). */
static void
publish_written_sagas(void)
{
	dlist_iter	iter;

	dlist_foreach(iter, &worker.live.sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);

		if (saga->publish_after_commit)
		{
			(void) progress_publish(saga);
			saga->publish_after_commit = false;
		}
	}
}

/*
 * Writes the changes of every saga that must be written (see must_write);
 * true if one became final.
 *
 * Only decisions must reach the disk before the worker acts on them: to
 * roll back, to commit (tcc, xa), to stop as failed; and so must a saga's
 * final status (see saga_set_status).  Progress (the saga started, a step
 * started or done) stays in memory, or is written with synchronous_commit
 * off: after a crash that lost it, the worker calls those steps again and
 * the barrier answers that they are already done, or, if the saga is
 * rolled back instead, compensates them (a no-op where they never ran).
 * (Except in mode xa: see write_saga.)  A final status written with
 * nothing else stored of the saga writes no events: saga.history derives
 * them from the timestamps.
 */
static bool
write_changes(bool *send_after_commit)
{
	dlist_iter	iter;
	bool		any_final = false;
	bool		durable = false;

	dlist_foreach(iter, &worker.live.sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);

		if (saga->just_started)
			worker.turn.started_any = true;
		if (saga_has_changes(saga))
		{
			if (must_write(saga))
				write_saga(saga, &durable, send_after_commit);
			else
				hold_changes(saga);
		}
		saga->just_started = false;
		if (saga_is_final(saga->status))
		{
			any_final = true;
			note_final(saga);
		}
	}
	if (!durable)
		(void) set_config_option("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	else if (synchronous_commit < SYNCHRONOUS_COMMIT_REMOTE_WRITE)
	{
		/*
		 * What must be durable is flushed, and reaches a synchronous
		 * standby, whatever the database, the worker's role or the server
		 * set synchronous_commit to (off, local): a waiter is told a final
		 * status only once a crash or a failover cannot take it back.
		 */
		(void) set_config_option("synchronous_commit", "on", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	}
	return any_final;
}

static void
call_done(void *arg, RemoteOutcome *outcome)
{
	SagaStep   *step = (SagaStep *) arg;

	if (!step_in_flight(step))
		return;					/* given up on meanwhile: its outcome was decided */
	step_call_end(step);
	if (outcome->kind == OUTCOME_NOT_SENT)
		engine_call_not_sent(step);
	else if (outcome->kind == OUTCOME_UNKNOWN && outcome->lost_in_batch)
		engine_call_lost_in_batch(step);
	else
		engine_finish_call(step, outcome, GetCurrentTimestamp());
	worker.turn.work_pending = true;
}

/* After a call was handed to remote.c: note its connection in the step. */
static void
note_call_sent(SagaStep *step, RemoteConn *conn, TimestampTz now)
{
	if (conn == NULL)
	{
		step_call_end(step);
		engine_call_failed_to_start(step, "no file descriptor free for a new connection",
									ERRCODE_INSUFFICIENT_RESOURCES, now);
		worker.turn.work_pending = true;
	}
	else if (step_call_starting(step))
		step_call_send(step, conn);
	/* else finished already, as a call that cannot be sent is */
}

/*
 * Sends one planned call to an HTTP target: the step's request with its
 * data (http_request.c), as a request of the pool.  A request whose data
 * selects nothing fails the attempt for a business reason, unsent.
 */
static void
send_http(PlannedCall *start)
{
	SagaStep   *step = start->step;
	TimestampTz now = GetCurrentTimestamp();
	HttpCall	call;
	char	   *error;
	int			sqlstate;

	if (!http_request_build(remote_pool_http_target(start->pool), worker.coordinator_id, step,
							start->op, &call, &error, &sqlstate))
	{
		step_call_end(step);
		engine_call_failed_to_start(step, error, sqlstate, now);
		worker.turn.work_pending = true;
		return;
	}
	note_call_sent(step, remote_call_http(start->pool, &call, http_request_shown_path(step, start->op),
										  step_timeout_ms(step), call_done, step), now);
}

/* Sends one planned call on its own. */
static void
send_alone(PlannedCall *start)
{
	SagaStep   *step = start->step;
	Saga	   *saga = step->saga;
	int			timeout = step_timeout_ms(step);
	TimestampTz now = GetCurrentTimestamp();
	RemoteStepCall *params;
	char	   *query;
	RemoteConn *conn;

	if (remote_pool_is_http(start->pool))
	{
		send_http(start);
		return;
	}
	params = barrier_step_params(worker.coordinator_id, saga, step, start->op, timeout);
	query = barrier_step_call(worker.coordinator_id, saga, step, start->op, timeout, params);
	conn = remote_call(start->pool, query, params,
					   now + ((int64) timeout + CALL_GRACE_MS) * 1000,
					   call_done, step);
	note_call_sent(step, conn, now);
}

/* Sends n planned calls of one pool as one batch (alone if n is 1). */
static void
send_batch(PlannedCall **starts, int n)
{
	RemoteStepCall **calls;
	void	  **args;
	TimestampTz now = GetCurrentTimestamp();
	RemoteConn *conn;
	int			i;

	if (n == 1)
	{
		send_alone(starts[0]);
		return;
	}
	calls = palloc(sizeof(RemoteStepCall *) * n);
	args = palloc(sizeof(void *) * n);
	for (i = 0; i < n; i++)
	{
		SagaStep   *step = starts[i]->step;

		calls[i] = barrier_batch_step_params(worker.coordinator_id, step, starts[i]->op,
											 step_timeout_ms(step));
		args[i] = step;
	}
	conn = remote_call_batch(starts[0]->pool, calls, n, args, CALL_GRACE_MS, call_done);
	for (i = 0; i < n; i++)
		note_call_sent(starts[i]->step, conn, now);
}

static void
forget_final_sagas(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &worker.live.sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);
		int			i;
		bool		in_flight = false;

		if (!saga_is_final(saga->status) || saga->dirty)
			continue;
		for (i = 0; i < saga->nsteps; i++)
			in_flight |= step_in_flight(&saga->steps[i]);
		if (!in_flight)
			forget_saga(saga);
	}
}

/*
 * The coordinator's id keys its barrier records (with each saga's key: see
 * barrier_identity), and names its xa transactions.  pg_restore loads the
 * original id after CREATE EXTENSION made a new one and started this
 * worker, so the id is read again every turn, before any call is planned.
 */
static void
refresh_coordinator_id(void)
{
	char	   *id = store_coordinator_id();

	if (worker.coordinator_id == NULL || strcmp(id, worker.coordinator_id) != 0)
	{
		if (worker.coordinator_id)
			pfree(worker.coordinator_id);
		worker.coordinator_id = MemoryContextStrdup(worker.cxt, id);
		recovery_set_coordinator(worker.coordinator_id);
	}
}

/*
 * The end of the WAL inserted so far, as XLogFlush() takes it.
 * GetXLogInsertRecPtr() is where the next record will start: when the last
 * one ended on a page boundary, that is past the next page's header, where
 * no record ends until another is inserted, and XLogFlush() refuses a
 * request beyond the WAL inserted ("xlog flush request ... is not
 * satisfied").  The worker then failed every turn, restarting, until
 * something else wrote WAL: on a quiet server, never.
 */
static XLogRecPtr
inserted_wal_end(void)
{
	XLogRecPtr	next = GetXLogInsertRecPtr();

	if (next % wal_segment_size == SizeOfXLogLongPHD)
		return next - SizeOfXLogLongPHD;
	if (next % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		return next - SizeOfXLogShortPHD;
	return next;
}

/* Sends the turn's calls, once the sagas they start are durably submitted. */
static void
send_turn_calls(List *starts)
{
	static const BatchSender sender = {send_alone, send_batch};

	if (worker.turn.started_any && !XLogRecPtrIsInvalid(worker.turn.submits_end))
		XLogFlush(worker.turn.submits_end);
	worker.turn.started_any = false;
	batch_send_calls(starts, &sender);
}

/*
 * pg_restore makes the extension, which starts this worker, then loads the
 * extension's tables one at a time (several at once with -j), and grants
 * privileges last.  A saga taken up meanwhile may lack its steps, its
 * values, or its owner's USAGE on its target, which would fail it though
 * nothing is wrong with it; an xa sweep could find a saga's prepared
 * branches before the saga.  So a worker that starts while pg_restore is
 * connected to its database takes up no saga, sweeps nothing and forgets
 * nothing until pg_restore has left; then it scans from the first saga.
 * Checked at each turn until then, never again after.  A worker restarted
 * while an unrelated pg_restore runs in the database waits for it too.
 */
static bool
restore_under_way(void)
{
	bool		restoring;

	if (!worker.restore_watch)
		return false;
	restoring = store_restore_connected();
	if (restoring != worker.restore_seen)
		ereport(LOG,
				(errmsg(restoring ?
						"pg_saga: pg_restore is connected to database \"%s\": sagas are taken up once it has left" :
						"pg_saga: pg_restore has left database \"%s\": sagas are taken up",
						get_database_name(MyDatabaseId))));
	worker.restore_seen |= restoring;
	worker.restore_watch = restoring;
	/* nothing is taken up meanwhile; then the scan starts from the first saga */
	if (restoring)
		worker.take_up.nqueued = 0;
	worker.take_up.taken_upto = 0;
	worker.take_up.more_to_take = !restoring;
	return restoring;
}

/* One turn: read, advance, write, then send. */
static void
run_turn(bool reload)
{
	bool		restoring;
	List	   *starts = NIL;
	dlist_iter	iter;
	TimestampTz now;
	bool		any_final;
	bool		send_after_commit = false;

	begin_turn_transaction();
	if (reload && !OidIsValid(get_extension_oid(SAGA_EXTENSION_NAME, true)))
		leave_no_extension();
	store_recheck_schema();
	restoring = restore_under_way();
	if (!restoring && (reload || worker.take_up.nqueued > 0 ||
					   (worker.take_up.more_to_take && worker.live.count < saga_max_active_sagas)))
	{
		/* the sagas read now were submitted by commits before this point */
		worker.turn.submits_end = Max(worker.turn.submits_end, inserted_wal_end());
		take_up_sagas(reload);
	}
	refresh_coordinator_id();

	/*
	 * SPI leaves its procedure context current, which SPI_finish frees: what
	 * must outlive the transaction (the calls to send) goes in turn_cxt.
	 */
	MemoryContextSwitchTo(worker.turn_cxt);
	now = GetCurrentTimestamp();
	worker.turn.batch_hold_until = DT_NOEND;
	worker.turn.number++;
	/* sagas holding locks or past their decision first, then in order */
	dlist_foreach(iter, &worker.live.sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);

		if (engine_goes_first(saga))
			advance_saga(saga, now, &starts);
	}
	dlist_foreach(iter, &worker.live.sagas)
	{
		Saga	   *saga = dlist_container(Saga, node, iter.cur);

		if (!engine_goes_first(saga))
			advance_saga(saga, now, &starts);
	}
	any_final = write_changes(&send_after_commit);
	if (!restoring)
	{
		recovery_turn(&worker.live.sagas, now);
		forget_turn(now);
	}

	/*
	 * A turn that decides nothing sends its calls before it commits: the
	 * participants work while the commit waits for its flush (a final
	 * status is flushed).  That is safe outside xa: a call whose start a
	 * crash then lost counts as maybe applied (see store.c), and the
	 * barrier makes its repetition a no-op.  A decision to roll back or to
	 * commit must be on disk before the calls that act on it.
	 */
	if (!send_after_commit)
		send_turn_calls(starts);
	end_turn_transaction();
	publish_written_sagas();

	if (any_final)
		saga_wake_waiters(worker.turn.finals, worker.turn.final_statuses, worker.turn.nfinals);
	worker.turn.nfinals = 0;
	if (send_after_commit)
		send_turn_calls(starts);
	forget_final_sagas();
	compute_sagas_wakeup(GetCurrentTimestamp());
}

static TimestampTz
next_timer(TimestampTz next_reload)
{
	return Min(Min(next_reload, remote_next_deadline()),
			   Min(worker.turn.sagas_wakeup, worker.turn.batch_hold_until));
}

/*
 * The sagas' next timer, computed once per turn rather than at every wait:
 * between turns only outcomes change it, and an outcome makes a turn.  A
 * time already past (a step due that waits for a connection) needs no
 * timer: the call that frees the connection makes a turn.
 */
static void
compute_sagas_wakeup(TimestampTz now)
{
	dlist_iter	iter;

	worker.turn.sagas_wakeup = DT_NOEND;
	dlist_foreach(iter, &worker.live.sagas)
	{
		TimestampTz t = engine_next_wakeup(dlist_container(Saga, node, iter.cur));

		if (t > now && t < worker.turn.sagas_wakeup)
			worker.turn.sagas_wakeup = t;
	}
}

static void
rebuild_wait_set(void)
{
	if (worker.wait.set)
		FreeWaitEventSet(worker.wait.set);
	worker.wait.size = 2 + remote_count_sockets();
	worker.wait.set = saga_create_wait_event_set(worker.cxt, worker.wait.size);
	AddWaitEventToSet(worker.wait.set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(worker.wait.set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	remote_add_wait_events(worker.wait.set);
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

	timeout = worker.turn.work_pending ? 0 :
		Min(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next), MAX_WAIT_MS);
	if (worker.wait.set == NULL || remote_wait_events_changed())
		rebuild_wait_set();
	events = palloc(sizeof(WaitEvent) * worker.wait.size);
	nevents = WaitEventSetWait(worker.wait.set, timeout, events, worker.wait.size,
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
			/*
			 * handling a socket can close only its own connection, or end
			 * HTTP requests, which hold no socket of this set
			 */
			remote_handle_socket(events[i].user_data, events[i].events);
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

	worker.slot = DatumGetInt32(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	dboid = saga_shared->slots[worker.slot].dboid;
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	take_my_slot();
	pgstat_report_appname("pg_saga worker");
	/*
	 * Every statement of the worker finds its rows through an index (ids,
	 * the partial index of unfinished sagas).  Its plans are made once, when
	 * the tables may still be empty and a scan of the whole table looks
	 * cheapest: a generic plan for "id = ANY ($1)" would keep scanning
	 * saga.gtx as it grows.  The cost that disabling scans adds would make
	 * the few statements that have no index to use (saga.coordinator, one
	 * row) look worth compiling: its statements are all short, so no JIT.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	worker.cxt = AllocSetContextCreate(TopMemoryContext, "pg_saga worker", ALLOCSET_DEFAULT_SIZES);
	worker.turn_cxt = AllocSetContextCreate(worker.cxt, "pg_saga turn", ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(SagaEntry);
	ctl.hcxt = worker.cxt;
	worker.live.index = hash_create("pg_saga sagas", 1024, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	progress_attach(worker.slot, worker.cxt);

	begin_turn_transaction();
	if (!OidIsValid(get_extension_oid(SAGA_EXTENSION_NAME, true)))
		leave_no_extension();
	store_prepare();
	ereport(LOG, (errmsg("pg_saga worker started for database \"%s\"",
						 get_database_name(MyDatabaseId))));
	end_turn_transaction();

	remote_init(worker.cxt);
	recovery_init(worker.cxt);
	forget_init(worker.cxt);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, invalidate_targets, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, invalidate_targets, (Datum) 0);

	for (;;)
	{
		TimestampTz now;
		bool		reload;

		MemoryContextReset(worker.turn_cxt);
		MemoryContextSwitchTo(worker.turn_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		remote_check_deadlines(now);
		remote_close_idle(now);
		reload = now >= next_reload;
		/* room freed while sagas wait to be taken up counts as work */
		if (reload || worker.turn.work_pending || next_timer(next_reload) <= now ||
			(worker.take_up.more_to_take && worker.live.count < saga_max_active_sagas))
		{
			worker.turn.work_pending = false;
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
			bool		rescan;
			XLogRecPtr	submit_lsn;

			if (worker.take_up.nqueued > 0)
				next_reload = 0;	/* not taken up yet: reread everything */
			worker.take_up.nqueued = saga_take_queue(worker.slot, worker.take_up.queued,
													 &overflow, &rescan, &submit_lsn);
			worker.turn.submits_end = Max(worker.turn.submits_end, submit_lsn);
			if (overflow)
				next_reload = 0;
			else if (worker.take_up.nqueued > 0)
				worker.turn.work_pending = true;
			if (rescan)
			{
				/*
				 * COMMIT PREPARED made sagas visible whose ids may be below
				 * taken_upto: the scan starts over from the first saga
				 */
				worker.take_up.taken_upto = 0;
				worker.take_up.more_to_take = true;
				worker.turn.work_pending = true;
			}
		}
	}
}
