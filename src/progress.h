/*-------------------------------------------------------------------------
 *
 * progress.h
 *		What running sagas have done that the tables do not say yet
 *		(progress.c): the worker's view of its sagas in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_PROGRESS_H
#define PG_SAGA_PROGRESS_H

#include "postgres.h"
#include "model.h"

extern Size progress_shmem_size(void);
extern void progress_shmem_request(void);
extern void progress_shmem_init(void);

extern void progress_attach(int slot, MemoryContext cxt);
extern bool progress_publish(Saga *saga);
extern void progress_release(Saga *saga);
extern bool progress_saga_status(int64 id, SagaStatus *status);

#endif							/* PG_SAGA_PROGRESS_H */
