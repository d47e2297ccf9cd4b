/*-------------------------------------------------------------------------
 *
 * remote_http.c
 *		The worker's HTTP requests: libcurl's multi interface driven from
 *		the worker's one wait loop, beside its libpq connections.
 *
 * Nothing here blocks.  curl tells which sockets it wants watched, and for
 * what (CURLMOPT_SOCKETFUNCTION), and when it wants to be called back
 * without any (CURLMOPT_TIMERFUNCTION); the worker adds those sockets to
 * its wait set and the timer to its next wake-up, and hands each event to
 * curl_multi_socket_action.  DNS runs in curl's threaded resolver (Debian's
 * libcurl has it; the worker says so in its log if it does not), TLS and
 * transfers on the watched sockets.  curl keeps up to
 * HTTP_IDLE_CONNECTIONS connections open in the multi handle's cache
 * between requests.
 *
 * A request is one call: one step operation, one attempt, sent once (no
 * batching, redirects never followed, http and https only, TLS verified).
 * How it ended becomes a RemoteOutcome, as a database call's does:
 *
 *		2xx							OK: the body is the result
 *		408, 429, 5xx, timeout,		UNKNOWN (transient; it may have acted)
 *		connection lost or refused
 *		any other status, a TLS		ERROR, not retried
 *		verification failure
 *		a 2xx over max_result_size	ERROR, not retried, applied: compensated
 *		(an action's or confirm's;	(a compensation's answer is not kept:
 *		kept as its result)			its 2xx is OK, its result null)
 *
 * Messages name the target and the request's method and path as the step
 * wrote them, never the URL, the headers or a value: the mapping's bearer
 * token and headers never leave the request (no CURLOPT_VERBOSE either),
 * and are redacted from the start of an error's body if a service echoes
 * them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "http_request.h"
#include "remote_http.h"
#include "settings.h"

/*
 * Idle connections curl keeps open for the next requests (its default
 * follows the number of requests in flight, so a burst's connections
 * would be closed as it ends).  They hold file descriptors PostgreSQL
 * does not see: reserved once (ReserveExternalFD), as a request in flight
 * holds one of its own (remote.c).
 */
#define HTTP_IDLE_CONNECTIONS	16

/* How much of an error's body last_error shows. */
#define ERROR_BODY_CHARS	200

struct HttpTransfer
{
	CURL	   *easy;
	MemoryContext cxt;			/* lives as long as the request */
	struct curl_slist *headers;
	char	   *request_body;
	char	   *what;			/* "POST /charges on target \"pay\"", for messages */
	List	   *secrets;		/* the mapping's token and header values, to redact */
	StringInfoData response;
	long		status;			/* once the status line arrived */
	bool		too_big;		/* a 2xx answer over saga.max_result_size */
	bool		keeps_result;	/* a 2xx body is the step's result, bounded */
	bool		clipped;		/* the body was longer than was kept */
	TimestampTz not_before;		/* from Retry-After */
	int			timeout_ms;
	RemoteDoneCallback done;
	void	   *arg;
	char		errbuf[CURL_ERROR_SIZE];
};

/* A socket curl wants watched; the first field tags it (see remote.c). */
typedef struct HttpSocket
{
	SocketOwner owner;			/* SOCKET_OWNER_HTTP */
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN, _OUT, _INOUT */
	bool		removed;		/* curl is done with it: freed at the next rebuild */
	struct HttpSocket *next;
} HttpSocket;

static MemoryContext http_cxt = NULL;
static CURLM *multi = NULL;
static HttpSocket *sockets = NULL;
static bool http_events_changed = false;
static TimestampTz timer_at = DT_NOEND;

static void read_finished(void);

/* curl: watch s for what, or no more (CURL_POLL_REMOVE). */
static int
socket_callback(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	HttpSocket *hs = (HttpSocket *) socketp;

	if (what == CURL_POLL_REMOVE)
	{
		/* a wait just returned may still name it: freed at the next rebuild */
		if (hs != NULL)
		{
			hs->removed = true;
			curl_multi_assign(multi, s, NULL);
		}
		http_events_changed = true;
		return 0;
	}
	if (hs == NULL)
	{
		hs = MemoryContextAllocZero(http_cxt, sizeof(HttpSocket));
		hs->owner = SOCKET_OWNER_HTTP;
		hs->fd = s;
		hs->next = sockets;
		sockets = hs;
		curl_multi_assign(multi, s, hs);
		http_events_changed = true;
	}
	if (hs->what != what)
	{
		hs->what = what;
		http_events_changed = true;
	}
	return 0;
}

