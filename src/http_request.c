/*-------------------------------------------------------------------------
 *
 * http_request.c
 *		Requests of steps on HTTP targets: the value saga.http() makes, its
 *		checks, and the request one call of it sends.
 *
 * A request is kept where a SQL step keeps its SQL (saga.step's action,
 * compensation and confirm, saga.gtx_step's columns), as the text of a
 * JSON object {"method", "path", "body", "headers"}: text that no SQL
 * statement can be (it starts with "{"), so the kind of its target says
 * which of the two a step holds, and a request survives dump, restore and
 * upgrade like any text.
 *
 * Data enters a request only as data: a body string that is exactly "$n"
 * becomes value n, one that is exactly "$.name.path" the JSON value it
 * selects in the results the step sees; a path segment that is exactly
 * "$n" or "{$.name.path}" likewise, percent-encoded as one segment.  A
 * step never names a host: its path goes under the target's base URL, and
 * the checks here keep it there (no "//", no "." or ".." segment, no query,
 * no character a URL would read as anything but a path).
 *
 * Secrets (the mapping's bearer_token and headers) are put in the headers
 * of a call here and nowhere else: no message built here holds them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "pg_saga.h"
#include "barrier.h"
#include "http_request.h"
#include "results.h"

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};

/* Headers pg_saga sets itself, or that would let a step speak for another. */
static const char *const forbidden_headers[] = {
	"authorization", "host", "content-length", "idempotency-key", "transfer-encoding",
	"connection", "content-type", "accept", "expect", NULL
};

/* Is text a request (saga.http()) rather than SQL?  SQL never starts with "{". */
bool
http_is_request(const char *text)
{
	if (text == NULL)
		return false;
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	return *text == '{';
}

static Jsonb *
parse_jsonb(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/*
 * text parsed as jsonb, or NULL if it is not JSON.  jsonb_in takes no lock,
 * buffer or other resource, so its error can be caught and dropped without
 * a subtransaction (PostgreSQL 16's soft errors do the same for it).
 */
Jsonb *
http_jsonb_or_null(const char *text)
{
	Jsonb	   *volatile jb = NULL;
	MemoryContext old = CurrentMemoryContext;

	PG_TRY();
	{
		jb = parse_jsonb(text);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		FlushErrorState();
		jb = NULL;
	}
	PG_END_TRY();
	return jb;
}

static char *
jsonb_text(Jsonb *jb)
{
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

/* The string value of key in an object, or NULL (also when not a string). */
static char *
object_string(Jsonb *obj, const char *key, bool *present)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&obj->root, key, strlen(key), NULL);

	*present = v != NULL && v->type != jbvNull;
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* The value of key in an object as a Jsonb of its own, or NULL. */
static Jsonb *
object_jsonb(Jsonb *obj, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&obj->root, key, strlen(key), NULL);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	return JsonbValueToJsonb(v);
}

/* ---- the checks ---- */

static void
refuse(const char *what, const char *name, const char *problem, const char *hint)
{
	if (name)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s of step \"%s\" is not a valid request: %s", what, name, problem),
				 hint ? errhint("%s", hint) : 0));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid request: %s", problem),
			 hint ? errhint("%s", hint) : 0));
}

/* "$n": n, or 0 if s is not that. */
static int
value_ref(const char *s, int len)
{
	int			n = 0;
	int			i;

	if (len < 2 || len > 6 || s[0] != '$')
		return 0;
	for (i = 1; i < len; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			return 0;
		n = n * 10 + (s[i] - '0');
	}
	return n;
}

/*
 * A results path, "$.name.more[0].x", as its segments: a key (a string)
 * or an index (an int, as "[n]").  NULL if s is not one.
 */
static List *
results_path(const char *s, int len)
{
	List	   *segs = NIL;
	int			i = 1;

	if (len < 3 || s[0] != '$' || s[1] != '.')
		return NIL;
	while (i < len)
	{
		if (s[i] == '.')
		{
			int			start = ++i;

			while (i < len && s[i] != '.' && s[i] != '[' && s[i] != ']')
				i++;
			if (i == start)
				return NIL;
			segs = lappend(segs, pnstrdup(s + start, i - start));
		}
		else if (s[i] == '[')
		{
			int			start = ++i;
			char	   *index;

			while (i < len && isdigit((unsigned char) s[i]))
				i++;
			if (i == start || i >= len || s[i] != ']' || i - start > 6)
				return NIL;
			index = psprintf("[%.*s", i - start, s + start);
			segs = lappend(segs, index);
			i++;
		}
		else
			return NIL;
	}
	return segs;
}

