/*-------------------------------------------------------------------------
 *
 * functions.c
 *		The SQL-callable functions of schema saga.
 *
 * The functions are granted to PUBLIC, and users cannot write the tables
 * directly: each function checks what its caller may do (own sagas only,
 * unless superuser or member of saga_admin), then does its reads and writes
 * as the extension's owner.  Every check comes before the first write, and
 * an error rolls the caller's statement back, so a failed call changes
 * nothing.  The functions run with search_path = pg_catalog, pg_temp (set
 * in their declarations), and every name below is qualified.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "barrier.h"
#include "http_request.h"
#include "model.h"
#include "progress.h"
#include "remote_backend.h"
#include "settings.h"
#include "shmem.h"
#include "store.h"
#include "target.h"

PG_FUNCTION_INFO_V1(saga_begin);
PG_FUNCTION_INFO_V1(saga_add_step);
PG_FUNCTION_INFO_V1(saga_submit);
PG_FUNCTION_INFO_V1(saga_start);
PG_FUNCTION_INFO_V1(saga_wait);
PG_FUNCTION_INFO_V1(saga_status);
PG_FUNCTION_INFO_V1(saga_result);
PG_FUNCTION_INFO_V1(saga_abort);
PG_FUNCTION_INFO_V1(saga_retry);
PG_FUNCTION_INFO_V1(saga_purge);
PG_FUNCTION_INFO_V1(saga_setup_participant);

/* A saga as the functions see it. */
typedef struct SagaRow
{
	int64		id;
	char	   *gid;
	SagaMode	mode;
	SagaStatus	status;
	SagaPhase	phase;
	Oid			owner;
	TransactionId xmin;
} SagaRow;

/* State of one call: who called, and the saved user while switched. */
typedef struct SagaCall
{
	Oid			caller;
	Oid			saved_user;
	int			saved_sec;
} SagaCall;

/* ---- privileges ---- */

static bool
role_is_member_of(Oid role, const char *group)
{
	Oid			group_oid = get_role_oid(group, true);

	return OidIsValid(group_oid) && has_privs_of_role(role, group_oid);
}

/* May role act on every saga? */
static bool
is_saga_admin(Oid role)
{
	return superuser_arg(role) || role_is_member_of(role, "saga_admin");
}

/*
 * Enters a call: connects SPI and switches to the owner of schema saga,
 * who alone writes its tables.
 */
static void
call_begin(SagaCall *cx)
{
	Oid			nsp = get_namespace_oid(SAGA_SCHEMA, false);
	HeapTuple	tup;
	Oid			owner;

	cx->caller = GetUserId();
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pg_saga: SPI_connect failed");
	GetUserIdAndSecContext(&cx->saved_user, &cx->saved_sec);
	SetUserIdAndSecContext(owner, cx->saved_sec | SECURITY_LOCAL_USERID_CHANGE);
}

static void
call_end(SagaCall *cx)
{
	SetUserIdAndSecContext(cx->saved_user, cx->saved_sec);
	SPI_finish();
}

/* ---- argument checks ---- */

static char *
required_text(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static char *
optional_text(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static bool
is_blank(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char) *s))
			return false;
	return true;
}

static bool
interval_is_positive(Datum d)
{
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	return !DatumGetBool(DirectFunctionCall2(interval_le, d, IntervalPGetDatum(&zero)));
}

/* Checks that an interval argument is positive; NULL is fine. */
static void
check_positive_interval(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		return;
	if (!interval_is_positive(PG_GETARG_DATUM(argno)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be positive", name)));
}

/* Milliseconds in an interval, as the worker counts them (30-day months). */
static int64
interval_ms(Datum d)
{
	Interval   *iv = DatumGetIntervalP(d);

	return iv->time / 1000 +
		(int64) iv->day * USECS_PER_DAY / 1000 +
		(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY / 1000;
}

/* ---- reading a saga ---- */

/*
 * Finds gid for the caller; a saga of another role counts as unknown,
 * except that pg_monitor members may read (not act on) every saga.
 */
static void
lookup_gtx(SagaCall *cx, const char *gid, bool acting, SagaRow *row)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(gid)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		visible;
	const char *sql = acting ?
		"SELECT id, mode, status, owner, xmin::text, phase FROM saga.gtx WHERE gid = $1 FOR UPDATE" :
		"SELECT id, mode, status, owner, xmin::text, phase FROM saga.gtx WHERE gid = $1";

	if (store_run(sql, 1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not look up saga \"%s\"", gid);
	visible = SPI_processed == 1;
	if (visible)
	{
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		row->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
		visible = row->owner == cx->caller || is_saga_admin(cx->caller) ||
			(!acting && role_is_member_of(cx->caller, "pg_monitor"));
	}
	if (!visible)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("saga \"%s\" does not exist", gid)));
	row->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	row->gid = pstrdup(gid);
	(void) saga_mode_from_name(SPI_getvalue(tup, desc, 2), &row->mode);
	row->status = saga_status_from_name(SPI_getvalue(tup, desc, 3));
	row->xmin = (TransactionId) strtoul(SPI_getvalue(tup, desc, 5), NULL, 10);
	row->phase = saga_phase_from_name(SPI_getvalue(tup, desc, 6));
}

/*
 * The saga's status as its worker knows it: since 1.6 the row of a running
 * saga may still say pending (its progress lives in the worker's memory,
 * see progress.c).  A final status is always in the row.
 */
static SagaStatus
live_status(int64 id, SagaStatus row_status)
{
	SagaStatus	status;

	if (row_status != SAGA_BUILDING && !saga_is_final(row_status) &&
		progress_saga_status(id, &status))
		return status;
	return row_status;
}

static void
wrong_state(SagaRow *row, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("saga \"%s\" is %s", row->gid,
					saga_status_name(live_status(row->id, row->status))),
			 errdetail("%s", detail)));
}

/*
 * Whether saga.history derives the ordinary events (pg_saga 1.6, which has
 * saga._events): then a submission stores no "submitted" event.  Two
 * cache lookups: the library also serves older versions of the schema.
 */
static bool
schema_derives_history(void)
{
	Oid			nsp = get_namespace_oid(SAGA_SCHEMA, true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("_events", nsp));
}

static void
add_event(SagaRow *row, int step, const char *event, const char *detail)
{
	Oid			argtypes[4] = {INT8OID, INT4OID, TEXTOID, TEXTOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	args[0] = Int64GetDatum(row->id);
	args[1] = Int32GetDatum(step);
	if (step == 0)
		nulls[1] = 'n';
	args[2] = CStringGetTextDatum(event);
	args[3] = text_or_null(detail, nulls, 3);
	if (store_run("INSERT INTO saga.gtx_event (gtx_id, step, event, detail) "
							  "VALUES ($1, $2, $3, $4)",
							  4, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "pg_saga: could not record an event");
}

static char *
read_status(const char *gid)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(gid)};

	if (store_run("SELECT status FROM saga.gtx WHERE gid = $1",
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read saga \"%s\"", gid);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("saga \"%s\" does not exist", gid)));
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* ---- sagas this transaction is building ---- */

/*
 * A saga begun by the current transaction is invisible to every other
 * session until that commits, so while it is building only this backend can
 * change it.  What add_step() and submit() need of it is kept here, and
 * they skip the lookups and the row lock (which keeps concurrent builders
 * apart, and there can be none).  The list lives in TopTransactionContext;
 * it is forgotten when the transaction ends and whenever a subtransaction
 * aborts, as that may have undone some of what it records.  A miss only
 * means the slower path: sagas built over several transactions take it.
 */
