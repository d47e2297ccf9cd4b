/*-------------------------------------------------------------------------
 *
 * progress.c
 *		The progress of running sagas, kept in shared memory instead of the
 *		tables, as pg_stat_activity shows backends.
 *
 * A saga's ordinary progress (it started, a step started, a step
 * succeeded) need not be durable: after a crash the worker calls the steps
 * of unfinished sagas again and the barrier answers each repeat with its
 * kept result.  Writing it costs a row update and its WAL per change, most
 * of what coordinating a short saga costs.  So the worker writes a saga's
 * rows when something must be durable (a decision, a failure, a retry's
 * attempt count, the final status) and publishes the rest here, where
 * saga._progress() reads it for the views (saga.steps, saga.transactions,
 * saga.history, saga.stats), which show the newer of the two.
 *
 * Each worker slot owns a region of saga.progress_slots entries and an
 * LWLock: the worker writes its entries under the lock once per saga and
 * turn, readers copy them under it shared.  An entry is the saga itself
 * (step 0: its status) or one of its steps.  The worker hands entries out
 * from a free list of its own memory and takes them back when a saga leaves
 * it; when none are left, the saga's progress is written to the tables as
 * it happens, so the region's size bounds memory, never correctness.  A
 * worker clears its region when it starts and when it exits: what a dead
 * worker published tells nothing any more.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "catalog/pg_authid.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "progress.h"
#include "settings.h"

#define PROGRESS_TRANCHE "pg_saga progress"

typedef struct ProgressEntry
{
	int64		saga_id;		/* 0: free */
	Oid			owner;			/* the saga's: who may see the entry */
	int32		step;			/* 0: the saga itself */
	int32		attempts;		/* step 0: the saga's steps done, as saga.transactions counts */
	uint8		status;			/* a SagaStatus for step 0, else a StepStatus */
	bool		result_empty;	/* the action answered no rows, not written yet */
	TimestampTz next_attempt_at;	/* 0: none */
	TimestampTz started_at;
	TimestampTz finished_at;
} ProgressEntry;

/* One worker slot's region: entries[saga_progress_slots]. */
typedef struct ProgressRegion
{
	LWLock	   *lock;
	Oid			dboid;			/* whose worker writes it; InvalidOid: none */
	ProgressEntry entries[FLEXIBLE_ARRAY_MEMBER];
} ProgressRegion;

static char *progress_base = NULL;

/* the worker's own: its region and the entries it has not handed out */
static ProgressRegion *my_region = NULL;
static int *free_entries = NULL;
static int	nfree = 0;

static Size
region_size(void)
{
	return MAXALIGN(add_size(offsetof(ProgressRegion, entries),
							 mul_size(sizeof(ProgressEntry), saga_progress_slots)));
}

static ProgressRegion *
region_of(int slot)
{
	return (ProgressRegion *) (progress_base + slot * region_size());
}

Size
progress_shmem_size(void)
{
	return mul_size(region_size(), saga_max_workers);
}

void
progress_shmem_request(void)
{
	RequestNamedLWLockTranche(PROGRESS_TRANCHE, saga_max_workers);
}

/* Called with AddinShmemInitLock held. */
void
progress_shmem_init(void)
{
	bool		found;
	int			i;

	progress_base = ShmemInitStruct("pg_saga progress", progress_shmem_size(), &found);
	if (found)
		return;
	memset(progress_base, 0, progress_shmem_size());
	for (i = 0; i < saga_max_workers; i++)
		region_of(i)->lock = &(GetNamedLWLockTranche(PROGRESS_TRANCHE))[i].lock;
}

static void
clear_region(ProgressRegion *region, Oid dboid)
{
	LWLockAcquire(region->lock, LW_EXCLUSIVE);
	memset(region->entries, 0, sizeof(ProgressEntry) * saga_progress_slots);
	region->dboid = dboid;
	LWLockRelease(region->lock);
}

