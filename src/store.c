/*-------------------------------------------------------------------------
 *
 * store.c
 *		The worker's reads and writes of the extension's tables, with SPI.
 *
 * The extension's own tables (saga.gtx and its kin), not PostgreSQL's
 * catalog (the file was catalog.c, its functions catalog_*).
 *
 * Every function here runs inside the worker's transaction of the moment
 * (SPI connected, snapshot pushed).  The worker writes all the state
 * changes of one loop turn in one transaction, and sends nothing to a
 * participant before that transaction commits: what it is about to do is
 * durable before it happens.
 *
 * Statements are prepared once and kept for the worker's life.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_saga.h"
#include "barrier.h"
#include "http_request.h"
#include "store.h"

static SPIPlanPtr plan_coordinator = NULL;
static SPIPlanPtr plan_live_after = NULL;
static SPIPlanPtr plan_live_ids = NULL;
static SPIPlanPtr plan_aborts_upto = NULL;
static SPIPlanPtr plan_steps = NULL;
static SPIPlanPtr plan_write_saga = NULL;
static SPIPlanPtr plan_write_saga_unless_aborted = NULL;
static SPIPlanPtr plan_write_step = NULL;
static SPIPlanPtr plan_write_event = NULL;

/*
 * Whether saga.gtx_step has the result columns (pg_saga 1.4).  The library
 * serves earlier versions too, until ALTER EXTENSION UPDATE adds them; the
 * worker then reads and writes results from its next turn on.
 */
static bool has_result_columns = false;

/*
 * Whether saga.gtx has saga_key, and saga.barrier_forget exists (pg_saga
 * 1.5); likewise read from the next turn after the update.
 */
static bool has_saga_key = false;

/* Whether saga.gtx_args exists (pg_saga 1.5, bound values) */
static bool has_args = false;

/*
 * Whether the views show progress from shared memory and saga.history
 * derives the ordinary events (pg_saga 1.6, saga._events): until then the
 * worker writes all progress and every event, as before.
 */
static bool has_derived_history = false;

/*
 * The highest saga id when this worker started.  A saga up to it may have
 * been started by the worker before a crash that lost that start (it is
 * committed without a flush), so its steps may have taken effect though
 * the saga reads as pending.
 */
static int64 startup_max_id = 0;

/* ---- statements prepared once per process ---- */

static SPIPlanPtr
keep_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "pg_saga: could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

typedef struct KeptPlan
{
	const char *sql;			/* hash key: the text's address */
	SPIPlanPtr	plan;
} KeptPlan;

static HTAB *kept_plans = NULL;

/*
 * Runs sql with SPI, prepared the first time this process runs it and kept:
 * a saga submitted by a client costs a dozen statements, and parsing and
 * planning them each time was most of its cost.  Plans are keyed by the
 * address of their text, so sql must be a string literal or a string built
 * once for the life of the process.
 */