typedef struct BuildingSaga
{
	int64		id;
	char	   *gid;
	SagaMode	mode;
	Oid			owner;
	int			nsteps;
	List	   *names;			/* of its steps */
} BuildingSaga;

static List *building = NIL;
static bool building_callbacks_registered = false;

static void
forget_building_at_xact_end(XactEvent event, void *arg)
{
	building = NIL;
}

static void
forget_building_at_subxact_abort(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		building = NIL;
}

static void
remember_building(int64 id, const char *gid, SagaMode mode, Oid owner)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	BuildingSaga *b = palloc0(sizeof(BuildingSaga));

	if (!building_callbacks_registered)
	{
		RegisterXactCallback(forget_building_at_xact_end, NULL);
		RegisterSubXactCallback(forget_building_at_subxact_abort, NULL);
		building_callbacks_registered = true;
	}
	b->id = id;
	b->gid = pstrdup(gid);
	b->mode = mode;
	b->owner = owner;
	building = lappend(building, b);
	MemoryContextSwitchTo(old);
}

static BuildingSaga *
find_building(const char *gid)
{
	ListCell   *lc;

	foreach(lc, building)
	{
		BuildingSaga *b = lfirst(lc);

		if (strcmp(b->gid, gid) == 0)
			return b;
	}
	return NULL;
}

static void
forget_building(const char *gid)
{
	BuildingSaga *b = find_building(gid);

	if (b)
		building = list_delete_ptr(building, b);
}

static bool
building_has_step(BuildingSaga *b, const char *name)
{
	ListCell   *lc;

	foreach(lc, b->names)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

static void
building_add_step(BuildingSaga *b, const char *name)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	b->names = lappend(b->names, pstrdup(name));
	b->nsteps++;
	MemoryContextSwitchTo(old);
}

/*
 * lookup_gtx() for an acting call, served from the sagas this transaction
 * is building when gid is one of them; the same visibility rule applies.
 */
static BuildingSaga *
lookup_for_building(SagaCall *cx, const char *gid, SagaRow *row)
{
	BuildingSaga *b = find_building(gid);

	if (b == NULL)
	{
		lookup_gtx(cx, gid, true, row);
		return NULL;
	}
	if (b->owner != cx->caller && !is_saga_admin(cx->caller))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("saga \"%s\" does not exist", gid)));
	row->id = b->id;
	row->gid = pstrdup(gid);
	row->mode = b->mode;
	row->status = SAGA_BUILDING;
	row->owner = b->owner;
	row->xmin = InvalidTransactionId;	/* not read on this path */
	return b;
}

/* ---- saga.begin ---- */

/*
 * The checks of a new saga's gid, mode and timeout (argument timeout_arg),
 * shared by begin() and start(); returns the mode.
 */
static SagaMode
check_saga_args(FunctionCallInfo fcinfo, const char *gid, const char *mode_name, int timeout_arg)
{
	SagaMode	mode;

	if (gid != NULL && (gid[0] == '\0' || pg_mbstrlen(gid) > SAGA_MAX_GID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gid must be 1 to %d characters long", SAGA_MAX_GID_LEN)));
	if (!saga_mode_from_name(mode_name, &mode))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid mode \"%s\"", mode_name),
				 errhint("Valid modes are saga, tcc, xa, msg and at.")));
	check_positive_interval(fcinfo, timeout_arg, "timeout");
	if (mode == MODE_MSG && !PG_ARGISNULL(timeout_arg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("msg sagas take no timeout"),
				 errdetail("A msg saga is delivered until done: nothing can be rolled back.")));
	return mode;
}

/*
 * The first five parameters of the INSERT of a new saga (gid, mode, owner,
 * payload, timeout), from the arguments of begin() or start().
 */
static void
saga_row_args(FunctionCallInfo fcinfo, SagaCall *cx, const char *gid, const char *mode_name,
			  int timeout_arg, int payload_arg, Datum *args, char *nulls)
{
	args[0] = text_or_null(gid, nulls, 0);
	args[1] = CStringGetTextDatum(mode_name);
	args[2] = ObjectIdGetDatum(cx->caller);
	args[3] = arg_or_null(fcinfo, payload_arg, nulls, 3);
	args[4] = arg_or_null(fcinfo, timeout_arg, nulls, 4);
}

static void
duplicate_gid(const char *gid)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("saga \"%s\" already exists", gid),
			 errhint("Choose another gid, or pass NULL to get a new one.")));
}

/*
 * The saga's values (args, argument argno, absent in the functions of
 * versions before 1.5), checked: one dimension; none in modes xa and at,
 * whose calls travel as query text.  NULL when not given; *nargs counts
 * them.
 */
static ArrayType *
read_args(FunctionCallInfo fcinfo, int argno, SagaMode mode, int *nargs)
{
	ArrayType  *args;

	*nargs = 0;
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	args = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(args) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("args must be a one-dimensional array")));
	*nargs = ArrayGetNItems(ARR_NDIM(args), ARR_DIMS(args));
	if (*nargs > 0 && (mode == MODE_XA || mode == MODE_AT))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s sagas take no values (args)", saga_mode_name(mode)),
				 errhint("Use mode saga, tcc or msg for steps with bound values.")));
	return args;
}

/* The number of values of saga id (0 on a schema from before 1.5). */
static int
saga_nargs(int64 id)
{
	Oid			nsp = get_namespace_oid(SAGA_SCHEMA, false);
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};
	bool		isnull;
	Datum		n;

	if (!OidIsValid(get_relname_relid("gtx_args", nsp)))
		return 0;
	if (store_run("SELECT pg_catalog.cardinality(args) FROM saga.gtx_args WHERE gtx_id = $1",
				  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read the values of a saga");
	if (SPI_processed == 0)
		return 0;
	n = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt32(n);
}

/*
 * The checks of the values ($n) an action, compensation and confirm use,
 * for a saga of nargs values (see barrier_check_values).
 */
static void
check_step_sql_values(const char *action, const char *compensation, const char *confirm,
					  int nargs, const char *name, bool expect_rows)
{
	barrier_check_values(action, nargs, "action", name, expect_rows);
	barrier_check_values(compensation, nargs, "compensation", name, false);
	barrier_check_values(confirm, nargs, "confirm", name, false);
}

/* One operation of a step on an HTTP target: a request, checked. */
static void
check_http_op(const char *text, const char *what, const char *name, const char *target,
			  int nargs)
{
	if (text == NULL)
		return;
	if (!http_is_request(text))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s of step \"%s\" is SQL text, but target \"%s\" is an HTTP target",
						what, name, target),
				 errhint("Give a request: saga.http('POST', '/path', body => ...).")));
	http_request_check(text, nargs, what, name);
}

/* One operation of a step on a database target: SQL, not a request. */
static void
refuse_request_for_database(const char *text, const char *what, const char *name,
							const char *target)
{
	if (http_is_request(text))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s of step \"%s\" is a request, but target \"%s\" is a database",
						what, name, target),
				 errhint("A request (saga.http()) goes to a server with the option url; a database takes SQL text.")));
}

/*
 * The checks of what a step sends, which depend on its target's kind: SQL
 * for a database (and its values, see check_step_sql_values), requests for
 * an HTTP target, which modes xa and at cannot use (they need a database's
 * transaction) and which have no row count.  A target that does not exist
 * (yet: a definition) is checked by what each operation is.  nargs < 0:
 * the values are not checked (the caller found no "$").
 */
