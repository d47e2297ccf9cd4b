/*-------------------------------------------------------------------------
 *
 * settings.h
 *		The saga.* settings (settings.c): their variables and their definition.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_SETTINGS_H
#define PG_SAGA_SETTINGS_H

#include "postgres.h"

extern int	saga_retry_interval_ms;
extern int	saga_max_retry_interval_ms;
extern int	saga_max_attempts;
extern int	saga_step_timeout_ms;
extern int	saga_connect_timeout_ms;
extern int	saga_max_workers;
extern int	saga_max_connections_per_target;
extern int	saga_max_active_sagas;
extern int	saga_progress_slots;
extern int	saga_batch_size;
extern int	saga_batch_wait_ms;
extern int	saga_max_result_size;
extern int	saga_forget_delay_ms;
extern int	saga_recovery_interval_ms;
extern char *saga_step_gid;
extern char *saga_step_number;
extern char *saga_step_results;
extern void saga_define_settings(void);

#endif							/* PG_SAGA_SETTINGS_H */
