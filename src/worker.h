/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The background processes: the launcher (launcher.c) and a database's
 *		worker (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_WORKER_H
#define PG_SAGA_WORKER_H

#include "postgres.h"

extern void saga_register_launcher(void);
extern PGDLLEXPORT void saga_launcher_main(Datum arg);
extern PGDLLEXPORT void saga_worker_main(Datum arg);

#endif							/* PG_SAGA_WORKER_H */