static bool
is_results_path(const char *s, int len)
{
	return len >= 2 && s[0] == '$' && s[1] == '.';
}

/* A path segment that takes data: "$n" or "{$.x}"; the inner text in *inner. */
static bool
path_placeholder(const char *seg, int len, const char **inner, int *inner_len)
{
	if (value_ref(seg, len) > 0)
	{
		*inner = seg;
		*inner_len = len;
		return true;
	}
	if (len > 3 && seg[0] == '{' && seg[len - 1] == '}')
	{
		*inner = seg + 1;
		*inner_len = len - 2;
		return true;
	}
	return false;
}

/* Is c an ASCII letter or digit (whatever the locale says)? */
static bool
ascii_alnum(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * Is c allowed in a step's path (RFC 3986 pchar, "/" and the braces of
 * "{$.x}")?  Not ";": some servers read what follows it in a segment as
 * parameters, so "/a/..;/admin" would climb out of the base.
 */
static bool
path_char_ok(char c)
{
	return ascii_alnum((unsigned char) c) || (c != '\0' && strchr("-._~!$&'()*+,=:@%/{}[]", c) != NULL);
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Checks the percent-encodings of fixed path text: "%XX" with two hex
 * digits, of a character a server that decodes the path cannot read as
 * structure ("/", "\\", ".", ";", "%" itself) or cut it at (NUL, controls).
 */
static void
check_percent(const char *seg, int len, const char *what, const char *name)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		int			hi,
					lo,
					c;

		if (seg[i] != '%')
			continue;
		hi = i + 1 < len ? hex_value(seg[i + 1]) : -1;
		lo = i + 2 < len ? hex_value(seg[i + 2]) : -1;
		if (hi < 0 || lo < 0)
			refuse(what, name, "\"%\" in the path must start a percent-encoding (%XX)", NULL);
		c = hi * 16 + lo;
		if (c < 0x20 || c == 0x7f || strchr("/\\.;%", c) != NULL)
			refuse(what, name, psprintf("the path may not hold the percent-encoding \"%.3s\"", seg + i),
				   "Encoded \"/\", \"\\\", \".\", \";\", \"%\" and control characters would let a server read the path otherwise; give data as values ($n) in a segment of their own.");
		i += 2;
	}
}

/* Is a path segment "." or "..", also percent-encoded? */
static bool
dot_segment(const char *seg, int len)
{
	int			dots = 0;
	int			i = 0;

	while (i < len)
	{
		if (seg[i] == '.')
			i++;
		else if (i + 2 < len && seg[i] == '%' && seg[i + 1] == '2' &&
				 (seg[i + 2] == 'e' || seg[i + 2] == 'E'))
			i += 3;
		else
			return false;
		dots++;
	}
	return dots == 1 || dots == 2;
}

/*
 * Checks a step's path; its highest "$n" goes to *top.  Data placeholders
 * are whole segments, and the rest of the path is fixed text under the
 * base URL.
 */
