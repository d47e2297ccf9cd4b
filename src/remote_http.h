/*-------------------------------------------------------------------------
 *
 * remote_http.h
 *		The worker's HTTP requests (remote_http.c): libcurl's multi interface
 *		driven from the worker's wait loop, beside its libpq connections.
 *		remote.c is its only user: a request is a call of a pool like any.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SAGA_REMOTE_HTTP_H
#define PG_SAGA_REMOTE_HTTP_H

#include "postgres.h"
#include "storage/latch.h"
#include "http_request.h"
#include "remote.h"

typedef struct HttpTransfer HttpTransfer;

extern void remote_http_init(MemoryContext cxt);
extern HttpTransfer *remote_http_start(const char *target, const HttpTarget *http,
									   const HttpCall *call, const char *shown_path,
									   int timeout_ms, RemoteDoneCallback done, void *arg);
extern void remote_http_cancel(HttpTransfer *transfer);
extern int	remote_http_add_wait_events(WaitEventSet *set);
extern int	remote_http_count_sockets(void);
extern bool remote_http_events_changed(void);
extern void remote_http_handle_socket(void *user_data, uint32 events);
extern void remote_http_check_timer(TimestampTz now);
extern TimestampTz remote_http_next_timer(void);

#endif							/* PG_SAGA_REMOTE_HTTP_H */