/* curl: call back in timeout_ms without a socket event (-1: no timer). */
static int
timer_callback(CURLM *m, long timeout_ms, void *userp)
{
	timer_at = timeout_ms < 0 ? DT_NOEND :
		GetCurrentTimestamp() + (int64) timeout_ms * 1000;
	return 0;
}

void
remote_http_init(MemoryContext cxt)
{
	curl_version_info_data *info;

	http_cxt = AllocSetContextCreate(cxt, "pg_saga http", ALLOCSET_DEFAULT_SIZES);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "pg_saga: curl_global_init failed");
	multi = curl_multi_init();
	if (multi == NULL)
		elog(ERROR, "pg_saga: curl_multi_init failed");
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_callback);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_callback);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) HTTP_IDLE_CONNECTIONS);
	for (int i = 0; i < HTTP_IDLE_CONNECTIONS; i++)
		ReserveExternalFD();
	info = curl_version_info(CURLVERSION_NOW);
	if (!(info->features & CURL_VERSION_ASYNCHDNS))
		ereport(WARNING,
				(errmsg("pg_saga: libcurl %s resolves host names synchronously", info->version),
				 errdetail("The worker waits for DNS when an HTTP target's host is not an address."),
				 errhint("Use a libcurl built with the threaded resolver or c-ares, as Debian's libcurl4-openssl is.")));
}

/* curl: a piece of the answer; bounded, allocated in the request's context. */
static size_t
write_callback(char *data, size_t size, size_t nmemb, void *userp)
{
	HttpTransfer *t = (HttpTransfer *) userp;
	size_t		len = size * nmemb;
	size_t		keep = len;

	if (t->status == 0)
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
	if ((size_t) t->response.len + len > (size_t) saga_max_result_size)
	{
		/*
		 * A result too big ends the request; an error's body, or the body
		 * of a compensation (whose answer is not kept), is kept in part.
		 */
		if (t->status >= 200 && t->status < 300 && t->keeps_result)
		{
			t->too_big = true;
			return 0;
		}
		t->clipped = true;
		keep = t->response.len < saga_max_result_size ?
			saga_max_result_size - t->response.len : 0;
	}
	if (keep > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(t->cxt);

		appendBinaryStringInfo(&t->response, data, keep);
		MemoryContextSwitchTo(old);
	}
	return len;
}

/* Retry-After: seconds, or an HTTP date. */
static void
note_retry_after(HttpTransfer *t, const char *value, size_t len)
{
	char		buf[128];
	char	   *end;
	long		seconds;

	if (len >= sizeof(buf))
		return;
	memcpy(buf, value, len);
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	seconds = strtol(buf, &end, 10);
	if (end != buf && *end == '\0' && seconds >= 0)
		t->not_before = GetCurrentTimestamp() + Min(seconds, 86400L * 365) * USECS_PER_SEC;
	else
	{
		time_t		at = curl_getdate(buf, NULL);

		if (at > 0)
			t->not_before = time_t_to_timestamptz((pg_time_t) at);
	}
}

/* curl: one header line of the answer. */
static size_t
header_callback(char *line, size_t size, size_t nitems, void *userp)
{
	HttpTransfer *t = (HttpTransfer *) userp;
	size_t		len = size * nitems;
	static const char name[] = "retry-after:";

	if (len > sizeof(name) - 1 && pg_strncasecmp(line, name, sizeof(name) - 1) == 0)
	{
		const char *v = line + sizeof(name) - 1;
		size_t		vlen = len - (sizeof(name) - 1);

		while (vlen > 0 && *v == ' ')
			v++, vlen--;
		note_retry_after(t, v, vlen);
	}
	return len;
}

/* Frees a transfer, off the multi handle; curl frees what it holds. */
static void
free_transfer(HttpTransfer *t)
{
	curl_multi_remove_handle(multi, t->easy);
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	MemoryContextDelete(t->cxt);
}