static void
check_path(const char *path, const char *what, const char *name, int *top)
{
	const char *p;
	const char *seg;

	if (path == NULL || path[0] != '/')
		refuse(what, name, "the path must start with \"/\"",
			   "A step names a path under its target's base URL, never a URL.");
	for (p = path; *p; p++)
		if (!path_char_ok(*p))
			refuse(what, name, psprintf("the path may not hold the character \"%s\"",
										(unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f ?
										psprintf("\\x%02x", (unsigned char) *p) : pnstrdup(p, 1)),
				   "Give data as values ($n) or results ({$.name.path}) in a segment of their own; they are percent-encoded.");
	if (strstr(path, "//") != NULL)
		refuse(what, name, "the path may not hold \"//\"", NULL);
	seg = path + 1;
	while (*seg)
	{
		const char *end = strchr(seg, '/');
		int			len = end ? end - seg : strlen(seg);
		const char *inner;
		int			inner_len;

		if (dot_segment(seg, len))
			refuse(what, name, "the path may not hold a \".\" or \"..\" segment", NULL);
		if (path_placeholder(seg, len, &inner, &inner_len))
		{
			if (value_ref(inner, inner_len) > 0)
				*top = Max(*top, value_ref(inner, inner_len));
			else if (results_path(inner, inner_len) == NIL)
				refuse(what, name, psprintf("\"%.*s\" is not a path into the results", len, seg),
					   "Write a result as {$.step_name.key} or {$.step_name[0].key}.");
		}
		else if (memchr(seg, '{', len) || memchr(seg, '}', len) || memchr(seg, '$', len))
			refuse(what, name, psprintf("the segment \"%.*s\" mixes text and data", len, seg),
				   "A value ($n) or a result ({$.name.path}) is a whole segment.");
		else
			check_percent(seg, len, what, name);
		seg += len;
		if (*seg == '/')
			seg++;
	}
}

/* Is name a header name (an RFC 9110 token)? */
static bool
header_name_ok(const char *name, int len)
{
	int			i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (!ascii_alnum((unsigned char) name[i]) && strchr("!#$%&'*+-.^_`|~", name[i]) == NULL)
			return false;
	return true;
}

static bool
header_forbidden(const char *name, int len)
{
	const char *const *f;

	for (f = forbidden_headers; *f; f++)
		if ((int) strlen(*f) == len && pg_strncasecmp(*f, name, len) == 0)
			return true;
	return false;
}

/*
 * Checks a JSON object of headers: names that are tokens and not set by
 * pg_saga itself, string values without CR, LF or NUL.  Never quotes a
 * value: a mapping's values are secrets.
 */
static void
check_headers(Jsonb *headers, const char *what, const char *name, bool from_mapping)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	const char *where = from_mapping ? "the option headers of a user mapping" : NULL;

	if (!JB_ROOT_IS_OBJECT(headers))
	{
		if (from_mapping)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("%s must be a JSON object of header names and values", where)));
		refuse(what, name, "headers must be a JSON object of header names and values", NULL);
	}
	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const char *problem = NULL;

		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			if (!header_name_ok(v.val.string.val, v.val.string.len))
				problem = psprintf("\"%s\" is not a header name", key);
			else if (header_forbidden(v.val.string.val, v.val.string.len))
				problem = psprintf("the header \"%s\" is set by pg_saga itself", key);
		}
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvString)
				problem = psprintf("the value of header \"%s\" must be a string", key);
			else if (memchr(v.val.string.val, '\r', v.val.string.len) ||
					 memchr(v.val.string.val, '\n', v.val.string.len) ||
					 memchr(v.val.string.val, '\0', v.val.string.len))
				problem = psprintf("the value of header \"%s\" may not hold CR, LF or NUL", key);
		}
		if (problem == NULL)
			continue;
		if (from_mapping)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("%s: %s", where, problem),
					 errhint("Authorization comes from the option bearer_token; Idempotency-Key, Host and Content-Length are pg_saga's.")));
		refuse(what, name, problem,
			   "Authorization comes from the target's user mapping (bearer_token); Idempotency-Key, Host and Content-Length are pg_saga's.");
	}
}

/* Checks the option headers of a user mapping (a JSON object). */
void
http_check_headers_json(const char *json, const char *what, bool from_mapping)
{
	Jsonb	   *headers = http_jsonb_or_null(json);

	if (headers == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("the option headers must be a JSON object"),
				 errhint("For example: OPTIONS (headers '{\"X-Api-Version\": \"2\"}').")));
	check_headers(headers, what, NULL, from_mapping);
}

/* The highest "$n" a body uses; fails on a results path it cannot read. */
static int
check_body(Jsonb *body, const char *what, const char *name)
{
	JsonbIterator *it = JsonbIteratorInit(&body->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			top = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if ((tok != WJB_VALUE && tok != WJB_ELEM) || v.type != jbvString)
			continue;
		top = Max(top, value_ref(v.val.string.val, v.val.string.len));
		if (is_results_path(v.val.string.val, v.val.string.len) &&
			results_path(v.val.string.val, v.val.string.len) == NIL)
			refuse(what, name, psprintf("\"%.*s\" is not a path into the results",
										v.val.string.len, v.val.string.val),
				   "Write a result as \"$.step_name.key\" or \"$.step_name[0].key\".");
	}
	return top;
}

static const char *
check_method(const char *method, const char *what, const char *name)
{
	const char *const *m;

	for (m = methods; method && *m; m++)
		if (pg_strcasecmp(*m, method) == 0)
			return *m;
	refuse(what, name, psprintf("unknown method \"%s\"", method ? method : ""),
		   "The method is one of GET, POST, PUT, PATCH and DELETE.");
	return NULL;
}