static void
check_step_ops(const char *target, SagaMode mode, const char *action,
			   const char *compensation, const char *confirm, int nargs,
			   const char *name, bool expect_rows)
{
	TargetKind	kind = target_kind(target);
	int			n = nargs < 0 ? INT_MAX : nargs;

	if (kind == TARGET_MISSING && http_is_request(action))
		kind = TARGET_HTTP;
	if (kind == TARGET_HTTP)
	{
		if (mode == MODE_XA || mode == MODE_AT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("mode %s cannot call HTTP target \"%s\"", saga_mode_name(mode), target),
					 errdetail("Mode %s needs a database's transaction on every target.",
							   saga_mode_name(mode)),
					 errhint("Use mode saga, tcc or msg for a service.")));
		if (expect_rows)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("step \"%s\" on HTTP target \"%s\" takes no expect_rows", name, target),
					 errhint("A service's answer has no row count: any 2xx status succeeds.")));
		check_http_op(action, "action", name, target, n);
		check_http_op(compensation, "compensation", name, target, n);
		check_http_op(confirm, "confirm", name, target, n);
		return;
	}
	refuse_request_for_database(action, "action", name, target);
	refuse_request_for_database(compensation, "compensation", name, target);
	refuse_request_for_database(confirm, "confirm", name, target);
	if (nargs >= 0)
		check_step_sql_values(action, compensation, confirm, nargs, name, expect_rows);
}

/*
 * A saga begun before pg_saga 1.5 has no saga key (saga_key NULL): the
 * Idempotency-Key of its requests would not be unique to it (a purged gid
 * begun again would repeat it), so it takes no step on an HTTP target.
 * Sagas begun in this transaction have one.
 */
static void
refuse_http_without_saga_key(int64 id, const char *gid, const char *target)
{
	Oid			types[1] = {INT8OID};
	Datum		vals[1] = {Int64GetDatum(id)};
	bool		isnull;

	if (store_run("SELECT saga_key IS NULL FROM saga.gtx WHERE id = $1",
				  1, types, vals, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read the saga key");
	if (SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("saga \"%s\" has no saga key, so it cannot call HTTP target \"%s\"", gid, target),
				 errdetail("Sagas begun before pg_saga 1.5 have none, and a request's Idempotency-Key needs one."),
				 errhint("Begin a new saga for steps on HTTP targets.")));
}

/*
 * saga.http(method, path, body, headers): a request as a value, checked
 * but for the values it references (the saga it joins must have them).
 */
PG_FUNCTION_INFO_V1(saga_http);

Datum
saga_http(PG_FUNCTION_ARGS)
{
	char	   *method = required_text(fcinfo, 0, "method");
	char	   *path = required_text(fcinfo, 1, "path");
	char	   *body = NULL;
	char	   *headers = NULL;

	if (!PG_ARGISNULL(2))
	{
		Jsonb	   *jb = PG_GETARG_JSONB_P(2);

		body = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	}
	if (!PG_ARGISNULL(3))
	{
		Jsonb	   *jb = PG_GETARG_JSONB_P(3);

		headers = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	}
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in,
										CStringGetDatum(http_request_make(method, path, body, headers))));
}

Datum
saga_begin(PG_FUNCTION_ARGS)
{
	SagaCall cx;
	char	   *gid = optional_text(fcinfo, 0);
	char	   *mode_name = required_text(fcinfo, 1, "mode");
	SagaMode	mode;
	Oid			argtypes[6] = {TEXTOID, TEXTOID, OIDOID, JSONBOID, INTERVALOID, TEXTARRAYOID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	char	   *result;
	ArrayType  *values;
	int			nvalues;

	mode = check_saga_args(fcinfo, gid, mode_name, 2);
	values = read_args(fcinfo, 4, mode, &nvalues);
	call_begin(&cx);
	saga_row_args(fcinfo, &cx, gid, mode_name, 2, 3, args, nulls);

	/* one statement: a duplicate gid inserts nothing and returns no row */
	if (values == NULL)
	{
		if (store_run("INSERT INTO saga.gtx (gid, mode, owner, payload, timeout) "
					"VALUES (COALESCE($1, pg_catalog.gen_random_uuid()::text), $2, $3, $4, $5) "
					"ON CONFLICT (gid) DO NOTHING RETURNING gid, id",
					5, argtypes, args, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "pg_saga: could not create saga");
	}
	else
	{
		args[5] = PointerGetDatum(values);
		if (store_run("WITH g AS (INSERT INTO saga.gtx (gid, mode, owner, payload, timeout) "
					"VALUES (COALESCE($1, pg_catalog.gen_random_uuid()::text), $2, $3, $4, $5) "
					"ON CONFLICT (gid) DO NOTHING RETURNING gid, id), "
					"a AS (INSERT INTO saga.gtx_args (gtx_id, args) SELECT id, $6 FROM g) "
					"SELECT gid, id FROM g",
					6, argtypes, args, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "pg_saga: could not create saga");
	}
	if (SPI_processed == 0)
		duplicate_gid(gid);
	result = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	result = MemoryContextStrdup(CurTransactionContext, result);
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 2, &isnull));

		remember_building(id, result, mode, cx.caller);
	}
	call_end(&cx);
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* ---- saga.add_step ---- */

static void
check_mode_rules(SagaMode mode, const char *compensation, const char *confirm)
{
	switch (mode)
	{
		case MODE_SAGA:
			if (confirm)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("saga steps take no confirm"),
						 errhint("Use mode tcc for try/confirm/cancel.")));
			break;
		case MODE_TCC:
			if (!confirm || !compensation)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("tcc steps need a confirm and a compensation"),
						 errdetail("The action is the Try, confirm the Confirm and compensation the Cancel.")));
			break;
		case MODE_XA:
		case MODE_MSG:
		case MODE_AT:
			if (confirm || compensation)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s steps take no compensation or confirm", saga_mode_name(mode))));
			break;
	}
}

/* Number of the step called name in the saga, or 0. */
static int
step_by_name(int64 saga_id, const char *name)
{
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(saga_id), CStringGetTextDatum(name)};
	bool		isnull;

	if (store_run("SELECT step FROM saga.gtx_step WHERE gtx_id = $1 AND name = $2",
							  2, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read steps");
	if (SPI_processed == 0)
		return 0;
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Resolves after (names) to step numbers; NULL means the step before. */
static ArrayType *
resolve_after(FunctionCallInfo fcinfo, int argno, int64 saga_id, int number,
			  const char *name, const char *gid)
{
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	Datum	   *numbers;
	int			i;

	if (PG_ARGISNULL(argno))
	{
		Datum		prev = Int32GetDatum(number - 1);

		return construct_array(&prev, number > 1 ? 1 : 0, INT4OID, 4, true, TYPALIGN_INT);
	}
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(argno), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &elem_nulls, &nelems);
	numbers = palloc(sizeof(Datum) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
	{
		char	   *dep;
		int			n;

		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("after must not contain nulls")));
		dep = TextDatumGetCString(elems[i]);
		if (strcmp(dep, name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("step \"%s\" cannot come after itself", name),
					 errdetail("Dependencies must not form a cycle.")));
		n = step_by_name(saga_id, dep);
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("step \"%s\" named in after does not exist in saga \"%s\"", dep, gid),
					 errhint("A step can come only after steps added before it.")));
		numbers[i] = Int32GetDatum(n);
	}
	return construct_array(numbers, nelems, INT4OID, 4, true, TYPALIGN_INT);
}

