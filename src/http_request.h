/*-------------------------------------------------------------------------
 *
 * http_request.h
 *		Requests of steps on HTTP targets (http_request.c): the request value
 *		saga.http() makes, its checks, and what one call of it sends.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_HTTP_REQUEST_H
#define PG_SAGA_HTTP_REQUEST_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "model.h"

/* What the options of an HTTP target and its owner's user mapping give. */
typedef struct HttpTarget
{
	char	   *url;			/* base URL, without a trailing slash */
	char	   *ca_file;		/* NULL: the system's CA bundle */
	char	   *bearer_token;	/* NULL: none; a secret, never shown */
	List	   *headers;		/* "Name: value" strings of the mapping; secret */
} HttpTarget;

/* One request as it goes on the wire (built by http_request_build). */
typedef struct HttpCall
{
	const char *method;
	char	   *url;			/* the base URL and the step's path */
	char	   *path;			/* the path alone, for messages */
	char	   *body;			/* JSON text, or NULL */
	List	   *headers;		/* "Name: value" strings, the key and secrets included */
	bool		keeps_result;	/* its 2xx body is kept (not a compensation's) */
} HttpCall;

extern Jsonb *http_jsonb_or_null(const char *text);
extern bool http_is_request(const char *text);
extern char *http_request_make(const char *method, const char *path, const char *body,
							   const char *headers);
extern int	http_request_values_referenced(const char *text);
extern void http_request_check(const char *text, int nargs, const char *what,
							   const char *name);
extern void http_check_url(const char *url);
extern void http_check_headers_json(const char *json, const char *what, bool from_mapping);
extern List *http_mapping_headers(const char *json);
extern char *http_idempotency_key(const char *coordinator, Saga *saga, SagaStep *step, StepOp op);
extern char *http_request_shown_path(SagaStep *step, StepOp op);
extern bool http_request_build(const HttpTarget *target, const char *coordinator,
							   SagaStep *step, StepOp op, HttpCall *call,
							   char **error, int *sqlstate);

#endif							/* PG_SAGA_HTTP_REQUEST_H */