/*
 * At exit.  No code path raises an error while holding the region's lock
 * (only memory is touched under it), so it is free here.
 */
static void
clear_my_region(int code, Datum arg)
{
	if (my_region != NULL)
		clear_region(my_region, InvalidOid);
}

/*
 * The worker of slot takes its region: empty, and emptied again when it
 * exits, whatever way.
 */
void
progress_attach(int slot, MemoryContext cxt)
{
	int			i;

	my_region = region_of(slot);
	clear_region(my_region, MyDatabaseId);
	free_entries = MemoryContextAlloc(cxt, sizeof(int) * Max(saga_progress_slots, 1));
	for (i = 0; i < saga_progress_slots; i++)
		free_entries[nfree++] = saga_progress_slots - 1 - i;
	before_shmem_exit(clear_my_region, (Datum) 0);
}

/* Hands out an entry for the saga or one of its steps (1-based; 0: none). */
static int
take_entry(void)
{
	return nfree > 0 ? free_entries[--nfree] + 1 : 0;
}

static void
give_back(int *entry)
{
	if (*entry != 0)
	{
		memset(&my_region->entries[*entry - 1], 0, sizeof(ProgressEntry));
		free_entries[nfree++] = *entry - 1;
		*entry = 0;
	}
}

/* Entries for the saga and each of its steps; false if there are not enough. */
static bool
has_entries(Saga *saga)
{
	int			i;

	if (saga->progress_entry == 0)
	{
		if (nfree < saga->nsteps + 1)
			return false;
		saga->progress_entry = take_entry();
		for (i = 0; i < saga->nsteps; i++)
			saga->steps[i].progress_entry = take_entry();
	}
	return true;
}

static void
set_step_entry(ProgressEntry *entry, SagaStep *step)
{
	entry->saga_id = step->saga->id;
	entry->owner = step->saga->owner;
	entry->step = step->number;
	entry->status = (uint8) step->status;
	entry->attempts = step->attempts;
	entry->next_attempt_at = step->next_attempt_at;
	entry->started_at = step->started_at;
	entry->finished_at = step->finished_at;
	entry->result_empty = step->result != NULL && strcmp(step->result, "[]") == 0;
}

/* Steps settled for good, as saga.transactions.steps_done counts them. */
static int
steps_done(Saga *saga)
{
	int			n = 0;
	int			i;

	for (i = 0; i < saga->nsteps; i++)
	{
		StepStatus	status = saga->steps[i].status;

		n += status == STEP_SUCCEEDED || status == STEP_CONFIRMED ||
			status == STEP_COMPENSATED || status == STEP_SKIPPED;
	}
	return n;
}

/*
 * Shows the saga's state as it is in memory.  False when no entries are
 * left for it: its progress must then be written to the tables.
 */
bool
progress_publish(Saga *saga)
{
	ProgressEntry *entry;
	int			i;

	if (my_region == NULL || saga_progress_slots == 0)
		return false;
	LWLockAcquire(my_region->lock, LW_EXCLUSIVE);
	if (!has_entries(saga))
	{
		LWLockRelease(my_region->lock);
		return false;
	}
	entry = &my_region->entries[saga->progress_entry - 1];
	entry->saga_id = saga->id;
	entry->owner = saga->owner;
	entry->step = 0;
	entry->status = (uint8) saga->status;
	entry->attempts = steps_done(saga);
	for (i = 0; i < saga->nsteps; i++)
		set_step_entry(&my_region->entries[saga->steps[i].progress_entry - 1], &saga->steps[i]);
	LWLockRelease(my_region->lock);
	return true;
}

/* The saga leaves the worker: its entries go back to the free list. */
void
progress_release(Saga *saga)
{
	int			i;

	if (my_region == NULL || saga->progress_entry == 0)
		return;
	LWLockAcquire(my_region->lock, LW_EXCLUSIVE);
	give_back(&saga->progress_entry);
	for (i = 0; i < saga->nsteps; i++)
		give_back(&saga->steps[i].progress_entry);
	LWLockRelease(my_region->lock);
}