/*
 * The checks of a step's own values, shared by add_step() and start();
 * NULL pointers stand for NULL arguments.
 */
static void
check_step_values(const char *action, const int64 *expect_rows, const int32 *max_attempts,
				  const Datum *timeout, const char *name)
{
	if (is_blank(action))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("action must not be empty")));
	if (expect_rows && *expect_rows < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expect_rows must not be negative")));
	if (max_attempts && *max_attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1")));
	if (timeout && !interval_is_positive(*timeout))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be positive")));
	if (timeout && interval_ms(*timeout) > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be less than 24 days")));
	if (name != NULL && (is_blank(name) || strlen(name) > NAMEDATALEN - 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("step name must be 1 to %d characters long", NAMEDATALEN - 1)));
}

static void
duplicate_step_name(const char *name, const char *gid)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("step name \"%s\" is already used in saga \"%s\"", name, gid)));
}

Datum
saga_add_step(PG_FUNCTION_ARGS)
{
	SagaCall cx;
	SagaRow		row;
	BuildingSaga *built;
	char	   *gid = required_text(fcinfo, 0, "gid");
	char	   *target = required_text(fcinfo, 1, "target");
	char	   *action = required_text(fcinfo, 2, "action");
	char	   *compensation = optional_text(fcinfo, 3);
	char	   *confirm = optional_text(fcinfo, 4);
	char	   *name = optional_text(fcinfo, 5);
	ArrayType  *after;
	int			number;
	bool		isnull;
	Oid			argtypes[11] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, INT4ARRAYOID, INT8OID, INT4OID, INTERVALOID};
	Datum		args[11];
	char		nulls[11];

	check_step_values(action, PG_ARGISNULL(7) ? NULL : &(int64) {PG_GETARG_INT64(7)},
					  PG_ARGISNULL(8) ? NULL : &(int32) {PG_GETARG_INT32(8)},
					  PG_ARGISNULL(9) ? NULL : &(Datum) {PG_GETARG_DATUM(9)}, name);

	call_begin(&cx);
	built = lookup_for_building(&cx, gid, &row);
	if (row.status != SAGA_BUILDING)
		wrong_state(&row, "Steps can be added only while a saga is building.");
	check_mode_rules(row.mode, compensation, confirm);
	target_check_usable(target, row.owner);

	if (built)
	{
		number = built->nsteps + 1;
		if (name == NULL)
			name = psprintf("step%d", number);
		if (building_has_step(built, name))
			duplicate_step_name(name, gid);
	}
	else
	{
		/* the next number, and whether the given name is taken, at once */
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		vals[2] = {Int64GetDatum(row.id), (Datum) 0};
		char		valnulls[2] = {' ', 'n'};

		if (name != NULL)
		{
			vals[1] = CStringGetTextDatum(name);
			valnulls[1] = ' ';
		}
		if (store_run("SELECT n, EXISTS (SELECT 1 FROM saga.gtx_step "
					"WHERE gtx_id = $1 AND name = COALESCE($2, 'step' || n)) "
					"FROM (SELECT COALESCE(max(step), 0) + 1 AS n "
					"FROM saga.gtx_step WHERE gtx_id = $1) AS next",
					2, types, vals, valnulls, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "pg_saga: could not count steps");
		number = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (name == NULL)
			name = psprintf("step%d", number);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
			duplicate_step_name(name, gid);
	}
	check_step_ops(target, row.mode, action, compensation, confirm,
				   strchr(action, '$') || (compensation && strchr(compensation, '$')) ||
				   (confirm && strchr(confirm, '$')) ? saga_nargs(row.id) : -1,
				   name, !PG_ARGISNULL(7));
	if (built == NULL && target_kind(target) == TARGET_HTTP)
		refuse_http_without_saga_key(row.id, gid, target);
	after = resolve_after(fcinfo, 6, row.id, number, name, gid);

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(row.id);
	args[1] = Int32GetDatum(number);
	args[2] = CStringGetTextDatum(name);
	args[3] = CStringGetTextDatum(target);
	args[4] = CStringGetTextDatum(action);
	args[5] = text_or_null(compensation, nulls, 5);
	args[6] = text_or_null(confirm, nulls, 6);
	args[7] = PointerGetDatum(after);
	args[8] = arg_or_null(fcinfo, 7, nulls, 8);
	args[9] = arg_or_null(fcinfo, 8, nulls, 9);
	args[10] = arg_or_null(fcinfo, 9, nulls, 10);
	if (store_run("INSERT INTO saga.gtx_step (gtx_id, step, name, target, action, "
							  "compensation, confirm, after_steps, expect_rows, max_attempts, timeout) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
							  11, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "pg_saga: could not add step");
	if (built)
		building_add_step(built, name);
	call_end(&cx);
	PG_RETURN_INT32(number);
}

/* ---- saga.submit ---- */

Datum
saga_submit(PG_FUNCTION_ARGS)
{
	SagaCall cx;
	SagaRow		row;
	char	   *gid = required_text(fcinfo, 0, "gid");
	Oid			idtype[1] = {INT8OID};
	Datum		idarg[1];

	call_begin(&cx);
	(void) lookup_for_building(&cx, gid, &row);
	if (row.status != SAGA_BUILDING)
		wrong_state(&row, "Only a saga that is building can be submitted.");
	idarg[0] = Int64GetDatum(row.id);
	/* with a timeout, a trigger stamps submitted_at and the deadline at commit */
	if (store_run("UPDATE saga.gtx SET status = 'pending', "
				"submitted_at = pg_catalog.clock_timestamp() WHERE id = $1 "
				"AND EXISTS (SELECT 1 FROM saga.gtx_step WHERE gtx_id = $1)",
				1, idtype, idarg, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_saga: could not submit saga");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("saga \"%s\" has no steps", gid),
				 errhint("Add steps with saga.add_step() before submitting.")));
	if (!schema_derives_history())
		add_event(&row, 0, "submitted", NULL);
	forget_building(gid);
	call_end(&cx);
	saga_wake_worker_at_commit(row.id, true);
	PG_RETURN_VOID();
}

/* ---- saga.start: a whole saga in one statement ---- */

/* The fields of type saga.step, in order (see the install script). */
enum
{
	STEP_TARGET, STEP_ACTION, STEP_COMPENSATION, STEP_CONFIRM, STEP_NAME, STEP_AFTER,
	STEP_EXPECT_ROWS, STEP_MAX_ATTEMPTS, STEP_TIMEOUT, STEP_NFIELDS
};

/* A step of saga.start(), checked, as the columns of saga.gtx_step take it. */
typedef struct StartStep
{
	Datum		values[STEP_NFIELDS];
	bool		isnull[STEP_NFIELDS];
	char	   *name;
	char	   *after;			/* step numbers, as int[] text */
} StartStep;

static char *
field_text(StartStep *st, int field)
{
	return st->isnull[field] ? NULL : TextDatumGetCString(st->values[field]);
}