/* Sets the options of one request. */
static bool
set_options(HttpTransfer *t, const HttpTarget *http, const HttpCall *call)
{
	CURL	   *e = t->easy;
	ListCell   *lc;
	bool		ok = true;

	foreach(lc, call->headers)
	{
		struct curl_slist *more = curl_slist_append(t->headers, lfirst(lc));

		if (more == NULL)
			return false;
		t->headers = more;
	}
	ok &= curl_easy_setopt(e, CURLOPT_URL, call->url) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_PRIVATE, t) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075700
	/*
	 * Without it, removing a handle whose name is still being resolved
	 * (a timeout, a cancel) waits for the resolver thread: the worker
	 * would block on a slow DNS server.  With it, curl leaves the thread
	 * behind.
	 */
	ok &= curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L) == CURLE_OK;
#endif
	ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, call->method) == CURLE_OK;
	if (strcmp(call->method, "GET") == 0)
		ok &= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	else
	{
		/* a body, or an empty one: Content-Length: 0 */
		t->request_body = MemoryContextStrdup(t->cxt, call->body ? call->body : "");
		ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request_body) == CURLE_OK;
		ok &= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) strlen(t->request_body)) == CURLE_OK;
	}
	ok &= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
	ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
#else
	ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK;
#endif
	ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
	if (http->ca_file)
	{
		/* that CA alone: no directory of the system's CAs beside it */
		ok &= curl_easy_setopt(e, CURLOPT_CAINFO, http->ca_file) == CURLE_OK;
		ok &= curl_easy_setopt(e, CURLOPT_CAPATH, NULL) == CURLE_OK;
	}
	/* never a proxy, whatever the server's environment says (http_proxy and the like) */
	ok &= curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) t->timeout_ms) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
						   (long) Min(t->timeout_ms, saga_connect_timeout_ms)) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_callback) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, t) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_callback) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, t) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) == CURLE_OK;
	ok &= curl_easy_setopt(e, CURLOPT_USERAGENT, "pg_saga") == CURLE_OK;
	return ok;
}

/*
 * The secrets of a request, in cxt: the mapping's bearer token and the
 * values of its headers, which a service may echo in an error's body.
 * Very short ones are left out: redacting them would garble the message.
 */
static List *
secrets_of(MemoryContext cxt, const HttpTarget *http)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	List	   *secrets = NIL;
	ListCell   *lc;

	if (http->bearer_token && strlen(http->bearer_token) >= 4)
		secrets = lappend(secrets, pstrdup(http->bearer_token));
	foreach(lc, http->headers)
	{
		const char *value = strchr(lfirst(lc), ':');

		if (value == NULL)
			continue;
		value++;
		while (*value == ' ')
			value++;
		if (strlen(value) >= 4)
			secrets = lappend(secrets, pstrdup(value));
	}
	MemoryContextSwitchTo(old);
	return secrets;
}

/*
 * Starts a request; done(arg, outcome) is called when it ends, unless it
 * is cancelled first.  NULL if curl could not take it.
 */
HttpTransfer *
remote_http_start(const char *target, const HttpTarget *http, const HttpCall *call,
				  const char *shown_path, int timeout_ms, RemoteDoneCallback done, void *arg)
{
	MemoryContext cxt = AllocSetContextCreate(http_cxt, "pg_saga http request",
											  ALLOCSET_SMALL_SIZES);
	HttpTransfer *t = MemoryContextAllocZero(cxt, sizeof(HttpTransfer));

	t->cxt = cxt;
	t->timeout_ms = timeout_ms;
	t->keeps_result = call->keeps_result;
	t->done = done;
	t->arg = arg;
	t->what = MemoryContextStrdup(cxt, psprintf("%s %s on target \"%s\"", call->method,
												shown_path, target));
	t->secrets = secrets_of(cxt, http);
	t->response.data = MemoryContextAlloc(cxt, 1024);
	t->response.maxlen = 1024;
	resetStringInfo(&t->response);
	t->easy = curl_easy_init();
	if (t->easy == NULL || !set_options(t, http, call) ||
		curl_multi_add_handle(multi, t->easy) != CURLM_OK)
	{
		if (t->easy)
			curl_easy_cleanup(t->easy);
		curl_slist_free_all(t->headers);
		MemoryContextDelete(cxt);
		return NULL;
	}
	return t;
}