/* ---- saga._progress(), for the views ---- */

/* The region of this database's worker, or NULL. */
static ProgressRegion *
region_of_my_database(void)
{
	int			i;

	if (progress_base == NULL || saga_progress_slots == 0)
		return NULL;
	for (i = 0; i < saga_max_workers; i++)
		if (region_of(i)->dboid == MyDatabaseId)
			return region_of(i);
	return NULL;
}

/*
 * The status of saga id as its worker knows it, if it is in memory there:
 * a running saga's row may still say pending.  Checked under the lock, as
 * a region may change hands when its worker exits.
 */
bool
progress_saga_status(int64 id, SagaStatus *status)
{
	ProgressRegion *region = region_of_my_database();
	bool		found = false;
	int			i;

	if (region == NULL)
		return false;
	LWLockAcquire(region->lock, LW_SHARED);
	if (region->dboid == MyDatabaseId)
	{
		for (i = 0; i < saga_progress_slots && !found; i++)
		{
			if (region->entries[i].saga_id == id && region->entries[i].step == 0)
			{
				*status = (SagaStatus) region->entries[i].status;
				found = true;
			}
		}
	}
	LWLockRelease(region->lock);
	return found;
}

static Datum
timestamp_or_null(TimestampTz t, bool *isnull)
{
	*isnull = t == 0;
	return TimestampTzGetDatum(t);
}

static void
put_entry(ReturnSetInfo *rsinfo, const ProgressEntry *entry)
{
	Datum		values[9];
	bool		nulls[9] = {false};

	values[0] = Int64GetDatum(entry->saga_id);
	values[1] = Int32GetDatum(entry->step);
	values[2] = CStringGetTextDatum(entry->step == 0 ?
									saga_status_name((SagaStatus) entry->status) :
									step_status_name((StepStatus) entry->status));
	values[3] = Int32GetDatum(entry->step == 0 ? 0 : entry->attempts);
	values[4] = timestamp_or_null(entry->next_attempt_at, &nulls[4]);
	values[5] = timestamp_or_null(entry->started_at, &nulls[5]);
	values[6] = timestamp_or_null(entry->finished_at, &nulls[6]);
	values[7] = BoolGetDatum(entry->result_empty);
	values[8] = Int32GetDatum(entry->attempts);
	nulls[8] = entry->step != 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Whether the caller sees every saga, as saga._visible() says in SQL: a
 * superuser, a member of saga_admin or pg_monitor.  Others see their own.
 */
static bool
sees_all_sagas(void)
{
	Oid			user = GetUserId();
	Oid			admin = get_role_oid("saga_admin", true);

	return superuser() || (OidIsValid(admin) && is_member_of_role(user, admin)) ||
		is_member_of_role(user, ROLE_PG_MONITOR);
}

PG_FUNCTION_INFO_V1(saga_progress);

/*
 * saga._progress(): the entries this database's worker published, copied
 * under its lock (a consistent picture of each saga at the end of a turn),
 * of the sagas the caller may see.
 */
Datum
saga_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ProgressRegion *region;
	ProgressEntry *copy;
	int			n = 0;
	int			i;
	bool		all = sees_all_sagas();
	Oid			user = GetUserId();

	InitMaterializedSRF(fcinfo, 0);
	region = region_of_my_database();
	if (region == NULL)
		return (Datum) 0;
	copy = palloc(sizeof(ProgressEntry) * saga_progress_slots);
	LWLockAcquire(region->lock, LW_SHARED);
	for (i = 0; i < saga_progress_slots && region->dboid == MyDatabaseId; i++)
	{
		ProgressEntry *entry = &region->entries[i];

		if (entry->saga_id != 0 && (all || entry->owner == user))
			copy[n++] = *entry;
	}
	LWLockRelease(region->lock);
	for (i = 0; i < n; i++)
		put_entry(rsinfo, &copy[i]);
	return (Datum) 0;
}
