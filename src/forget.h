/*-------------------------------------------------------------------------
 *
 * forget.h
 *		Deleting the barrier records of purged sagas on their participants
 *		(forget.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_FORGET_H
#define PG_SAGA_FORGET_H

#include "postgres.h"
#include "utils/timestamp.h"

extern void forget_init(MemoryContext cxt);
extern void forget_turn(TimestampTz now);

#endif							/* PG_SAGA_FORGET_H */