/* after of step number (1-based) as step numbers; names index earlier steps. */
static char *
resolve_start_after(StartStep *steps, int number, const char *gid)
{
	StartStep  *st = &steps[number - 1];
	StringInfoData buf;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	int			i,
				k;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (st->isnull[STEP_AFTER])
	{
		if (number > 1)
			appendStringInfo(&buf, "%d", number - 1);
		appendStringInfoChar(&buf, '}');
		return buf.data;
	}
	deconstruct_array(DatumGetArrayTypeP(st->values[STEP_AFTER]), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &elem_nulls, &nelems);
	for (i = 0; i < nelems; i++)
	{
		char	   *dep;

		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("after must not contain nulls")));
		dep = TextDatumGetCString(elems[i]);
		if (strcmp(dep, st->name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("step \"%s\" cannot come after itself", st->name),
					 errdetail("Dependencies must not form a cycle.")));
		for (k = 0; k < number - 1; k++)
			if (strcmp(steps[k].name, dep) == 0)
				break;
		if (k == number - 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("step \"%s\" named in after does not exist in saga \"%s\"", dep, gid),
					 errhint("A step can come only after steps added before it.")));
		appendStringInfo(&buf, "%s%d", i > 0 ? "," : "", k + 1);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Reads and checks the elements of steps, with the rules of add_step(): a
 * step's own values, the mode's, the target and its user mapping for
 * owner (unless owner is InvalidOid: a definition), the values ($n) of a
 * saga of nargs of them, the names and what they come after.
 */
static StartStep *
read_start_steps(ArrayType *arr, SagaMode mode, Oid owner, const char *gid, int nargs,
				 int *nsteps)
{
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n,
				i;
	StartStep  *steps;
	TupleDesc	desc = NULL;
	const char *checked_target = NULL;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &elem_nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("saga \"%s\" has no steps", gid ? gid : "(new)"),
				 errhint("Pass at least one saga.step() to saga.start().")));
	steps = palloc0(sizeof(StartStep) * n);
	for (i = 0; i < n; i++)
	{
		StartStep  *st = &steps[i];
		HeapTupleHeader td;
		HeapTupleData tuple;
		char	   *target;
		int			k;

		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("steps must not contain nulls")));
		td = DatumGetHeapTupleHeader(elems[i]);
		if (desc == NULL)
			desc = lookup_rowtype_tupdesc_copy(HeapTupleHeaderGetTypeId(td),
											   HeapTupleHeaderGetTypMod(td));
		if (desc->natts != STEP_NFIELDS)
			elog(ERROR, "pg_saga: saga.step has %d fields, expected %d", desc->natts, STEP_NFIELDS);
		tuple.t_len = HeapTupleHeaderGetDatumLength(td);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = td;
		heap_deform_tuple(&tuple, desc, st->values, st->isnull);

		if (st->isnull[STEP_TARGET])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("target must not be null")));
		if (st->isnull[STEP_ACTION])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("action must not be null")));
		st->name = field_text(st, STEP_NAME);
		check_step_values(field_text(st, STEP_ACTION),
						  st->isnull[STEP_EXPECT_ROWS] ? NULL : &(int64) {DatumGetInt64(st->values[STEP_EXPECT_ROWS])},
						  st->isnull[STEP_MAX_ATTEMPTS] ? NULL : &(int32) {DatumGetInt32(st->values[STEP_MAX_ATTEMPTS])},
						  st->isnull[STEP_TIMEOUT] ? NULL : &st->values[STEP_TIMEOUT],
						  st->name);
		check_mode_rules(mode, field_text(st, STEP_COMPENSATION), field_text(st, STEP_CONFIRM));
		target = field_text(st, STEP_TARGET);
		/* a saga's steps mostly share a few targets: check each once in a row */
		if (OidIsValid(owner) && (checked_target == NULL || strcmp(checked_target, target) != 0))
			target_check_usable(target, owner);
		checked_target = target;
		if (st->name == NULL)
			st->name = psprintf("step%d", i + 1);
		check_step_ops(target, mode, field_text(st, STEP_ACTION),
					   field_text(st, STEP_COMPENSATION), field_text(st, STEP_CONFIRM),
					   nargs, st->name, !st->isnull[STEP_EXPECT_ROWS]);
		for (k = 0; k < i; k++)
			if (strcmp(steps[k].name, st->name) == 0)
				duplicate_step_name(st->name, gid ? gid : "(new)");
		st->after = resolve_start_after(steps, i + 1, gid ? gid : "(new)");
	}
	*nsteps = n;
	return steps;
}

/* ---- saga.step: a step as a value ---- */

/*
 * The row type saga.step, as the caller's expression expects it; kept in
 * fn_extra, since a statement may call saga.step() once per step.
 */
static TupleDesc
step_row_desc(FunctionCallInfo fcinfo)
{
	TupleDesc	desc = (TupleDesc) fcinfo->flinfo->fn_extra;
	MemoryContext old;

	if (desc != NULL)
		return desc;
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "pg_saga: saga.step() must return a row type");
	if (desc->natts != STEP_NFIELDS || PG_NARGS() != STEP_NFIELDS)
		elog(ERROR, "pg_saga: saga.step has %d fields and %d arguments, expected %d",
			 desc->natts, PG_NARGS(), STEP_NFIELDS);
	desc = BlessTupleDesc(desc);
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = desc;
	return desc;
}

/*
 * saga.step(target, action, compensation, confirm, name, after,
 * expect_rows, max_attempts, timeout): its arguments as a row of type
 * saga.step, in order, for saga.start() to check.  With requests (the
 * variant for HTTP targets) the action, compensation and confirm are
 * requests, kept as their JSON text.  An SQL function until 1.8, which
 * PostgreSQL parsed, planned and ran under a GUC nest level of its own at
 * every call: a fifth of the CPU of a 2-step saga.start() statement.
 */
static Datum
step_value(FunctionCallInfo fcinfo, bool requests)
{
	TupleDesc	desc = step_row_desc(fcinfo);
	Datum		values[STEP_NFIELDS];
	bool		isnull[STEP_NFIELDS];
	int			i;

	for (i = 0; i < STEP_NFIELDS; i++)
	{
		isnull[i] = PG_ARGISNULL(i);
		values[i] = isnull[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
		if (requests && !isnull[i] && i >= STEP_ACTION && i <= STEP_CONFIRM)
		{
			Jsonb	   *jb = DatumGetJsonbP(values[i]);

			values[i] = CStringGetTextDatum(JsonbToCString(NULL, &jb->root, VARSIZE(jb)));
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, isnull)));
}

PG_FUNCTION_INFO_V1(saga_step_value);

Datum
saga_step_value(PG_FUNCTION_ARGS)
{
	return step_value(fcinfo, false);
}

PG_FUNCTION_INFO_V1(saga_step_request_value);

Datum
saga_step_request_value(PG_FUNCTION_ARGS)
{
	return step_value(fcinfo, true);
}