int
store_run(const char *sql, int nargs, Oid *argtypes, Datum *args, const char *nulls,
		  bool read_only, long count)
{
	KeptPlan   *kept;
	bool		found;

	if (kept_plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(const char *);
		ctl.entrysize = sizeof(KeptPlan);
		ctl.hcxt = TopMemoryContext;
		kept_plans = hash_create("pg_saga kept plans", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	kept = hash_search(kept_plans, &sql, HASH_FIND, NULL);
	if (kept == NULL)
	{
		SPIPlanPtr	plan = keep_plan(sql, nargs, argtypes);

		kept = hash_search(kept_plans, &sql, HASH_ENTER, &found);
		kept->plan = plan;
	}
	return SPI_execute_plan(kept->plan, args, nulls, read_only, count);
}

/*
 * What the worker reads of a saga; read_saga() knows the order.  The last
 * columns are the saga key, and its values' number and text, where the
 * schema has them (%s).
 */
#define SAGA_COLUMNS \
	"id, gid, mode, status, phase, owner, deadline, abort_requested, abort_reason, last_error, %s, %s, %s"

/*
 * Whether the worker stored events of the saga (anything but what the SQL
 * functions store: its submission, an abort request): then its history is
 * stored, not derived (see worker.c).  A saga submitted after this worker
 * started and still pending was never taken up before, so has none.
 */
#define SAGA_HISTORY_STORED_COLUMN \
	"CASE WHEN status = 'pending' AND id > " INT64_FORMAT " THEN false ELSE EXISTS (" \
	"SELECT FROM saga.gtx_event e WHERE e.gtx_id = gtx.id " \
	"AND e.event NOT IN ('submitted', 'abort_requested')) END"

#define SAGA_ARGS_COLUMNS \
	"(SELECT pg_catalog.cardinality(a.args) FROM saga.gtx_args a WHERE a.gtx_id = gtx.id), " \
	"(SELECT a.args::text FROM saga.gtx_args a WHERE a.gtx_id = gtx.id)"

/* the final status sets finished_at */
#define SAGA_WRITE_SQL \
	"UPDATE saga.gtx SET status = $2, phase = $3, last_error = $4, " \
	"finished_at = CASE WHEN $2 IN %s " \
	"THEN pg_catalog.clock_timestamp() END WHERE id = $1%s"

/* Has table relname of schema saga the column attname? */
static bool
schema_has_column(const char *relname, const char *attname)
{
	Oid			nsp = get_namespace_oid(SAGA_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;

	/* no schema: the extension is being dropped, which the turn notices */
	return OidIsValid(relid) && get_attnum(relid, attname) != InvalidAttrNumber;
}

static bool
schema_has_result_columns(void)
{
	return schema_has_column("gtx_step", "result");
}

/* saga.gtx.saga_key and saga.barrier_forget come in the same update */
static bool
schema_has_saga_key(void)
{
	return schema_has_column("gtx", "saga_key");
}

static bool
schema_has_relation(const char *relname)
{
	Oid			nsp = get_namespace_oid(SAGA_SCHEMA, true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid(relname, nsp));
}

static bool
schema_has_args(void)
{
	return schema_has_relation("gtx_args");
}

/* The statements that read sagas, for the schema there is. */
static void
prepare_saga_plans(void)
{
	Oid			ids_arg[1] = {INT8ARRAYOID};
	Oid			after_args[2] = {INT8OID, INT4OID};
	const char *live = saga_status_sql_list(false);
	char	   *columns;

	if (plan_live_after != NULL)
		SPI_freeplan(plan_live_after);
	if (plan_live_ids != NULL)
		SPI_freeplan(plan_live_ids);
	has_saga_key = schema_has_saga_key();
	has_args = schema_has_args();
	columns = psprintf(SAGA_COLUMNS, has_saga_key ? "saga_key" : "NULL::bigint",
					   has_args ? SAGA_ARGS_COLUMNS : "NULL::int, NULL::text",
					   psprintf(SAGA_HISTORY_STORED_COLUMN, startup_max_id));

	/*
	 * Unfinished sagas come from a partial index however much history the
	 * table keeps (gtx_unfinished_idx since 1.2, gtx_live_idx before), and
	 * always by a range or a list of ids: what the worker reads costs what
	 * it takes up, not what waits behind it.
	 */
	plan_live_after = keep_plan(psprintf(
		"SELECT %s FROM saga.gtx "
		"WHERE finished_at IS NULL AND status IN %s "
		"AND id > $1 ORDER BY id LIMIT $2", columns, live),
		2, after_args);
	plan_live_ids = keep_plan(psprintf(
		"SELECT %s FROM saga.gtx "
		"WHERE id = ANY ($1) AND status IN %s ORDER BY id", columns, live),
		1, ids_arg);
}

/* The statements that read and write steps, for the schema there is. */
static void
prepare_step_plans(void)
{
	Oid			ids_arg[1] = {INT8ARRAYOID};
	Oid			step_args[13] = {INT8OID, INT4OID, TEXTOID, BOOLOID, INT4OID,
		TIMESTAMPTZOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	BOOLOID, TEXTOID, TEXTOID};

	if (plan_steps != NULL)
		SPI_freeplan(plan_steps);
	if (plan_write_step != NULL)
		SPI_freeplan(plan_write_step);
	has_result_columns = schema_has_result_columns();
	plan_steps = keep_plan(psprintf(
		"SELECT gtx_id, step, name, target, action, compensation, confirm, after_steps::text, "
		"expect_rows, max_attempts, "
		"(EXTRACT(epoch FROM timeout) * 1000)::bigint, status, maybe_applied, attempts, "
		"next_attempt_at, last_error, last_sqlstate, started_at, finished_at, %s "
		"FROM saga.gtx_step WHERE gtx_id = ANY ($1) ORDER BY gtx_id, step",
		has_result_columns ? "result::text, confirm_result::text" : "NULL::text, NULL::text"),
		1, ids_arg);
	/* results are written only when they change: they may be large */
	plan_write_step = keep_plan(psprintf(
		"UPDATE saga.gtx_step SET status = $3, maybe_applied = $4, attempts = $5, "
		"next_attempt_at = $6, last_error = $7, last_sqlstate = $8, "
		"started_at = $9, finished_at = $10%s WHERE gtx_id = $1 AND step = $2",
		has_result_columns ? ", result = CASE WHEN $11 THEN $12::jsonb ELSE result END, "
		"confirm_result = CASE WHEN $11 THEN $13::jsonb ELSE confirm_result END" : ""),
		has_result_columns ? 13 : 10, step_args);
}

/*
 * Called every turn: once an update added the result columns, steps are
 * read and written with them.  Costs a cache lookup per turn only until
 * then.
 */
void
store_recheck_schema(void)
{
	if (has_result_columns && has_saga_key && has_args && has_derived_history)
		return;

	/*
	 * The turn's snapshot is older than this look at the catalogs: once the
	 * invalidations that came before it are read, a column not seen here
	 * was not there when the snapshot was taken either, so no saga the turn
	 * reads can have a key that goes unread.
	 */
	AcceptInvalidationMessages();
	if (!has_result_columns && schema_has_result_columns())
		prepare_step_plans();
	if ((!has_saga_key && schema_has_saga_key()) || (!has_args && schema_has_args()))
		prepare_saga_plans();
	if (!has_derived_history)
		has_derived_history = schema_has_relation("_events");
}

/* Does the schema derive ordinary history and show progress from memory (1.6)? */
bool
store_has_derived_history(void)
{
	return has_derived_history;
}

/* Is the schema one with saga keys and saga.barrier_forget (1.5)? */
bool
store_has_saga_key(void)
{
	return has_saga_key;
}

void
store_prepare(void)
{
	Oid			id_arg[1] = {INT8OID};
	Oid			saga_args[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
	const char *live = saga_status_sql_list(false);
	const char *final = saga_status_sql_list(true);

	if (plan_live_after != NULL)
		return;
	plan_coordinator = keep_plan("SELECT id FROM saga.coordinator", 0, NULL);
	if (SPI_execute("SELECT COALESCE(pg_catalog.max(id), 0) FROM saga.gtx",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_saga: could not read the highest saga id");
	startup_max_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &(bool) {false}));
	prepare_saga_plans();
	has_derived_history = schema_has_relation("_events");
	plan_aborts_upto = keep_plan(psprintf(
		"SELECT id, abort_requested, abort_reason FROM saga.gtx "
		"WHERE finished_at IS NULL AND id <= $1 AND abort_requested "
		"AND status IN %s", live),
		1, id_arg);
	prepare_step_plans();
	plan_write_saga = keep_plan(psprintf(SAGA_WRITE_SQL, final, ""), 4, saga_args);
	plan_write_saga_unless_aborted = keep_plan(psprintf(SAGA_WRITE_SQL, final, " AND NOT abort_requested"),
											   4, saga_args);
	{
		Oid			event_args[5] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID};

		plan_write_event = keep_plan(
			"INSERT INTO saga.gtx_event (gtx_id, step, event, detail, at) "
			"VALUES ($1, $2, $3, $4, $5)",
			5, event_args);
	}
}

char *
store_coordinator_id(void)
{
	int			rc = SPI_execute_plan(plan_coordinator, NULL, NULL, true, 1);

	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "pg_saga: saga.coordinator must hold exactly one row");
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* ---- reading ---- */

static char *
get_text(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *value = SPI_getvalue(tup, desc, col);

	return value ? MemoryContextStrdup(cxt, value) : NULL;
}

static Datum
get_datum(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	return SPI_getbinval(tup, desc, col, isnull);
}

static int64
get_int64(HeapTuple tup, TupleDesc desc, int col, int64 if_null)
{
	bool		isnull;
	Datum		d = get_datum(tup, desc, col, &isnull);

	return isnull ? if_null : DatumGetInt64(d);
}

static int32
get_int32(HeapTuple tup, TupleDesc desc, int col, int32 if_null)
{
	bool		isnull;
	Datum		d = get_datum(tup, desc, col, &isnull);

	return isnull ? if_null : DatumGetInt32(d);
}

static bool
get_bool(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = get_datum(tup, desc, col, &isnull);

	return !isnull && DatumGetBool(d);
}

/*
 * Is pg_restore connected to this database: a session with pg_restore's
 * own application_name?  See restore_under_way() in worker.c.
 */
bool
store_restore_connected(void)
{
	if (SPI_execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity "
					"WHERE datname = pg_catalog.current_database() "
					"AND application_name = 'pg_restore')", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "pg_saga: could not read pg_stat_activity");
	return get_bool(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

static TimestampTz
get_timestamp(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = get_datum(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

/* Parses "{1,3}" (step numbers) into 0-based indexes. */
static void
parse_deps(SagaStep *step, const char *text, MemoryContext cxt)
{
	const char *p = text;
	int			n = 0;

	step->ndeps = 0;
	step->deps = NULL;
	if (text == NULL)
		return;
	for (; *p; p++)
		if (*p == ',')
			n++;
	step->deps = MemoryContextAllocZero(cxt, (n + 1) * sizeof(int));
	for (p = text; *p;)
	{
		if (*p >= '0' && *p <= '9')
		{
			char	   *end;
			long		v = strtol(p, &end, 10);

			step->deps[step->ndeps++] = (int) v - 1;
			p = end;
		}
		else
			p++;
	}
}

/* An int8[] of ids, for "= ANY ($1)". */
static Datum
id_array(const int64 *ids, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* One step from a row of plan_steps (its first column is the saga id). */
static void
read_step(Saga *saga, SagaStep *step, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;

	step->saga = saga;
	step->number = get_int32(tup, desc, 2, 0);
	step->name = get_text(tup, desc, 3, saga->cxt);
	step->target = get_text(tup, desc, 4, saga->cxt);
	step->sql[OP_ACTION] = get_text(tup, desc, 5, saga->cxt);
	step->sql[OP_COMPENSATION] = get_text(tup, desc, 6, saga->cxt);
	step->sql[OP_CONFIRM] = get_text(tup, desc, 7, saga->cxt);
	parse_deps(step, SPI_getvalue(tup, desc, 8), saga->cxt);
	(void) get_datum(tup, desc, 9, &isnull);
	step->has_expect_rows = !isnull;
	step->expect_rows = get_int64(tup, desc, 9, 0);
	step->max_attempts = get_int32(tup, desc, 10, 0);
	step->timeout_ms = (int) Min(get_int64(tup, desc, 11, 0), INT_MAX);
	step->status = step_status_from_name(SPI_getvalue(tup, desc, 12));
	step->maybe_applied = get_bool(tup, desc, 13);
	step->attempts = get_int32(tup, desc, 14, 0);
	step->next_attempt_at = get_timestamp(tup, desc, 15);
	step->last_error = get_text(tup, desc, 16, saga->cxt);
	step->last_sqlstate = get_text(tup, desc, 17, saga->cxt);
	step->started_at = get_timestamp(tup, desc, 18);
	step->finished_at = get_timestamp(tup, desc, 19);
	step->result = get_text(tup, desc, 20, saga->cxt);
	step->confirm_result = get_text(tup, desc, 21, saga->cxt);
	/* xa: an attempt cut short by a crash may have prepared */
	step->need_probe = saga->mode == MODE_XA && step->status == STEP_RUNNING &&
		step->attempts > 0;

	/*
	 * A saga this worker did not take up itself may have run steps whose
	 * progress a crash lost (it is written asynchronously): one past its
	 * first start, or one that existed when the worker started, as the
	 * first start may be what was lost (xa progress, start included, is
	 * flushed).  An unfinished step of it may have taken effect, so a
	 * rollback compensates it, which the barrier makes a no-op where it
	 * never ran.
	 */
	if ((saga->status != SAGA_PENDING ||
		 (saga->id <= startup_max_id && saga->mode != MODE_XA)) &&
		(step->status == STEP_PENDING || step->status == STEP_RUNNING))
		step->maybe_applied = true;
}

/* A saga from a row of SAGA_COLUMNS, in a memory context of its own. */
static Saga *
read_saga(HeapTuple tup, TupleDesc desc, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "pg_saga saga", ALLOCSET_SMALL_SIZES);
	Saga	   *saga = MemoryContextAllocZero(cxt, sizeof(Saga));

	saga->cxt = cxt;
	saga->id = get_int64(tup, desc, 1, 0);
	saga->gid = get_text(tup, desc, 2, cxt);
	if (!saga_mode_from_name(SPI_getvalue(tup, desc, 3), &saga->mode))
		elog(ERROR, "pg_saga: saga %s has an unknown mode", saga->gid);
	saga->status = saga_status_from_name(SPI_getvalue(tup, desc, 4));
	saga->phase = saga_phase_from_name(SPI_getvalue(tup, desc, 5));
	saga->owner = DatumGetObjectId(get_datum(tup, desc, 6, &(bool) {false}));
	saga->deadline = get_timestamp(tup, desc, 7);
	saga->abort_requested = get_bool(tup, desc, 8);
	saga->abort_reason = get_text(tup, desc, 9, cxt);
	saga->last_error = get_text(tup, desc, 10, cxt);
	saga->key = get_int64(tup, desc, 11, 0);
	saga->nargs = get_int32(tup, desc, 12, 0);
	saga->args = saga->nargs > 0 ? get_text(tup, desc, 13, cxt) : NULL;
	saga->history_stored = get_bool(tup, desc, 14);
	return saga;
}

/*
 * Does a step of saga reference a value ($n) beyond those it has?  A saga
 * submitted since 1.5 never does (its start refuses that), so it can only
 * mean that its values are not visible yet.  Asked of sagas without values
 * only (saga.gtx_args holds all of a saga's values in one row), and not of
 * sagas submitted before 1.5 (no saga key), whose SQL was not checked and
 * may hold parameters of its own (PREPARE ... $1; EXECUTE ...).
 */
static bool
steps_lack_values(Saga *saga)
{
	int			i;
	int			op;

	if (saga->nargs > 0 || saga->key == 0)
		return false;
	for (i = 0; i < saga->nsteps; i++)
		for (op = 0; op < STEP_SQL_OPS; op++)
		{
			const char *text = saga->steps[i].sql[op];

			if (text == NULL || strchr(text, '$') == NULL)
				continue;
			if ((http_is_request(text) ? http_request_values_referenced(text) :
				 barrier_values_referenced(text)) > 0)
				return true;
		}
	return false;
}

/*
 * Reads the steps of sagas (in id order) with one statement, and returns
 * those of them that have steps and the values they use.  A submitted
 * saga always has both; pg_restore loads saga.gtx, saga.gtx_args and
 * saga.gtx_step one table at a time, each in a transaction of its own
 * (in that order, or concurrently with -j), and the worker of the
 * database it restores into runs meanwhile.  A saga
 * without steps, or whose steps reference values it does not have yet, is
 * dropped for a later reread (the worker's recheck scans from the first
 * saga every few seconds) rather than found "all of its steps done", or
 * run with its values missing, which fails it.
 */
static List *
load_steps(Saga **sagas, int n)
{
	int64	   *ids = palloc(sizeof(int64) * Max(n, 1));
	Datum		args[1];
	List	   *result = NIL;
	uint64		row = 0;
	int			i;

	for (i = 0; i < n; i++)
		ids[i] = sagas[i]->id;
	args[0] = id_array(ids, n);
	if (SPI_execute_plan(plan_steps, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read the steps of %d sagas", n);
	for (i = 0; i < n; i++)
	{
		Saga	   *saga = sagas[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		uint64		first = row;
		int			k;

		while (row < SPI_processed &&
			   get_int64(SPI_tuptable->vals[row], desc, 1, 0) == saga->id)
			row++;
		saga->nsteps = (int) (row - first);
		if (saga->nsteps == 0)
		{
			MemoryContextDelete(saga->cxt);
			continue;
		}
		saga->steps = MemoryContextAllocZero(saga->cxt, sizeof(SagaStep) * saga->nsteps);
		for (k = 0; k < saga->nsteps; k++)
			read_step(saga, &saga->steps[k], SPI_tuptable->vals[first + k], desc);
		if (steps_lack_values(saga))
		{
			ereport(LOG,
					(errmsg("pg_saga: saga \"%s\" waits for its values, which are not visible yet",
							saga->gid),
					 errdetail("Its steps reference values it does not have yet: pg_restore loads the extension's tables one at a time."),
					 errhint("If no restore is under way, the saga's row in saga.gtx_args was deleted.")));
			MemoryContextDelete(saga->cxt);
			continue;
		}
		result = lappend(result, saga);
	}
	return result;
}

/*
 * The sagas in the result of the statement just run, with their steps,
 * except those that want() refuses (the worker has them already: it takes
 * note of their abort requests instead) and
 * beyond max of them.  *last is the highest id looked at, taken or not.
 */
static List *
load_result(SagaWanted want, int max, int64 *last, bool *all_seen, MemoryContext parent)
{
	SPITupleTable *sagas_table = SPI_tuptable;
	uint64		nrows = SPI_processed;
	Saga	  **sagas = palloc(sizeof(Saga *) * Max(nrows, 1));
	int			n = 0;
	uint64		i;

	for (i = 0; i < nrows && n < max; i++)
	{
		HeapTuple	tup = sagas_table->vals[i];
		int64		id = get_int64(tup, sagas_table->tupdesc, 1, 0);

		*last = id;
		if (want(id, get_bool(tup, sagas_table->tupdesc, 8),
				 SPI_getvalue(tup, sagas_table->tupdesc, 9)))
			sagas[n++] = read_saga(tup, sagas_table->tupdesc, parent);
	}
	*all_seen = i == nrows;
	SPI_freetuptable(sagas_table);
	return n > 0 ? load_steps(sagas, n) : NIL;
}

/*
 * Live sagas after id after, oldest first, that want() accepts, at most max
 * of them, reading at most limit rows.  *last is set to the highest id
 * looked at (unchanged if none); *exhausted tells that no live saga after
 * it was visible.
 */
List *
store_live_sagas_after(int64 after, int limit, int max, SagaWanted want,
					   int64 *last, bool *exhausted, MemoryContext parent)
{
	Datum		args[2] = {Int64GetDatum(after), Int32GetDatum(limit)};
	bool		all_seen;
	uint64		nrows;
	List	   *sagas;

	if (SPI_execute_plan(plan_live_after, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read live sagas");
	nrows = SPI_processed;
	sagas = load_result(want, max, last, &all_seen, parent);
	*exhausted = all_seen && nrows < (uint64) limit;
	return sagas;
}

/* Those of the given sagas that are live and that want() accepts, up to max. */
List *
store_live_sagas_named(const int64 *ids, int n, int max, SagaWanted want,
					   int64 *last, MemoryContext parent)
{
	Datum		args[1] = {id_array(ids, n)};
	bool		all_seen;

	if (SPI_execute_plan(plan_live_ids, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read live sagas");
	return load_result(want, max, last, &all_seen, parent);
}

/* Abort requests of live sagas up to id upto. */
List *
store_abort_requests(int64 upto)
{
	Datum		args[1] = {Int64GetDatum(upto)};
	List	   *result = NIL;
	uint64		i;

	if (SPI_execute_plan(plan_aborts_upto, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read abort requests");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		LiveSagaRef *ref = palloc0(sizeof(LiveSagaRef));

		ref->id = get_int64(tup, desc, 1, 0);
		ref->abort_requested = get_bool(tup, desc, 2);
		ref->abort_reason = get_text(tup, desc, 3, CurrentMemoryContext);
		result = lappend(result, ref);
	}
	return result;
}

/* ---- writing ---- */

/* Argument argno of a SQL-callable function as argument i of a statement. */
Datum
arg_or_null(FunctionCallInfo fcinfo, int argno, char *nulls, int i)
{
	if (PG_ARGISNULL(argno))
	{
		nulls[i] = 'n';
		return (Datum) 0;
	}
	return PG_GETARG_DATUM(argno);
}

/* A text argument of a statement, or its NULL (nulls[i] = 'n'). */
Datum
text_or_null(const char *s, char *nulls, int i)
{
	if (s == NULL)
	{
		nulls[i] = 'n';
		return (Datum) 0;
	}
	return CStringGetTextDatum(s);
}

/*
 * Writes the saga's status.  A decision to commit is written only if no
 * abort was requested meanwhile; returns false when that condition failed.
 */
bool
store_write_saga(Saga *saga)
{
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			rc;

	args[0] = Int64GetDatum(saga->id);
	args[1] = CStringGetTextDatum(saga_status_name(saga->status));
	args[2] = CStringGetTextDatum(saga_phase_name(saga->phase));
	args[3] = text_or_null(saga->last_error, nulls, 3);
	rc = SPI_execute_plan(saga->decided_commit ? plan_write_saga_unless_aborted : plan_write_saga,
						  args, nulls, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "pg_saga: could not write saga %s", saga->gid);
	return SPI_processed == 1;
}

/*
 * Writes the step's state.  One indexed UPDATE per step: a set-based one
 * over unnested arrays was slower for the few steps of a turn.
 */
void
store_write_step(SagaStep *step)
{
	Datum		args[13];
	char		nulls[13];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(step->saga->id);
	args[1] = Int32GetDatum(step->number);
	args[2] = CStringGetTextDatum(step_status_name(step->status));
	args[3] = BoolGetDatum(step->maybe_applied);
	args[4] = Int32GetDatum(step->attempts);
	args[5] = TimestampTzGetDatum(step->next_attempt_at);
	nulls[5] = step->next_attempt_at == 0 ? 'n' : ' ';
	args[6] = text_or_null(step->last_error, nulls, 6);
	args[7] = text_or_null(step->last_sqlstate, nulls, 7);
	args[8] = TimestampTzGetDatum(step->started_at);
	nulls[8] = step->started_at == 0 ? 'n' : ' ';
	args[9] = TimestampTzGetDatum(step->finished_at);
	nulls[9] = step->finished_at == 0 ? 'n' : ' ';
	args[10] = BoolGetDatum(step->result_dirty);
	args[11] = text_or_null(step->result_dirty ? step->result : NULL, nulls, 11);
	args[12] = text_or_null(step->result_dirty ? step->confirm_result : NULL, nulls, 12);
	step->result_dirty = false;
	if (SPI_execute_plan(plan_write_step, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "pg_saga: could not write step %d of saga %s", step->number, step->saga->gid);
}

/* Writes an event, with the time it happened. */
void
store_write_event(Saga *saga, SagaEvent *event)
{
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	args[0] = Int64GetDatum(saga->id);
	args[1] = Int32GetDatum(event->step);
	nulls[1] = event->step == 0 ? 'n' : ' ';
	args[2] = CStringGetTextDatum(event->event);
	args[3] = text_or_null(event->detail, nulls, 3);
	args[4] = TimestampTzGetDatum(event->at);
	if (SPI_execute_plan(plan_write_event, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "pg_saga: could not write an event of saga %s", saga->gid);
}

/* ---- for the recovery of xa sagas (recovery.c) ---- */

/*
 * The targets of xa sagas that are unfinished or finished within a day,
 * each with its owner, in cxt: where in-doubt prepared transactions of
 * this coordinator may be.  The partial index gtx_xa_idx (1.6) answers it
 * from the xa sagas alone, however many others the tables keep
 * (sql/lifecycle.sql checks the plan).
 */
List *
store_xa_targets(MemoryContext cxt)
{
	List	   *targets = NIL;
	uint64		i;

	if (store_run("SELECT DISTINCT s.target, g.owner FROM saga.gtx_step s "
				  "JOIN saga.gtx g ON g.id = s.gtx_id WHERE g.mode = 'xa' "
				  "AND (g.finished_at IS NULL OR g.finished_at > pg_catalog.now() - interval '1 day')",
				  0, NULL, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not list xa targets");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		StoreTarget *where = MemoryContextAlloc(cxt, sizeof(StoreTarget));
		bool		isnull;

		where->target = get_text(tup, SPI_tuptable->tupdesc, 1, cxt);
		where->owner = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		targets = lappend(targets, where);
	}
	return targets;
}

/* The status and phase of saga id as committed; false if there is no such saga. */
bool
store_saga_state(int64 id, SagaStatus *status, SagaPhase *phase)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};

	if (store_run("SELECT status, phase FROM saga.gtx WHERE id = $1",
				  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read saga " INT64_FORMAT, id);
	if (SPI_processed == 0)
		return false;
	*status = saga_status_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	*phase = saga_phase_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	return true;
}

/* ---- barrier records of purged sagas to forget (forget.c) ---- */

/*
 * The rows of saga.barrier_forget that are due, oldest first, at most limit
 * of them, leaving out those of the targets and roles in skip (nskip of
 * them: their participant failed lately, or a call is in flight there), as
 * one StoreForget per target and role, in cxt.  Skipped rows do not count
 * against limit, so that a participant that is down holds up no other.
 */
List *
store_forget_due(int limit, const StoreTarget *skip, int nskip, MemoryContext cxt)
{
	static const char *sql =
		"SELECT id, target, owner, barrier, gid FROM ("
		"SELECT f.id, f.target, f.owner, f.barrier, f.gid FROM saga.barrier_forget f "
		"WHERE f.not_before <= pg_catalog.now() "
		/* owner is a regrole (1.5): its number, as in keys, not its name */
		"AND (f.owner::pg_catalog.oid::text || '/' || f.target) <> ALL ($2) "
		"ORDER BY f.id LIMIT $1) AS due ORDER BY target, owner, id";
	Oid			argtypes[2] = {INT4OID, TEXTARRAYOID};
	Datum		args[2];
	Datum	   *keys = palloc(sizeof(Datum) * Max(nskip, 1));
	List	   *groups = NIL;
	StoreForget *group = NULL;
	uint64		i;
	int			k;

	for (k = 0; k < nskip; k++)
		keys[k] = CStringGetTextDatum(psprintf("%u/%s", skip[k].owner, skip[k].target));
	args[0] = Int32GetDatum(limit);
	args[1] = PointerGetDatum(construct_array(keys, nskip, TEXTOID, -1, false, TYPALIGN_INT));
	if (store_run(sql, 2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_saga: could not read the barrier records to forget");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *target = SPI_getvalue(tup, desc, 2);
		Oid			owner = DatumGetObjectId(get_datum(tup, desc, 3, &(bool) {false}));

		if (group == NULL || group->where.owner != owner ||
			strcmp(group->where.target, target) != 0)
		{
			group = MemoryContextAllocZero(cxt, sizeof(StoreForget));
			group->where.target = MemoryContextStrdup(cxt, target);
			group->where.owner = owner;
			/* at most every row left: sized once */
			group->ids = MemoryContextAlloc(cxt, sizeof(int64) * (SPI_processed - i));
			group->identities = MemoryContextAlloc(cxt, sizeof(char *) * (SPI_processed - i));
			group->gids = MemoryContextAlloc(cxt, sizeof(char *) * (SPI_processed - i));
			groups = lappend(groups, group);
		}
		group->ids[group->n] = get_int64(tup, desc, 1, 0);
		group->identities[group->n] = get_text(tup, desc, 4, cxt);
		group->gids[group->n] = get_text(tup, desc, 5, cxt);
		group->n++;
	}
	return groups;
}

/* Deletes the rows of saga.barrier_forget whose records are forgotten. */
void
store_forget_done(const int64 *ids, int n)
{
	static const char *sql = "DELETE FROM saga.barrier_forget WHERE id = ANY ($1)";
	Oid			argtypes[1] = {INT8ARRAYOID};
	Datum		args[1] = {id_array(ids, n)};

	if (store_run(sql, 1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "pg_saga: could not delete %d forgotten barrier records", n);
}