/*
 * Checks the request text of the operation what of step name, for a saga
 * of nargs values: a method, a path under the base URL, headers a step may
 * set, and no "$n" the saga lacks (22023 for each).
 */
void
http_request_check(const char *text, int nargs, const char *what, const char *name)
{
	Jsonb	   *req = http_jsonb_or_null(text);
	Jsonb	   *part;
	bool		present;
	int			top = 0;

	if (req == NULL || !JB_ROOT_IS_OBJECT(req))
		refuse(what, name, "not a JSON object", "Make requests with saga.http().");
	check_method(object_string(req, "method", &present), what, name);
	check_path(object_string(req, "path", &present), what, name, &top);
	if ((part = object_jsonb(req, "headers")) != NULL)
		check_headers(part, what, name, false);
	if ((part = object_jsonb(req, "body")) != NULL)
		top = Max(top, check_body(part, what, name));
	if (top > nargs)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s of step \"%s\" references $%d, but the saga has %d value%s",
						what, name ? name : "(new)", top, nargs, nargs == 1 ? "" : "s"),
				 errhint("Pass the values in args.")));
}

/*
 * The highest value ($n) the request text references, as check_path()
 * and check_body() find them (a path segment, a string of the body's top
 * level), 0 if none or if text is not a request.  Raises no error: the
 * worker asks it of requests checked when they were submitted.
 */
int
http_request_values_referenced(const char *text)
{
	Jsonb	   *req;
	Jsonb	   *body;
	bool		present;
	char	   *path;
	int			top = 0;

	if (text == NULL || strchr(text, '$') == NULL ||
		(req = http_jsonb_or_null(text)) == NULL || !JB_ROOT_IS_OBJECT(req))
		return 0;
	path = object_string(req, "path", &present);
	while (path != NULL && *path)
	{
		const char *end = strchr(path, '/');
		int			len = end ? end - path : strlen(path);
		const char *inner;
		int			inner_len;

		/* "$n" or "{$n}", as check_path() takes them */
		if (path_placeholder(path, len, &inner, &inner_len))
			top = Max(top, value_ref(inner, inner_len));
		path += len;
		if (*path == '/')
			path++;
	}
	if ((body = object_jsonb(req, "body")) != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&body->root);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			if ((tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvString)
				top = Max(top, value_ref(v.val.string.val, v.val.string.len));
	}
	return top;
}

/*
 * The request saga.http() makes, as its JSON text: checked (but for the
 * values it references, which the saga it joins must have) and with the
 * method in capitals.
 */
char *
http_request_make(const char *method, const char *path, const char *body, const char *headers)
{
	StringInfoData buf;
	const char *m = check_method(method, NULL, NULL);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"method\": ");
	escape_json(&buf, m);
	appendStringInfoString(&buf, ", \"path\": ");
	escape_json(&buf, path);
	if (body)
		appendStringInfo(&buf, ", \"body\": %s", body);
	if (headers)
		appendStringInfo(&buf, ", \"headers\": %s", headers);
	appendStringInfoChar(&buf, '}');
	http_request_check(buf.data, INT_MAX, NULL, NULL);
	return jsonb_text(parse_jsonb(buf.data));
}

/*
 * Checks a server's url: http or https, a host, and nothing a base should
 * not hold (credentials, a query, a fragment).  Messages never quote it,
 * in case someone put a secret there anyway.
 */
void
http_check_url(const char *url)
{
	const char *rest;
	const char *host_end;

	if (pg_strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else if (pg_strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("the option url must be an http or https URL"),
				 errhint("For example: OPTIONS (url 'https://pay.internal/v1').")));
	host_end = rest + strcspn(rest, "/?#");
	if (host_end == rest)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("the option url must name a host")));
	if (memchr(rest, '@', host_end - rest) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("the option url may not hold credentials"),
				 errhint("Put a token in the user mapping: OPTIONS (bearer_token '...').")));
	if (strpbrk(url, "?#") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("the option url may not hold a query or a fragment")));
	for (; *url; url++)
		if ((unsigned char) *url <= 0x20 || (unsigned char) *url >= 0x7f || *url == '\\')
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("the option url may not hold spaces, control characters, backslashes or non-ASCII characters")));
}

