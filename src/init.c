/*-------------------------------------------------------------------------
 *
 * init.c
 *		Loading the library: pg_saga must be in shared_preload_libraries,
 *		where it defines its settings, installs its hooks and registers its
 *		launcher at postmaster start.
 *
 * Nothing else lives here, so that no file below has to import the
 * module's entry point: the shared memory and the wake-up protocol are
 * shmem.c's, the launcher launcher.c's, the settings settings.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "pg_saga.h"
#include "settings.h"
#include "shmem.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_saga must be loaded via shared_preload_libraries"),
				 errhint("Add pg_saga to shared_preload_libraries in postgresql.conf and restart the server.")));

	saga_define_settings();
	saga_install_hooks();
	saga_register_launcher();
}