/* Gives up on a request: no callback; its connection is closed by curl. */
void
remote_http_cancel(HttpTransfer *transfer)
{
	free_transfer(transfer);
}

/*
 * Text fit for the database: bytes not valid in its encoding (and NULs)
 * become "?", so an answer in another encoding cannot fail the worker's
 * writes.
 */
static char *
database_text(const char *data, int len)
{
	StringInfoData buf;
	int			i = 0;

	initStringInfo(&buf);
	while (i < len)
	{
		int			ok = pg_encoding_verifymbstr(GetDatabaseEncoding(), data + i, len - i);

		appendBinaryStringInfo(&buf, data + i, ok);
		i += ok;
		if (i < len)
		{
			appendStringInfoChar(&buf, '?');
			i++;
		}
	}
	return buf.data;
}

/* A 2xx body as the step's result: JSON as is, empty as null, else a JSON string. */
static char *
body_as_result(HttpTransfer *t)
{
	char	   *text = database_text(t->response.data, t->response.len);
	Jsonb	   *jb;
	StringInfoData buf;

	if (t->response.len == 0)
		return pstrdup("null");
	jb = http_jsonb_or_null(text);
	if (jb != NULL)
		return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	initStringInfo(&buf);
	escape_json(&buf, text);
	return buf.data;
}

/* text with every secret of the request replaced by "[redacted]" */
static char *
redact(HttpTransfer *t, char *text)
{
	ListCell   *lc;

	foreach(lc, t->secrets)
	{
		const char *secret = lfirst(lc);
		size_t		len = strlen(secret);
		StringInfoData buf;
		const char *p = text;
		const char *hit;

		if (strstr(text, secret) == NULL)
			continue;
		initStringInfo(&buf);
		while ((hit = strstr(p, secret)) != NULL)
		{
			appendBinaryStringInfo(&buf, p, hit - p);
			appendStringInfoString(&buf, "[redacted]");
			p = hit + len;
		}
		appendStringInfoString(&buf, p);
		text = buf.data;
	}
	return text;
}

/*
 * "HTTP 404 from POST /x on target "t": <start of the body>", the
 * mapping's secrets redacted from the body (a service may echo them).
 */
static char *
status_error(HttpTransfer *t)
{
	char	   *body = redact(t, database_text(t->response.data, t->response.len));
	int			clip = pg_mbcliplen(body, strlen(body), ERROR_BODY_CHARS);

	return psprintf("HTTP %ld from %s%s%.*s%s", t->status, t->what,
					clip > 0 ? ": " : "", clip, body,
					clip < (int) strlen(body) ? "..." : "");
}

static void
set_error(RemoteOutcome *o, RemoteOutcomeKind kind, int sqlstate, char *text)
{
	o->kind = kind;
	o->error.sqlstate = sqlstate;
	o->error.message = o->error.text = text;
}

/* A curl failure that is TLS's: the peer's certificate or our CA file. */
static bool
tls_failure(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_CRL_BADFILE:
			return true;
		default:
			return false;
	}
}