/* ---- one call ---- */

/*
 * The key of every attempt of op of step: "<coordinator>:<saga key>:<step>:<op>",
 * the saga's barrier identity and the step's operation.  The saga key is
 * never reused, so neither is the key, even when a purged gid returns.
 */
char *
http_idempotency_key(const char *coordinator, Saga *saga, SagaStep *step, StepOp op)
{
	return psprintf("%s:%d:%s", barrier_identity(coordinator, saga), step->number,
					step_op_name(op));
}

/*
 * The saga's values from their text[] text as array_out writes it; the
 * worker may send a call outside a transaction, where array_in (which
 * looks its element type up) cannot run.  NULL elements stay NULL.
 */
static char **
saga_values(Saga *saga)
{
	char	  **values = palloc0(sizeof(char *) * (saga->nargs + 1));
	const char *p = saga->args;
	int			n = 0;

	if (p == NULL || *p != '{')
		return values;
	p++;
	while (*p && *p != '}' && n < saga->nargs)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		if (*p == '"')
		{
			for (p++; *p && *p != '"'; p++)
			{
				if (*p == '\\' && p[1])
					p++;
				appendStringInfoChar(&buf, *p);
			}
			if (*p == '"')
				p++;
			values[n++] = buf.data;
		}
		else
		{
			while (*p && *p != ',' && *p != '}')
				appendStringInfoChar(&buf, *p++);
			values[n++] = pg_strcasecmp(buf.data, "NULL") == 0 ? NULL : buf.data;
		}
		if (*p == ',')
			p++;
	}
	return values;
}

/* What a data placeholder reads from. */
typedef struct DataSource
{
	char	  **values;			/* the saga's, by $n - 1 */
	int			nvalues;
	Jsonb	   *results;		/* saga.results as the step sees it */
	const char *own_name;		/* the step's name, when its own result is unknown */
	char	   *error;			/* why a placeholder selects nothing */
	int			sqlstate;		/* and its SQLSTATE (0: 2203A) */
	bool		own_unknown;	/* the last lookup read the step's own unknown result */
} DataSource;

static JsonbValue *
null_value(void)
{
	JsonbValue *v = palloc0(sizeof(JsonbValue));

	v->type = jbvNull;
	return v;
}

/* The JSON value at a results path, NULL if it selects nothing. */
static JsonbValue *
lookup_results(DataSource *src, const char *s, int len)
{
	List	   *segs = results_path(s, len);
	JsonbValue *v;
	ListCell   *lc;

	if (segs == NIL)
		return NULL;
	/* a compensation whose action's outcome is unknown: null, its key finds it */
	if (src->own_name != NULL && strcmp(linitial(segs), src->own_name) == 0)
	{
		src->own_unknown = true;
		return null_value();
	}
	v = palloc0(sizeof(JsonbValue));
	v->type = jbvBinary;
	v->val.binary.data = &src->results->root;
	v->val.binary.len = VARSIZE(src->results);
	foreach(lc, segs)
	{
		char	   *seg = lfirst(lc);

		if (v->type != jbvBinary)
			return NULL;
		if (seg[0] == '[')
		{
			if (!JsonContainerIsArray(v->val.binary.data))
				return NULL;
			v = getIthJsonbValueFromContainer(v->val.binary.data, atoi(seg + 1));
		}
		else
		{
			if (!JsonContainerIsObject(v->val.binary.data))
				return NULL;
			v = getKeyJsonValueFromContainer(v->val.binary.data, seg, strlen(seg), NULL);
		}
		if (v == NULL)
			return NULL;
	}
	return v;
}

/* The value a body string or path segment stands for; NULL if it is none. */
static JsonbValue *
placeholder_value(DataSource *src, const char *s, int len, bool *is_placeholder)
{
	int			n = value_ref(s, len);
	JsonbValue *v;

	*is_placeholder = n > 0 || is_results_path(s, len);
	if (n > 0)
	{
		if (n > src->nvalues)
		{
			src->error = psprintf("$%d: the saga has %d values", n, src->nvalues);
			return NULL;
		}
		if (src->values[n - 1] == NULL)
			return null_value();
		v = palloc0(sizeof(JsonbValue));
		v->type = jbvString;
		v->val.string.val = src->values[n - 1];
		v->val.string.len = strlen(src->values[n - 1]);
		return v;
	}
	if (!*is_placeholder)
		return NULL;
	v = lookup_results(src, s, len);
	if (v == NULL)
		src->error = psprintf("\"%.*s\" selects nothing in the results", len, s);
	return v;
}

