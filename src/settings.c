/*-------------------------------------------------------------------------
 *
 * settings.c
 *		The saga.* settings, defined in one place.
 *
 * Retry and timeout settings are read by the worker when it runs a step,
 * so a reload (pg_reload_conf) applies them to the next attempt; a step's
 * own max_attempts and timeout, given to add_step, override them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "pg_saga.h"
#include "settings.h"

int			saga_retry_interval_ms = 1000;
int			saga_max_retry_interval_ms = 300000;
int			saga_max_attempts = 5;
int			saga_step_timeout_ms = 60000;
int			saga_connect_timeout_ms = 10000;
int			saga_max_workers = 8;
int			saga_max_connections_per_target = 8;
int			saga_batch_size = 32;
int			saga_batch_wait_ms = 10;
int			saga_max_active_sagas = 1000;
int			saga_progress_slots = 8192;
int			saga_recovery_interval_ms = 60000;
int			saga_max_result_size = 64 * 1024;
int			saga_forget_delay_ms = 10 * 60 * 1000;
char	   *saga_step_gid = NULL;
char	   *saga_step_number = NULL;
char	   *saga_step_results = NULL;

void
saga_define_settings(void)
{
	DefineCustomIntVariable("saga.retry_interval",
							"First wait before retrying a step that failed for a transient reason.",
							"Each further retry waits twice as long, up to saga.max_retry_interval.",
							&saga_retry_interval_ms, 1000, 1, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.max_retry_interval",
							"Longest wait between two retries of a step.",
							NULL,
							&saga_max_retry_interval_ms, 300000, 1, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.max_attempts",
							"Attempts of a forward action before a transient failure counts as a business failure.",
							"Compensations, confirms and commits of prepared transactions retry without limit.",
							&saga_max_attempts, 5, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.step_timeout",
							"Longest time one attempt of a step may run on its target.",
							"Enforced on the target as statement_timeout; the worker gives up on the connection shortly after.",
							&saga_step_timeout_ms, 60000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.connect_timeout",
							"Longest time the worker waits for a connection to a target.",
							NULL,
							&saga_connect_timeout_ms, 10000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.max_workers",
							"Databases served by a pg_saga worker at once.",
							"Each worker is a background worker: max_worker_processes must leave room for them and the launcher.",
							&saga_max_workers, 8, 1, 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.max_connections_per_target",
							"Connections a worker keeps open to one target for one role.",
							"Steps beyond it wait for a free connection, in submission order.",
							&saga_max_connections_per_target, 8, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.max_active_sagas",
							"Sagas a worker drives at once.",
							"Further submitted sagas wait, in submission order, until earlier ones finish; this bounds the worker's memory.",
							&saga_max_active_sagas, 1000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.progress_slots",
							"Sagas and steps whose progress a worker shows from shared memory instead of writing it.",
							"A running saga takes one slot and one per step. Its ordinary progress (started, a step "
							"started or succeeded) is kept there, and written only with its final status or a decision; "
							"a saga that finds no free slots has its progress written as it happens. 0 writes all "
							"progress.",
							&saga_progress_slots, 8192, 0, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.batch_size",
							"Most step calls the worker sends to one target in one remote transaction.",
							"Steps ready at once for the same target and role share a round trip and a commit, "
							"each in a subtransaction of its own. 1 sends every step alone.",
							&saga_batch_size, 32, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.batch_wait",
							"While connections to a target are free, how long the steps of one batch may take together.",
							"Judged by the time the target's steps took so far: quick steps share a batch, "
							"slow ones go one per connection; quick steps ready while a batch of their target "
							"is in flight wait for it, at most this long. 0 sends one step per free connection. "
							"A step of a batch running longer (at least 20 ms, more while the target's steps "
							"are slow) is sent again alone.",
							&saga_batch_wait_ms, 10, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.max_result_size",
							"Largest result a step's action or confirm may return.",
							"The rows of its last statement, as jsonb text. A larger result is a "
							"business failure of the step (SQLSTATE 54000); 0 allows none but [].",
							&saga_max_result_size, 64 * 1024, 0, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.recovery_interval",
							"How often the worker looks for in-doubt prepared transactions of xa sagas.",
							"It also looks when it starts.",
							&saga_recovery_interval_ms, 60000, 100, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("saga.forget_delay",
							"How long after a purged saga finished its barrier records stay on the participants at least.",
							"On top of its longest step timeout: a call the worker gave up on may still arrive "
							"meanwhile, and must find the records. Read when the saga is purged.",
							&saga_forget_delay_ms, 10 * 60 * 1000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	/*
	 * Set inside a step's remote transaction so its SQL can read them.  They
	 * are defined here too because a participant may itself load pg_saga,
	 * and the reserved prefix would otherwise reject them.
	 */
	DefineCustomStringVariable("saga.gid",
							   "Global transaction id of the step being run (set by pg_saga inside a step).",
							   NULL,
							   &saga_step_gid, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("saga.step",
							   "Number of the step being run (set by pg_saga inside a step).",
							   NULL,
							   &saga_step_number, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("saga.results",
							   "Results of the steps the step being run comes after, as a jsonb object "
							   "(set by pg_saga inside a step).",
							   NULL,
							   &saga_step_results, "{}",
							   PGC_USERSET, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("saga");
}
