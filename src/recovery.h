/*-------------------------------------------------------------------------
 *
 * recovery.h
 *		In-doubt prepared transactions of xa sagas (recovery.c): found on the
 *		targets and committed or rolled back as their sagas decided.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_RECOVERY_H
#define PG_SAGA_RECOVERY_H

#include "postgres.h"
#include "lib/ilist.h"
#include "model.h"

extern void recovery_init(MemoryContext cxt);
extern void recovery_set_coordinator(const char *coordinator_id);
extern void recovery_turn(dlist_head *live_sagas, TimestampTz now);

#endif							/* PG_SAGA_RECOVERY_H */