/* The body with its placeholders replaced; NULL with src->error if one selects nothing. */
static Jsonb *
fill_body(Jsonb *body, DataSource *src)
{
	JsonbIterator *it;
	JsonbParseState *state = NULL;
	JsonbValue	v;
	JsonbValue *res = NULL;
	JsonbIteratorToken tok;
	bool		is_placeholder;

	if (JB_ROOT_IS_SCALAR(body))
	{
		JsonbValue	scalar;
		JsonbValue *rep;

		(void) JsonbExtractScalar(&body->root, &scalar);
		if (scalar.type != jbvString)
			return body;
		rep = placeholder_value(src, scalar.val.string.val, scalar.val.string.len, &is_placeholder);
		if (!is_placeholder)
			return body;
		return rep ? JsonbValueToJsonb(rep) : NULL;
	}
	it = JsonbIteratorInit(&body->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if ((tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvString)
		{
			JsonbValue *rep = placeholder_value(src, v.val.string.val, v.val.string.len,
												&is_placeholder);

			if (is_placeholder && rep == NULL)
				return NULL;
			res = pushJsonbValue(&state, tok, is_placeholder ? rep : &v);
		}
		else
			res = pushJsonbValue(&state, tok, tok < WJB_BEGIN_ARRAY ? &v : NULL);
	}
	return JsonbValueToJsonb(res);
}

/* Appends s percent-encoded as one path segment: only unreserved characters stay. */
static void
append_segment(StringInfo buf, const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (ascii_alnum(c) || c == '-' || c == '_' || c == '~')
			appendStringInfoChar(buf, (char) c);
		else
			appendStringInfo(buf, "%%%02X", c);
	}
}

/* The text of a value in a path: a string as it is, anything else as JSON. */
static char *
segment_text(JsonbValue *v)
{
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	return jsonb_text(JsonbValueToJsonb(v));
}

/* The path with its placeholders replaced; NULL with src->error if one selects nothing. */
static char *
fill_path(const char *path, DataSource *src)
{
	StringInfoData buf;
	const char *seg = path + 1;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '/');
	while (*seg)
	{
		const char *end = strchr(seg, '/');
		int			len = end ? end - seg : strlen(seg);
		const char *inner;
		int			inner_len;
		bool		is_placeholder;

		if (path_placeholder(seg, len, &inner, &inner_len))
		{
			JsonbValue *v;
			char	   *text;

			src->own_unknown = false;
			v = placeholder_value(src, inner, inner_len, &is_placeholder);
			if (v == NULL)
				return NULL;

			/*
			 * No empty, "." or ".." segment, encoded or not, and no "null";
			 * but the step's own action's result when its outcome is
			 * unknown is "null" by design: the service finds the action by
			 * its key.
			 */
			text = v->type == jbvNull ? (src->own_unknown ? pstrdup("null") : NULL) : segment_text(v);
			if (text == NULL || text[0] == '\0' || strcmp(text, ".") == 0 || strcmp(text, "..") == 0)
			{
				src->error = psprintf("\"%.*s\" is %s, which cannot be a path segment", len, seg,
									  text == NULL ? "null" : text[0] == '\0' ? "empty" :
									  psprintf("\"%s\"", text));
				src->sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
				return NULL;
			}
			append_segment(&buf, text, strlen(text));
		}
		else
			appendBinaryStringInfo(&buf, seg, len);
		seg += len;
		if (*seg == '/')
		{
			appendStringInfoChar(&buf, '/');
			seg++;
		}
	}
	return buf.data;
}

/* Adds the headers of a JSON object to a list of "Name: value" strings. */
static List *
add_headers(List *list, Jsonb *headers)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (headers == NULL || !JB_ROOT_IS_OBJECT(headers))
		return list;
	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE && v.type == jbvString && key != NULL)
			list = lappend(list, psprintf("%s: %.*s", key, v.val.string.len, v.val.string.val));
	}
	return list;
}

/*
 * The name of a step header the user mapping also sets (any letter case),
 * or NULL: a step may not shadow its mapping's headers.  Both lists hold
 * "Name: value" strings; only names are compared and returned.
 */
