/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		Shared memory and the wake-up protocol (shmem.c): the workers' slots,
 *		the backends waiting in saga.wait(), and how a commit wakes a worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_SHMEM_H
#define PG_SAGA_SHMEM_H

#include "postgres.h"
#include "access/xlogdefs.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

/* Ids of sagas a worker should look at, pushed by committing backends. */
#define SAGA_QUEUE_SIZE 1024

/*
 * A saga a commit asks the worker to look at: submitted (new to the worker,
 * which takes it up in id order) or changed (an abort requested, a retry:
 * the worker rereads it even if it has it in memory).
 */
typedef struct SagaWake
{
	int64		id;
	bool		submitted;
} SagaWake;

/* One slot per database worker the launcher runs (saga.max_workers). */
typedef struct SagaWorkerSlot
{
	Oid			dboid;			/* InvalidOid when the slot is free */
	pid_t		pid;			/* the worker's pid once it runs */
	Latch	   *latch;			/* its latch, to wake it */
	bool		no_extension;	/* the worker found no pg_saga and left */
	bool		exited;			/* the worker has left */
	/* sagas submitted, aborted or retried since the worker last looked */
	uint32		nqueued;
	bool		overflow;		/* more than fit: the worker rereads all */
	bool		rescan;			/* sagas of unknown ids became visible (COMMIT PREPARED) */
	XLogRecPtr	submit_lsn;		/* the latest end of those commits */
	SagaWake	queue[SAGA_QUEUE_SIZE];
} SagaWorkerSlot;

#define SAGA_MAX_START_REQUESTS 16

/*
 * A backend in saga.wait(): which saga it waits for, how to wake it, and
 * the final status the worker found (-1: none yet).  saga_id is read
 * without the mutex to find the waiters of a turn's sagas; the rest is
 * read and written under it, so that a status meant for one wait never
 * reaches the next (waiting_for is saga_id as the mutex protects it).
 */
typedef struct SagaWaiter
{
	pg_atomic_uint64 saga_id;	/* 0: not waiting */
	slock_t		mutex;
	Oid			dboid;
	int64		waiting_for;	/* 0: not waiting */
	Latch	   *latch;
	int			final_status;	/* a SagaStatus, or -1 */
} SagaWaiter;

typedef struct SagaShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	/* databases whose extension was just created: start their worker */
	int			nrequests;
	Oid			requests[SAGA_MAX_START_REQUESTS];
	/* databases being dropped: their worker stays stopped until then */
	Oid			held[SAGA_MAX_START_REQUESTS];
	TimestampTz held_until[SAGA_MAX_START_REQUESTS];
	SagaWaiter *waiters;		/* MaxBackends of them, by saga_my_proc_index() */
	pg_atomic_uint64 finals_published;	/* counts saga_wake_waiters() calls */
	int			nslots;
	SagaWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SagaShared;

extern void saga_install_hooks(void);
extern SagaShared *saga_shared;
extern void saga_request_worker(Oid dboid);
extern uint64 saga_finals_published(void);
extern void saga_wait_register(int64 saga_id);
extern int	saga_wait_final_status(void);
extern void saga_wait_unregister(void);
extern void saga_wake_waiters(const int64 *saga_ids, const int *statuses, int n);
extern bool saga_database_held(Oid dboid, TimestampTz now);
extern void saga_wake_worker_at_commit(int64 saga_id, bool submitted);
extern int	saga_take_queue(int slot, SagaWake *wakes, bool *overflow, bool *rescan,
							XLogRecPtr *submit_lsn);

#endif							/* PG_SAGA_SHMEM_H */
