/*-------------------------------------------------------------------------
 *
 * remote_backend.h
 *		A user backend's own, blocking but interruptible, connection to a
 *		target (remote_backend.c), for saga.setup_participant().
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_REMOTE_BACKEND_H
#define PG_SAGA_REMOTE_BACKEND_H

#include "postgres.h"

/* Blocking but interruptible, for user backends only (setup_participant). */
extern void remote_exec_in_backend(const char *target, Oid owner, const char *sql);

#endif							/* PG_SAGA_REMOTE_BACKEND_H */
