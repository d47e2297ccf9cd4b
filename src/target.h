/*-------------------------------------------------------------------------
 *
 * target.h
 *		Targets (target.c): the foreign-data wrapper, its servers and user
 *		mappings, and the connection options they give.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_TARGET_H
#define PG_SAGA_TARGET_H

#include "postgres.h"

extern void target_check_usable(const char *target, Oid owner);
extern bool target_conninfo(const char *target, Oid owner, const char ***keywords,
							const char ***values, bool *need_password,
							char **error, int *sqlstate);

#endif							/* PG_SAGA_TARGET_H */