/* What a finished request means (see the table at the top). */
static void
request_outcome(HttpTransfer *t, CURLcode rc, RemoteOutcome *o)
{
	memset(o, 0, sizeof(*o));
	o->not_before = t->not_before;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
	if (rc == CURLE_WRITE_ERROR && t->too_big)
	{
		set_error(o, OUTCOME_ERROR, ERRCODE_PROGRAM_LIMIT_EXCEEDED,
				  psprintf("the answer of %s (HTTP %ld) is larger than saga.max_result_size (%d bytes)",
						   t->what, t->status, saga_max_result_size));
		o->retry = RETRY_FINAL;
		o->applied = true;
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT)
	{
		set_error(o, OUTCOME_UNKNOWN, ERRCODE_SYSTEM_ERROR,
				  psprintf("no answer from %s within the step timeout (%d ms)", t->what, t->timeout_ms));
		return;
	}
	if (tls_failure(rc))
	{
		set_error(o, OUTCOME_ERROR, ERRCODE_CONNECTION_FAILURE,
				  psprintf("TLS verification failed for %s: %s", t->what,
						   t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc)));
		o->retry = RETRY_FINAL;
		return;
	}
	if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT)
	{
		set_error(o, OUTCOME_ERROR, ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
				  psprintf("%s cannot be sent: %s", t->what, curl_easy_strerror(rc)));
		o->retry = RETRY_FINAL;
		return;
	}
	if (rc != CURLE_OK)
	{
		/* refused, reset, dropped: it may have been acted on; try again */
		set_error(o, OUTCOME_UNKNOWN, ERRCODE_SYSTEM_ERROR,
				  psprintf("%s failed: %s", t->what,
						   t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc)));
		return;
	}
	if (t->status >= 200 && t->status < 300)
	{
		o->kind = OUTCOME_OK;
		o->reply = REPLY_DONE;
		/* a compensation's answer over max_result_size: it took effect; nothing kept */
		o->result = t->clipped ? pstrdup("null") : body_as_result(t);
		return;
	}
	if (t->status == 408 || t->status == 429)
		set_error(o, OUTCOME_UNKNOWN, ERRCODE_EXTERNAL_ROUTINE_EXCEPTION, status_error(t));
	else if (t->status >= 500)
		set_error(o, OUTCOME_UNKNOWN, ERRCODE_SYSTEM_ERROR, status_error(t));
	else
	{
		/* 1xx at the end, 3xx (never followed), other 4xx: the service said no */
		set_error(o, OUTCOME_ERROR, ERRCODE_EXTERNAL_ROUTINE_EXCEPTION, status_error(t));
		o->retry = RETRY_FINAL;
	}
}

/* Hands every request curl finished to its callback, then frees it. */
static void
read_finished(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		HttpTransfer *t = NULL;
		RemoteOutcome outcome;
		RemoteDoneCallback done;
		void	   *arg;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		request_outcome(t, msg->data.result, &outcome);
		done = t->done;
		arg = t->arg;
		free_transfer(t);
		if (done)
			done(arg, &outcome);
	}
}

/* Frees the sockets curl is done with: no wait set names them any more. */
static void
free_removed_sockets(void)
{
	HttpSocket **p = &sockets;

	while (*p)
	{
		if ((*p)->removed)
		{
			HttpSocket *gone = *p;

			*p = gone->next;
			pfree(gone);
		}
		else
			p = &(*p)->next;
	}
}

/* Adds the sockets curl wants watched to set, each with its HttpSocket. */
int
remote_http_add_wait_events(WaitEventSet *set)
{
	HttpSocket *hs;
	int			n = 0;

	free_removed_sockets();
	for (hs = sockets; hs; hs = hs->next)
	{
		uint32		events = 0;

		if (hs->what & CURL_POLL_IN)
			events |= WL_SOCKET_READABLE;
		if (hs->what & CURL_POLL_OUT)
			events |= WL_SOCKET_WRITEABLE;
		if (events == 0)
			continue;
		AddWaitEventToSet(set, events, hs->fd, NULL, hs);
		n++;
	}
	return n;
}

int
remote_http_count_sockets(void)
{
	HttpSocket *hs;
	int			n = 0;

	for (hs = sockets; hs; hs = hs->next)
		n += !hs->removed;
	return n;
}

bool
remote_http_events_changed(void)
{
	bool		changed = http_events_changed;

	http_events_changed = false;
	return changed;
}

/* A socket curl watches is ready. */
void
remote_http_handle_socket(void *user_data, uint32 events)
{
	HttpSocket *hs = (HttpSocket *) user_data;
	int			mask = 0;
	int			running;

	if (hs->removed)
		return;
	if (events & WL_SOCKET_READABLE)
		mask |= CURL_CSELECT_IN;
	if (events & WL_SOCKET_WRITEABLE)
		mask |= CURL_CSELECT_OUT;
	curl_multi_socket_action(multi, hs->fd, mask, &running);
	read_finished();
}

/* curl's timer is due: timeouts, the resolver's progress, retries of its own. */
void
remote_http_check_timer(TimestampTz now)
{
	int			running;

	if (multi == NULL || timer_at > now)
		return;
	timer_at = DT_NOEND;
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	read_finished();
}

TimestampTz
remote_http_next_timer(void)
{
	return timer_at;
}