/* One array of the steps' values of field (or of strs if given), for unnest(). */
static Datum
start_column(StartStep *steps, int n, int field, Oid type, char **strs)
{
	Datum	   *values = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			i;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	for (i = 0; i < n; i++)
	{
		if (strs)
		{
			values[i] = CStringGetTextDatum(strs[i]);
			nulls[i] = false;
		}
		else
		{
			values[i] = steps[i].values[field];
			nulls[i] = steps[i].isnull[field];
		}
	}
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

/*
 * The statement of saga.start(): the saga, its steps, and (extra,
 * START_ARGS_SQL or "") its values, in one statement; and (event,
 * START_EVENT_SQL or "") its submitted event, which saga.history derives
 * from submitted_at since 1.6.
 */
#define START_SQL(defcols, defvals, extra, event) \
	"WITH g AS (" \
	" INSERT INTO saga.gtx (gid, mode, owner, payload, timeout, status, submitted_at" defcols ")" \
	" VALUES (COALESCE($1, pg_catalog.gen_random_uuid()::text), $2, $3, $4, $5," \
	" 'pending', pg_catalog.clock_timestamp()" defvals ")" \
	" ON CONFLICT (gid) DO NOTHING RETURNING gid, id)," \
	" s AS (" \
	" INSERT INTO saga.gtx_step (gtx_id, step, name, target, action, compensation," \
	" confirm, after_steps, expect_rows, max_attempts, timeout)" \
	" SELECT g.id, u.n, u.name, u.target, u.action, u.compensation, u.confirm," \
	" u.after::int[], u.expect_rows, u.max_attempts, u.timeout" \
	" FROM g, unnest($6, $7, $8, $9, $10, $11, $12, $13, $14) WITH ORDINALITY" \
	" AS u (name, target, action, compensation, confirm, after, expect_rows," \
	" max_attempts, timeout, n))" \
	extra event \
	" SELECT gid, id FROM g"
/* the definition and its version ($15, $16), for a saga started from one (1.5) */
#define START_DEF_COLS ", definition, definition_version"
#define START_DEF_VALS ", $15, $16"
#define START_ARGS_SQL ", a AS (INSERT INTO saga.gtx_args (gtx_id, args) SELECT g.id, $17 FROM g)"
#define START_EVENT_SQL \
	", e AS (INSERT INTO saga.gtx_event (gtx_id, step, event) SELECT g.id, NULL, 'submitted' FROM g)"

/* The statement that writes a saga: from a definition or not, with values or not. */
static const char *
start_statement(bool from_definition, bool with_values)
{
	if (!schema_derives_history())
	{
		/* before 1.6, the submitted event is a row; definitions came with 1.5 */
		if (from_definition)
			return with_values ?
				START_SQL(START_DEF_COLS, START_DEF_VALS, START_ARGS_SQL, START_EVENT_SQL) :
				START_SQL(START_DEF_COLS, START_DEF_VALS, "", START_EVENT_SQL);
		return with_values ? START_SQL("", "", START_ARGS_SQL, START_EVENT_SQL) :
			START_SQL("", "", "", START_EVENT_SQL);
	}
	if (from_definition)
		return with_values ? START_SQL(START_DEF_COLS, START_DEF_VALS, START_ARGS_SQL, "") :
			START_SQL(START_DEF_COLS, START_DEF_VALS, "", "");
	return with_values ? START_SQL("", "", START_ARGS_SQL, "") : START_SQL("", "", "", "");
}

/*
 * saga.start(steps, gid, mode, timeout, payload, args): begin(), one add_step()
 * per element and submit(), with their checks, in one SQL statement that
 * writes the saga, its steps and its submitted event.  A saga with a
 * timeout gets its deadline at commit, from a trigger on the insert.
 * definition (NULL if none) and version say what it was started from.
 */
static Datum
start_saga(FunctionCallInfo fcinfo, const char *definition, int32 version)
{
	SagaCall cx;
	char	   *gid = optional_text(fcinfo, 1);
	char	   *mode_name = required_text(fcinfo, 2, "mode");
	SagaMode	mode;
	StartStep  *steps;
	int			n,
				i;
	char	  **names;
	char	  **afters;
	Oid			argtypes[17] = {TEXTOID, TEXTOID, OIDOID, JSONBOID, INTERVALOID,
		TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, INT8ARRAYOID, INT4ARRAYOID, INTERVALARRAYOID,
	TEXTOID, INT4OID, TEXTARRAYOID};
	Datum		args[17];
	char		nulls[17];
	char	   *result;
	int64		id;
	bool		isnull;
	ArrayType  *values;
	int			nvalues;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("steps must not be null")));
	mode = check_saga_args(fcinfo, gid, mode_name, 3);
	values = read_args(fcinfo, 5, mode, &nvalues);
	steps = read_start_steps(PG_GETARG_ARRAYTYPE_P(0), mode, GetUserId(), gid, nvalues, &n);

	names = palloc(sizeof(char *) * n);
	afters = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		names[i] = steps[i].name;
		afters[i] = steps[i].after;
	}
	memset(nulls, ' ', sizeof(nulls));
	call_begin(&cx);
	saga_row_args(fcinfo, &cx, gid, mode_name, 3, 4, args, nulls);
	args[5] = start_column(steps, n, -1, TEXTOID, names);
	args[6] = start_column(steps, n, STEP_TARGET, TEXTOID, NULL);
	args[7] = start_column(steps, n, STEP_ACTION, TEXTOID, NULL);
	args[8] = start_column(steps, n, STEP_COMPENSATION, TEXTOID, NULL);
	args[9] = start_column(steps, n, STEP_CONFIRM, TEXTOID, NULL);
	args[10] = start_column(steps, n, -1, TEXTOID, afters);
	args[11] = start_column(steps, n, STEP_EXPECT_ROWS, INT8OID, NULL);
	args[12] = start_column(steps, n, STEP_MAX_ATTEMPTS, INT4OID, NULL);
	args[13] = start_column(steps, n, STEP_TIMEOUT, INTERVALOID, NULL);

	args[14] = definition ? CStringGetTextDatum(definition) : (Datum) 0;
	nulls[14] = definition ? ' ' : 'n';
	args[15] = Int32GetDatum(version);
	nulls[15] = definition ? ' ' : 'n';

	/* a duplicate gid inserts nothing, so the steps, values and event do not either */
	args[16] = values ? PointerGetDatum(values) : (Datum) 0;
	nulls[16] = values ? ' ' : 'n';
	if (store_run(start_statement(definition != NULL, values != NULL),
				  17, argtypes, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not start saga");
	if (SPI_processed == 0)
		duplicate_gid(gid);
	result = MemoryContextStrdup(CurTransactionContext,
								 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	call_end(&cx);
	saga_wake_worker_at_commit(id, true);
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

Datum
saga_start(PG_FUNCTION_ARGS)
{
	return start_saga(fcinfo, NULL, 0);
}

/* ---- saga.status and saga.wait ---- */

Datum
saga_status(PG_FUNCTION_ARGS)
{
	SagaCall cx;
	SagaRow		row;
	char	   *gid = required_text(fcinfo, 0, "gid");

	call_begin(&cx);
	lookup_gtx(&cx, gid, false, &row);
	call_end(&cx);
	PG_RETURN_TEXT_P(cstring_to_text(saga_status_name(live_status(row.id, row.status))));
}

/*
 * The results of the saga's steps so far, one key per step whose action
 * finished, as saga.status sees the saga.
 */
Datum
saga_result(PG_FUNCTION_ARGS)
{
	SagaCall	cx;
	SagaRow		row;
	char	   *gid = required_text(fcinfo, 0, "gid");
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	MemoryContext caller_cxt = CurrentMemoryContext;
	char	   *results;

	call_begin(&cx);
	lookup_gtx(&cx, gid, false, &row);
	args[0] = Int64GetDatum(row.id);
	/* since 1.6 a result of no rows may still be in the worker's memory only */
	if (store_run(schema_derives_history() ?
				  "SELECT COALESCE(pg_catalog.jsonb_object_agg(name, result), '{}'::jsonb)::text "
				  "FROM saga._steps WHERE gtx_id = $1 AND result IS NOT NULL" :
				  "SELECT COALESCE(pg_catalog.jsonb_object_agg(name, result), '{}'::jsonb)::text "
				  "FROM saga.gtx_step WHERE gtx_id = $1 AND result IS NOT NULL",
				  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_saga: could not read the results of saga \"%s\"", gid);
	results = MemoryContextStrdup(caller_cxt,
								  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	call_end(&cx);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(results)));
}

/*
 * saga.wait()'s wait for saga gid (id) to become final, from the status read
 * when saga_finals_published() said finals_before, until deadline: the
 * status then.  Registered as a waiter meanwhile.
 */
static SagaStatus
wait_for_final(const char *gid, int64 id, SagaStatus read, uint64 finals_before,
			   TimestampTz deadline)
{
	volatile SagaStatus status = read;

	saga_wait_register(id);
	PG_TRY();
	{
		/* a saga finished between the read and the registration: read again */
		if (saga_finals_published() != finals_before)
			status = saga_status_from_name(read_status(gid));
		while (!saga_is_final(status))
		{
			long		remaining;
			int			handed;

			remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (remaining <= 0)
				break;
			/* the worker sets the latch when this saga is final */
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(remaining, 1000), saga_wait_event(SAGA_WAIT_SAGA));
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();

			/*
			 * The status the worker committed, or the row's: a failed saga
			 * may have been retried since (the only final status that does
			 * not stay), the row says whether it was.
			 */
			handed = saga_wait_final_status();
			status = handed >= 0 && handed != SAGA_FAILED ? (SagaStatus) handed :
				saga_status_from_name(read_status(gid));
		}
	}
	PG_CATCH();
	{
		saga_wait_unregister();
		PG_RE_THROW();
	}
	PG_END_TRY();
	saga_wait_unregister();
	return status;
}

Datum
saga_wait(PG_FUNCTION_ARGS)
{
	SagaCall cx;
	SagaRow		row;
	char	   *gid = required_text(fcinfo, 0, "gid");
	TimestampTz deadline;
	uint64		finals_before;
	SagaStatus	status;
	char	   *status_name;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null")));
	if (interval_ms(PG_GETARG_DATUM(1)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("saga.wait() cannot be used in a repeatable read or serializable transaction"),
				 errdetail("Its snapshot would never show the saga finishing.")));
	deadline = GetCurrentTimestamp() + interval_ms(PG_GETARG_DATUM(1)) * 1000;

	/* what the worker finished before the row is read, the read shows */
	finals_before = saga_finals_published();
	call_begin(&cx);
	lookup_gtx(&cx, gid, false, &row);
	if (row.status == SAGA_PENDING && TransactionIdIsCurrentTransactionId(row.xmin))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("saga \"%s\" was submitted in this transaction", gid),
				 errhint("Commit first: a saga runs only once its submitting transaction commits.")));

	status = row.status;
	if (!saga_is_final(status))
		status = wait_for_final(gid, row.id, status, finals_before, deadline);
	/* timed out: say what the saga is doing, not what its row says */
	status_name = MemoryContextStrdup(CurTransactionContext,
									  saga_status_name(live_status(row.id, status)));
	call_end(&cx);
	PG_RETURN_TEXT_P(cstring_to_text(status_name));
}