static char *
mapping_header_clash(List *step_headers, List *mapping_headers)
{
	ListCell   *a;
	ListCell   *b;

	foreach(a, step_headers)
	{
		const char *s = lfirst(a);
		int			slen = strcspn(s, ":");

		foreach(b, mapping_headers)
		{
			const char *m = lfirst(b);
			int			mlen = strcspn(m, ":");

			if (slen == mlen && pg_strncasecmp(s, m, slen) == 0)
				return pnstrdup(s, slen);
		}
	}
	return NULL;
}

/*
 * Builds the call op of step sends to its HTTP target: the URL under the
 * base, the body and path with their data, and the headers (the key, the
 * content type, the mapping's secrets).  A placeholder that selects
 * nothing fails the step for a business reason (false, with the error and
 * its SQLSTATE); nothing else can, as the request was checked when the
 * step was added.
 */
bool
http_request_build(const HttpTarget *target, const char *coordinator, SagaStep *step,
				   StepOp op, HttpCall *call, char **error, int *sqlstate)
{
	Jsonb	   *req;
	Jsonb	   *body;
	DataSource	src;
	bool		present;
	char	   *path;
	ListCell   *lc;
	List	   *step_headers;
	char	   *clash;

	memset(call, 0, sizeof(*call));
	memset(&src, 0, sizeof(src));
	if (step->saga->key == 0)
	{
		/* begun before 1.5 (saga.add_step refuses these now): no unique key */
		*error = pstrdup("the saga has no saga key (begun before pg_saga 1.5), so its requests would have no unique Idempotency-Key");
		*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
		return false;
	}
	/* an action's and a confirm's answers are kept; a compensation's is not */
	call->keeps_result = op != OP_COMPENSATION;
	req = parse_jsonb(step->sql[op]);
	src.values = saga_values(step->saga);
	src.nvalues = step->saga->nargs;
	src.results = parse_jsonb(results_for_step(step, op));
	if (op != OP_ACTION && step->result == NULL)
		src.own_name = step->name;
	path = object_string(req, "path", &present);
	call->method = check_method(object_string(req, "method", &present), NULL, NULL);
	call->path = fill_path(path, &src);
	if (call->path == NULL)
		goto no_data;
	call->url = psprintf("%s%s", target->url, call->path);
	if ((body = object_jsonb(req, "body")) != NULL)
	{
		Jsonb	   *filled = fill_body(body, &src);

		if (filled == NULL)
			goto no_data;
		call->body = jsonb_text(filled);
	}
	call->headers = lappend(call->headers,
							psprintf("Idempotency-Key: %s",
									 http_idempotency_key(coordinator, step->saga, step, op)));
	/* without a body, no content type (curl would claim a form) */
	call->headers = lappend(call->headers, pstrdup(call->body ? "Content-Type: application/json" :
												   "Content-Type:"));
	call->headers = lappend(call->headers, pstrdup("Accept: application/json"));
	/* no "Expect: 100-continue" round trip before a body */
	call->headers = lappend(call->headers, pstrdup("Expect:"));
	step_headers = add_headers(NIL, object_jsonb(req, "headers"));
	if ((clash = mapping_header_clash(step_headers, target->headers)) != NULL)
	{
		*error = psprintf("%s %s: the header \"%s\" of the step is set by the user mapping of its target",
						  call->method, path, clash);
		*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
		return false;
	}
	call->headers = list_concat(call->headers, step_headers);
	foreach(lc, target->headers)
		call->headers = lappend(call->headers, pstrdup(lfirst(lc)));
	if (target->bearer_token)
		call->headers = lappend(call->headers,
								psprintf("Authorization: Bearer %s", target->bearer_token));
	return true;

no_data:
	*error = psprintf("%s %s: %s", call->method, path, src.error);
	*sqlstate = src.sqlstate ? src.sqlstate : ERRCODE_SQL_JSON_MEMBER_NOT_FOUND;
	return false;
}

/* The mapping's option headers as "Name: value" strings (for target.c). */
List *
http_mapping_headers(const char *json)
{
	return add_headers(NIL, parse_jsonb(json));
}

/* The path of op of step as the step wrote it (no data in it), for messages. */
char *
http_request_shown_path(SagaStep *step, StepOp op)
{
	bool		present;
	char	   *path = object_string(parse_jsonb(step->sql[op]), "path", &present);

	return path ? path : pstrdup("?");
}
