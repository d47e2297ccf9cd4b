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

typedef enum TargetKind
{
	TARGET_MISSING,				/* no such server */
	TARGET_DATABASE,			/* libpq options: a PostgreSQL participant */
	TARGET_HTTP					/* a url: an HTTP service */
} TargetKind;

struct HttpTarget;

extern TargetKind target_kind(const char *target);
extern bool target_http(const char *target, Oid owner, struct HttpTarget *http,
						char **error, int *sqlstate);
extern void target_check_usable(const char *target, Oid owner);
extern bool target_conninfo(const char *target, Oid owner, const char ***keywords,
							const char ***values, bool *need_password,
							char **error, int *sqlstate);

#endif							/* PG_SAGA_TARGET_H */