/* ---- saga.abort and saga.retry ---- */

Datum
saga_abort(PG_FUNCTION_ARGS)
{
	SagaCall cx;
	SagaRow		row;
	char	   *gid = required_text(fcinfo, 0, "gid");
	char	   *reason = optional_text(fcinfo, 1);
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};

	call_begin(&cx);
	lookup_gtx(&cx, gid, true, &row);
	args[0] = Int64GetDatum(row.id);
	args[1] = text_or_null(reason, nulls, 1);
	switch (row.status)
	{
		case SAGA_BUILDING:
			/* nothing ran: discard it */
			if (store_run("UPDATE saga.gtx SET status = 'aborted', "
									  "finished_at = pg_catalog.clock_timestamp(), "
									  "abort_requested = true, abort_reason = $2, "
									  "last_error = COALESCE('aborted: ' || $2, 'aborted before submit') "
									  "WHERE id = $1",
									  2, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "pg_saga: could not abort saga");
			if (store_run("UPDATE saga.gtx_step SET status = 'skipped' WHERE gtx_id = $1",
									  1, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "pg_saga: could not abort saga");
			add_event(&row, 0, "aborted", "discarded before submit");
			forget_building(gid);
			break;
		case SAGA_PENDING:
		case SAGA_RUNNING:
			if (row.mode == MODE_MSG)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("msg saga \"%s\" cannot be aborted once submitted", gid),
						 errdetail("A msg saga is delivered until done: nothing can be rolled back.")));
			if (store_run("UPDATE saga.gtx SET abort_requested = true, abort_reason = $2 "
									  "WHERE id = $1",
									  2, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "pg_saga: could not abort saga");
			add_event(&row, 0, "abort_requested", reason);
			saga_wake_worker_at_commit(row.id, false);
			break;
		default:
			wrong_state(&row, "Only a saga that is building, pending or running can be aborted; this one is past its decision.");
	}
	call_end(&cx);
	PG_RETURN_VOID();
}

Datum
saga_retry(PG_FUNCTION_ARGS)
{
	SagaCall cx;
	SagaRow		row;
	char	   *gid = required_text(fcinfo, 0, "gid");
	Oid			idtype[2] = {INT8OID, TEXTOID};
	Datum		idarg[2];

	call_begin(&cx);
	lookup_gtx(&cx, gid, true, &row);
	if (row.status != SAGA_FAILED)
		wrong_state(&row, "Only a failed saga can be retried.");
	idarg[0] = Int64GetDatum(row.id);
	/* it resumes its phase, with the status the worker gives that phase */
	idarg[1] = CStringGetTextDatum(saga_status_name(saga_phase_status(row.phase)));
	if (store_run("UPDATE saga.gtx SET finished_at = NULL, status = $2 WHERE id = $1",
				  2, idtype, idarg, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_saga: could not retry saga");
	/* fresh attempt counters; a refused delivery is delivered again */
	if (store_run("UPDATE saga.gtx_step s SET attempts = 0, next_attempt_at = NULL, "
							  "finished_at = NULL, "
							  "status = CASE WHEN s.status = 'failed' AND g.mode = 'msg' "
							  "THEN 'pending' ELSE s.status END "
							  "FROM saga.gtx g WHERE g.id = s.gtx_id AND s.gtx_id = $1 "
							  "AND s.status NOT IN ('confirmed', 'compensated', 'skipped') "
							  "AND NOT (s.status = 'succeeded' AND g.phase = 'forward')",
							  1, idtype, idarg, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_saga: could not retry saga");
	add_event(&row, 0, "retry", NULL);
	call_end(&cx);
	saga_wake_worker_at_commit(row.id, false);
	PG_RETURN_VOID();
}

/* ---- saga.purge ---- */

/* built once: store_run keeps plans by the address of their text */
static const char *purge_sql = NULL;

Datum
saga_purge(PG_FUNCTION_ARGS)
{
	SagaCall cx;
	Oid			argtypes[3] = {INTERVALOID, OIDOID, BOOLOID};
	Datum		args[3];
	int64		count;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("older_than must not be null")));
	if (interval_ms(PG_GETARG_DATUM(0)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative")));

	if (purge_sql == NULL)
		purge_sql = MemoryContextStrdup(TopMemoryContext,
										psprintf("DELETE FROM saga.gtx WHERE status IN %s "
												 "AND finished_at < pg_catalog.now() - $1 "
												 "AND ($3 OR owner = $2)",
												 saga_status_sql_list(true)));
	call_begin(&cx);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = ObjectIdGetDatum(cx.caller);
	args[2] = BoolGetDatum(is_saga_admin(cx.caller));
	if (store_run(purge_sql, 3, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "pg_saga: could not purge sagas");
	count = (int64) SPI_processed;
	call_end(&cx);
	PG_RETURN_INT64(count);
}

/* ---- saga.setup_participant ---- */

/*
 * Sends pg_saga_participant.sql to the target, and with at_tables (since
 * 1.4; the one-argument form of earlier versions calls this too) enables
 * those tables for mode at there, all in one remote transaction: a table
 * that cannot be enabled leaves nothing done.
 */
Datum
saga_setup_participant(PG_FUNCTION_ARGS)
{
	char	   *target = required_text(fcinfo, 0, "target");
	Oid			caller = GetUserId();
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, barrier_participant_sql());
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
	{
		Datum	   *elems;
		bool	   *elem_nulls;
		int			nelems;
		int			i;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elem_nulls, &nelems);
		for (i = 0; i < nelems; i++)
		{
			if (elem_nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("at_tables must not contain nulls")));
			appendStringInfo(&sql, "\n;SELECT saga_participant.at_enable(%s);",
							 quote_literal_cstr(TextDatumGetCString(elems[i])));
		}
	}
	if (target_kind(target) == TARGET_HTTP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target \"%s\" is an HTTP target: it has no participant objects", target),
				 errhint("A service keeps the barrier's rules itself, by its requests' Idempotency-Key; nothing needs setting up.")));
	target_check_usable(target, caller);
	remote_exec_in_backend(target, caller, sql.data);
	PG_RETURN_VOID();
}

/* ---- definitions: a saga's steps stored once, started by name ---- */

PG_FUNCTION_INFO_V1(saga_define);
PG_FUNCTION_INFO_V1(saga_start_definition);
PG_FUNCTION_INFO_V1(saga_drop_definition);

/*
 * The owner of definition name, InvalidOid if there is none; refuses a
 * caller who may not change it (its owner, superusers and saga_admin
 * members may).
 */
static Oid
definition_owner(SagaCall *cx, const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	bool		isnull;
	Oid			owner;

	if (store_run("SELECT owner FROM saga.definition WHERE name = $1 LIMIT 1",
				  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read definition \"%s\"", name);
	if (SPI_processed == 0)
		return InvalidOid;
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (owner != cx->caller && !is_saga_admin(cx->caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of definition \"%s\"", name),
				 errhint("Only its owner, a superuser or a member of saga_admin may redefine or drop it.")));
	return owner;
}

/*
 * saga.define(name, steps, mode, timeout): stores the steps under name as
 * its next version (1 for a new name) and returns that version.  The
 * checks of saga.start but those that depend on the role that starts it
 * (targets, mappings) and on its values (how many), made at start.
 */
Datum
saga_define(PG_FUNCTION_ARGS)
{
	SagaCall	cx;
	char	   *name = required_text(fcinfo, 0, "name");
	char	   *mode_name = required_text(fcinfo, 2, "mode");
	SagaMode	mode;
	int			n;
	Oid			owner;
	Oid			argtypes[5] = {TEXTOID, OIDOID, TEXTOID, INTERVALOID, InvalidOid};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int32		version;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("steps must not be null")));
	if (is_blank(name) || strlen(name) > NAMEDATALEN - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("definition name must be 1 to %d characters long", NAMEDATALEN - 1)));
	mode = check_saga_args(fcinfo, NULL, mode_name, 3);
	(void) read_start_steps(PG_GETARG_ARRAYTYPE_P(1), mode, InvalidOid, name, INT_MAX, &n);

	call_begin(&cx);
	owner = definition_owner(&cx, name);
	args[0] = CStringGetTextDatum(name);
	args[1] = ObjectIdGetDatum(OidIsValid(owner) ? owner : cx.caller);
	args[2] = CStringGetTextDatum(mode_name);
	args[3] = arg_or_null(fcinfo, 3, nulls, 3);
	args[4] = PG_GETARG_DATUM(1);
	argtypes[4] = get_fn_expr_argtype(fcinfo->flinfo, 1);
	if (store_run("INSERT INTO saga.definition (name, version, owner, mode, timeout, steps) "
				  "SELECT $1, COALESCE(pg_catalog.max(version), 0) + 1, $2, $3, $4, $5 "
				  "FROM saga.definition WHERE name = $1 RETURNING version",
				  5, argtypes, args, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "pg_saga: could not define \"%s\"", name);
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	call_end(&cx);
	PG_RETURN_INT32(version);
}

/*
 * saga.start(definition, args, gid, timeout, payload): saga.start() with
 * the steps and mode of the newest version of definition, as the caller
 * (its mappings, its USAGE), then the saga notes which version it runs.
 */
Datum
saga_start_definition(PG_FUNCTION_ARGS)
{
	SagaCall	cx;
	char	   *name = required_text(fcinfo, 0, "definition");
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	MemoryContext caller_cxt = CurrentMemoryContext;
	Datum		steps;
	char	   *mode_name;
	Datum		timeout = (Datum) 0;
	bool		timeout_null;
	int32		version;
	bool		isnull;
	LOCAL_FCINFO(start, 6);

	call_begin(&cx);
	if (store_run("SELECT steps, mode, timeout, version FROM saga.definition "
				  "WHERE name = $1 ORDER BY version DESC LIMIT 1",
				  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read definition \"%s\"", name);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("saga definition \"%s\" does not exist", name),
				 errhint("Define it with saga.define().")));
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(caller_cxt);

		steps = datumCopy(SPI_getbinval(tup, desc, 1, &isnull), false, -1);
		mode_name = SPI_getvalue(tup, desc, 2);
		timeout = SPI_getbinval(tup, desc, 3, &timeout_null);
		if (!timeout_null)
			timeout = datumCopy(timeout, false, sizeof(Interval));
		version = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		MemoryContextSwitchTo(old);
	}
	call_end(&cx);

	/* saga.start(steps, gid, mode, timeout, payload, args), as the caller */
	InitFunctionCallInfoData(*start, fcinfo->flinfo, 6, fcinfo->fncollation, NULL, NULL);
	start->args[0].value = steps;
	start->args[0].isnull = false;
	start->args[1] = fcinfo->args[2];
	start->args[2].value = CStringGetTextDatum(mode_name);
	start->args[2].isnull = false;
	if (!PG_ARGISNULL(3))
		start->args[3] = fcinfo->args[3];
	else
	{
		start->args[3].value = timeout;
		start->args[3].isnull = timeout_null;
	}
	start->args[4] = fcinfo->args[4];
	start->args[5] = fcinfo->args[1];
	PG_RETURN_DATUM(start_saga(start, name, version));
}

/* saga.drop_definition(name): drops every version; started sagas run on. */
Datum
saga_drop_definition(PG_FUNCTION_ARGS)
{
	SagaCall	cx;
	char	   *name = required_text(fcinfo, 0, "name");
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};

	call_begin(&cx);
	if (!OidIsValid(definition_owner(&cx, name)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("saga definition \"%s\" does not exist", name)));
	if (store_run("DELETE FROM saga.definition WHERE name = $1",
				  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "pg_saga: could not drop definition \"%s\"", name);
	call_end(&cx);
	PG_RETURN_VOID();
}
