/*
 * bench/driver.c: closed-loop load for the pg_saga benchmark.
 *
 *   driver MODE CLIENTS SECONDS WARMUP CONNINFO_COORD CONNINFO_A CONNINFO_B [FAIL_PCT]
 *
 * Each transfer moves 1 between a random account of BENCH_ACCOUNTS (10,000)
 * on bank_a and the same account on bank_b.
 *
 * MODE baseline: each client runs the transfer's two statements itself,
 *   the debit on bank_a then the credit on bank_b, each in its own
 *   transaction (autocommit), with no coordination at all.
 * MODE saga: each client submits the same transfer as a 2-step saga (debit
 *   with expect_rows => 1, credit), then saga.wait()s for it; an iteration
 *   counts only when the saga reached its final status.  FAIL_PCT percent
 *   of the sagas debit more than any balance, so they are compensated.
 *   Submitted step by step: begin, add_step twice, submit.
 * MODE start: the same saga submitted with one saga.start() statement.
 * MODE saga-open, start-open: the same, without waiting (open loop: the
 *   clients submit as fast as they can); an iteration counts once its
 *   submitting transaction committed, and the caller measures the drain.
 * MODE define: the same transfer from a definition (bench_transfer, made
 *   by the driver once), its amount and account bound values: the client
 *   sends saga.start('bench_transfer', $1, gid => $2) with parameters,
 *   then saga.wait()s.
 * MODE run: the same as one CALL saga.run('bench_transfer', $1, gid => $2),
 *   which starts, commits and waits.
 *
 * MODE floor: the floor of issue 24, the least durable work any saga
 *   design must do for the same transfer, in plain SQL.  The client sends
 *   one INSERT of the saga row (floor.saga: id, gid unique, the two steps'
 *   targets, actions and compensations as arrays) in autocommit, then,
 *   woken in memory by the coordinator (as saga.wait is by the worker),
 *   one SELECT of its status.  A coordinator thread in this process plays
 *   the worker: it takes up to 16 submitted sagas (their ids handed over
 *   in memory, as saga.start sets the worker's latch), reads their steps
 *   from floor.saga, calls floor_run() once on bank_a (step 1 of all of
 *   them, one remote transaction) and once on bank_b (step 2), then sets
 *   their final status in one UPDATE, one commit.  floor_run() on each
 *   participant does, per saga, a barrier INSERT (primary key gid, step,
 *   op) and EXECUTE of the step's text, in one exception block per saga
 *   (a subtransaction per call, as saga_participant.run_batch).
 *
 * Prints one line: mode clients completed seconds per_second p50_ms p99_ms
 * total cpu_s (latency as the client sees it, submit to final status, in
 * steady state after WARMUP seconds; total counts the iterations of the
 * warm-up too; cpu_s is this process's user + system CPU, the clients'
 * share of the work and, in MODE floor, the coordinator's).
 *
 * BENCH_LIMIT=N stops after N iterations in all (and after SECONDS, if
 * sooner): the write counts of bench/floor.sh run exactly 1,000 sagas.
 */
#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define MAX_SAMPLES 2000000

static const char *mode;
static const char *conn_coord, *conn_a, *conn_b;
static int	nclients, seconds, warmup, fail_pct;
static int	one_statement, open_loop;	/* MODE start*, MODE *-open */
static int	from_definition, run_call;	/* MODE define, MODE run */
static int	floor_mode;			/* MODE floor */
static long limit;				/* BENCH_LIMIT: iterations in all, 0 none */
static long started;			/* iterations begun so far, under lock */

/* MODE floor: the coordinator's table, on the coordinator database. */
static const char *floor_coord_sql =
"SET client_min_messages = warning;"
"CREATE SCHEMA IF NOT EXISTS floor;"
"CREATE TABLE IF NOT EXISTS floor.saga ("
" id bigserial PRIMARY KEY,"
" gid text NOT NULL UNIQUE,"
" targets text[] NOT NULL,"
" actions text[] NOT NULL,"
" compensations text[] NOT NULL,"
" status text NOT NULL DEFAULT 'submitted')";

/*
 * MODE floor: each participant's barrier and its batch call.  Per saga, the
 * barrier record and the step in one exception block; a repeat (the
 * barrier's key already there) is answered -1 and does nothing; a failure
 * (an error, or not the one row expected) -2; else the rows the step
 * changed.
 */
static const char *floor_participant_sql =
"SET client_min_messages = warning;"
"CREATE TABLE IF NOT EXISTS floor_barrier ("
" gid text, step int, op text, PRIMARY KEY (gid, step, op));"
"CREATE OR REPLACE FUNCTION floor_run(gids text[], step int, sqls text[]) RETURNS int[]"
" LANGUAGE plpgsql AS $f$"
" DECLARE n bigint; replies int[] := '{}';"
" BEGIN"
"  FOR i IN 1 .. cardinality(gids) LOOP"
"   BEGIN"
"    INSERT INTO floor_barrier (gid, step, op) VALUES (gids[i], floor_run.step, 'action');"
"    EXECUTE sqls[i];"
"    GET DIAGNOSTICS n = ROW_COUNT;"
"    IF n <> 1 THEN RAISE EXCEPTION 'step % of % changed % rows', floor_run.step, gids[i], n; END IF;"
"    replies := replies || n::int;"
"   EXCEPTION WHEN unique_violation THEN replies := replies || -1;"
"    WHEN OTHERS THEN replies := replies || -2;"
"   END;"
"  END LOOP;"
"  RETURN replies;"
" END $f$";

/*
 * MODE floor: the hand-over between the clients and the coordinator thread,
 * in memory.  A client queues its saga's id once its INSERT committed and
 * sleeps until the coordinator has committed the saga's final status.
 */
#define FLOOR_BATCH 16
#define FLOOR_QUEUE 4096
static pthread_mutex_t floor_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t floor_submitted = PTHREAD_COND_INITIALIZER;
static pthread_cond_t floor_finished = PTHREAD_COND_INITIALIZER;
static struct
{
	long		id;
	int			client;
}			floor_queue[FLOOR_QUEUE];
static int	floor_head, floor_tail;	/* queue: [head, tail) modulo FLOOR_QUEUE */
static long *floor_done;		/* per client: the last saga finished for it */
static int	floor_stop;

/* The transfer as a definition with bound values: $1 the amount, $2 the account. */
static const char *define_sql =
"SELECT saga.define('bench_transfer', ARRAY["
"saga.step('bank_a', 'UPDATE account SET balance = balance - $1 WHERE id = $2 AND balance >= $1', "
"'UPDATE account SET balance = balance + $1 WHERE id = $2', expect_rows => 1), "
"saga.step('bank_b', 'UPDATE account SET balance = balance + $1 WHERE id = $2', "
"'UPDATE account SET balance = balance - $1 WHERE id = $2', expect_rows => 1)])";
static int	naccounts = 10000;	/* accounts 1..BENCH_ACCOUNTS on each bank */
static double t_start;

static double *samples;
static long nsamples;
static long completed;
static long total_done;			/* iterations finished, warm-up included */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static PGconn *
connect_or_die(const char *conninfo)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "driver: connection failed: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void
exec_or_die(PGconn *c, const char *sql, ExecStatusType want)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != want)
	{
		fprintf(stderr, "driver: %s failed: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(r);
}

static void
record(double began, double ended)
{
	pthread_mutex_lock(&lock);
	total_done++;
	if (began - t_start < warmup)
	{
		pthread_mutex_unlock(&lock);
		return;
	}
	completed++;
	if (nsamples < MAX_SAMPLES)
		samples[nsamples++] = (ended - began) * 1000.0;
	pthread_mutex_unlock(&lock);
}

/* Appends STR to the array literal in BUF as a quoted element. */
static void
array_append(char *buf, size_t size, const char *str)
{
	size_t		len = strlen(buf);
	char		sep;

	if (len + 2 * strlen(str) + 4 >= size)
	{
		fprintf(stderr, "driver: array literal too long\n");
		exit(1);
	}
	sep = len == 0 ? '{' : ',';
	buf[len++] = sep;
	buf[len++] = '"';
	for (; *str; str++)
	{
		if (*str == '"' || *str == '\\')
			buf[len++] = '\\';
		buf[len++] = *str;
	}
	buf[len++] = '"';
	buf[len] = '\0';
}

static PGresult *
params_or_die(PGconn *c, const char *sql, int n, const char *const *values)
{
	PGresult   *r = PQexecParams(c, sql, n, NULL, values, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "driver: %s failed: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	return r;
}

/*
 * MODE floor: the coordinator.  Up to FLOOR_BATCH submitted sagas at a
 * time: read their steps, step 1 of all of them on bank_a in one call (one
 * remote transaction), step 2 on bank_b likewise, their final statuses in
 * one UPDATE (one commit), then the clients woken.
 */
static void *
floor_coordinator(void *arg)
{
	PGconn	   *coord = connect_or_die(conn_coord),
			   *part[2] = {connect_or_die(conn_a), connect_or_die(conn_b)};
	static char ids[FLOOR_BATCH * 24 + 4], gids[FLOOR_BATCH * 160],
				sqls[FLOOR_BATCH * 512], statuses[FLOOR_BATCH * 16];

	(void) arg;
	for (;;)
	{
		long		batch[FLOOR_BATCH];
		int			owner[FLOOR_BATCH], ok[FLOOR_BATCH];
		int			n = 0, rows, i, j, step;
		PGresult   *r;
		const char *values[2];

		pthread_mutex_lock(&floor_lock);
		while (floor_head == floor_tail && !floor_stop)
			pthread_cond_wait(&floor_submitted, &floor_lock);
		if (floor_head == floor_tail)
		{
			pthread_mutex_unlock(&floor_lock);
			break;
		}
		while (floor_head != floor_tail && n < FLOOR_BATCH)
		{
			batch[n] = floor_queue[floor_head].id;
			owner[n] = floor_queue[floor_head].client;
			floor_head = (floor_head + 1) % FLOOR_QUEUE;
			n++;
		}
		pthread_mutex_unlock(&floor_lock);

		ids[0] = '{';
		ids[1] = '\0';
		for (i = 0; i < n; i++)
			snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%ld", i ? "," : "", batch[i]);
		strcat(ids, "}");
		values[0] = ids;
		r = params_or_die(coord, "SELECT id, gid, actions[1], actions[2] FROM floor.saga "
						  "WHERE id = ANY($1::bigint[])", 1, values);
		rows = PQntuples(r);
		if (rows != n)
		{
			fprintf(stderr, "driver: floor: %d of %d sagas found\n", rows, n);
			exit(1);
		}
		/* the batch in the order of the rows read */
		for (i = 0; i < rows; i++)
		{
			long		id = atol(PQgetvalue(r, i, 0));

			for (j = i; j < n && batch[j] != id; j++)
				;
			if (j == n)
			{
				fprintf(stderr, "driver: floor: saga %ld not asked for\n", id);
				exit(1);
			}
			batch[j] = batch[i];
			batch[i] = id;
			step = owner[j];
			owner[j] = owner[i];
			owner[i] = step;
			ok[i] = 1;
		}
		gids[0] = '\0';
		for (i = 0; i < rows; i++)
			array_append(gids, sizeof(gids), PQgetvalue(r, i, 1));
		strcat(gids, "}");
		for (step = 1; step <= 2; step++)
		{
			PGresult   *pr;
			char	   *reply;

			sqls[0] = '\0';
			for (i = 0; i < rows; i++)
				array_append(sqls, sizeof(sqls), ok[i] ? PQgetvalue(r, i, 1 + step) : "SELECT 1");
			strcat(sqls, "}");
			values[0] = gids;
			values[1] = sqls;
			pr = params_or_die(part[step - 1], step == 1 ?
							   "SELECT floor_run($1::text[], 1, $2::text[])" :
							   "SELECT floor_run($1::text[], 2, $2::text[])", 2, values);
			/* the replies, "{1,1,-2,...}" */
			reply = PQgetvalue(pr, 0, 0);
			for (i = 0; i < rows && *reply; i++)
			{
				long		v;

				reply++;
				v = strtol(reply, &reply, 10);
				if (v == -2)
					ok[i] = 0;
			}
			PQclear(pr);
		}
		PQclear(r);
		statuses[0] = '\0';
		for (i = 0; i < rows; i++)
			array_append(statuses, sizeof(statuses), ok[i] ? "succeeded" : "failed");
		strcat(statuses, "}");
		ids[0] = '{';
		ids[1] = '\0';
		for (i = 0; i < rows; i++)
			snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%ld", i ? "," : "", batch[i]);
		strcat(ids, "}");
		values[0] = ids;
		values[1] = statuses;
		PQclear(params_or_die(coord, "UPDATE floor.saga AS s SET status = u.status "
							  "FROM unnest($1::bigint[], $2::text[]) AS u (id, status) "
							  "WHERE s.id = u.id", 2, values));

		pthread_mutex_lock(&floor_lock);
		for (i = 0; i < rows; i++)
			floor_done[owner[i]] = batch[i];
		pthread_cond_broadcast(&floor_finished);
		pthread_mutex_unlock(&floor_lock);
	}
	PQfinish(coord);
	PQfinish(part[0]);
	PQfinish(part[1]);
	return NULL;
}

static void *
client(void *arg)
{
	long		id = (long) arg;
	long		n = 0;
	long		run = (long) getpid();
	unsigned int seed = (unsigned int) id * 7919u + 1;
	PGconn	   *a = NULL,
			   *b = NULL,
			   *coord = NULL;
	char		sql[2048];

	if (strcmp(mode, "baseline") == 0)
	{
		a = connect_or_die(conn_a);
		b = connect_or_die(conn_b);
	}
	else
		coord = connect_or_die(conn_coord);

	while (now_s() - t_start < warmup + seconds)
	{
		int			account = (int) (rand_r(&seed) % naccounts) + 1;
		double		t0 = now_s();

		if (limit)
		{
			pthread_mutex_lock(&lock);
			if (started >= limit)
			{
				pthread_mutex_unlock(&lock);
				break;
			}
			started++;
			pthread_mutex_unlock(&lock);
		}
		n++;
		if (a)
		{
			snprintf(sql, sizeof(sql),
					 "UPDATE account SET balance = balance - 1 WHERE id = %d AND balance >= 1", account);
			exec_or_die(a, sql, PGRES_COMMAND_OK);
			snprintf(sql, sizeof(sql),
					 "UPDATE account SET balance = balance + 1 WHERE id = %d", account);
			exec_or_die(b, sql, PGRES_COMMAND_OK);
		}
		else
		{
			int			amount = (int) (rand_r(&seed) % 100) < fail_pct ? 1000000000 : 1;
			PGresult   *r;

			char		gid[64];

			snprintf(gid, sizeof(gid), "b%ld-%ld-%ld", run, id, n);
			if (floor_mode)
			{
				long		saga_id;

				/* the submission: one INSERT, committed */
				snprintf(sql, sizeof(sql),
						 "INSERT INTO floor.saga (gid, targets, actions, compensations) VALUES ('%s', "
						 "ARRAY['bank_a', 'bank_b'], "
						 "ARRAY['UPDATE account SET balance = balance - %d WHERE id = %d AND balance >= %d', "
						 "'UPDATE account SET balance = balance + %d WHERE id = %d'], "
						 "ARRAY['UPDATE account SET balance = balance + %d WHERE id = %d', "
						 "'UPDATE account SET balance = balance - %d WHERE id = %d']) RETURNING id",
						 gid, amount, account, amount, amount, account,
						 amount, account, amount, account);
				r = PQexec(coord, sql);
				if (PQresultStatus(r) != PGRES_TUPLES_OK)
				{
					fprintf(stderr, "driver: %s: %s", gid, PQerrorMessage(coord));
					exit(1);
				}
				saga_id = atol(PQgetvalue(r, 0, 0));
				PQclear(r);
				/* handed to the coordinator, which wakes us when it is final */
				pthread_mutex_lock(&floor_lock);
				if ((floor_tail + 1) % FLOOR_QUEUE == floor_head)
				{
					fprintf(stderr, "driver: floor queue full\n");
					exit(1);
				}
				floor_queue[floor_tail].id = saga_id;
				floor_queue[floor_tail].client = (int) id;
				floor_tail = (floor_tail + 1) % FLOOR_QUEUE;
				pthread_cond_signal(&floor_submitted);
				while (floor_done[id] != saga_id)
					pthread_cond_wait(&floor_finished, &floor_lock);
				pthread_mutex_unlock(&floor_lock);
				/* the wait: one SELECT of its status */
				snprintf(sql, sizeof(sql), "SELECT status FROM floor.saga WHERE gid = '%s'", gid);
				r = PQexec(coord, sql);
				if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
					(strcmp(PQgetvalue(r, 0, 0), "succeeded") != 0 &&
					 strcmp(PQgetvalue(r, 0, 0), "failed") != 0))
				{
					fprintf(stderr, "driver: floor saga %s did not finish: %s\n", gid, PQerrorMessage(coord));
					exit(1);
				}
				PQclear(r);
				record(t0, now_s());
				continue;
			}
			if (from_definition || run_call)
			{
				char		args[64];
				const char *values[2] = {args, gid};

				snprintf(args, sizeof(args), "{%d,%d}", amount, account);
				r = PQexecParams(coord, run_call ?
								 "CALL saga.run('bench_transfer', $1::text[], gid => $2)" :
								 "SELECT saga.start('bench_transfer', $1::text[], gid => $2)",
								 2, NULL, values, NULL, NULL, 0);
				if (PQresultStatus(r) != PGRES_TUPLES_OK ||
					(run_call && strcmp(PQgetvalue(r, 0, 1), "succeeded") != 0 &&
					 strcmp(PQgetvalue(r, 0, 1), "aborted") != 0))
				{
					fprintf(stderr, "driver: %s: %s %s\n", gid, PQerrorMessage(coord),
							PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 1) : "");
					exit(1);
				}
				PQclear(r);
				if (run_call)
				{
					record(t0, now_s());
					continue;
				}
			}
			else if (one_statement)
				snprintf(sql, sizeof(sql),
						 "SELECT saga.start(ARRAY["
						 "saga.step('bank_a', 'UPDATE account SET balance = balance - %d WHERE id = %d AND balance >= %d', "
						 "'UPDATE account SET balance = balance + %d WHERE id = %d', expect_rows => 1), "
						 "saga.step('bank_b', 'UPDATE account SET balance = balance + %d WHERE id = %d', "
						 "'UPDATE account SET balance = balance - %d WHERE id = %d', expect_rows => 1)], "
						 "gid => '%s')",
						 amount, account, amount, amount, account,
						 amount, account, amount, account, gid);
			else
			snprintf(sql, sizeof(sql),
					 "BEGIN;"
					 "SELECT saga.begin('%s');"
					 "SELECT saga.add_step('%s', 'bank_a', "
					 "action => 'UPDATE account SET balance = balance - %d WHERE id = %d AND balance >= %d', "
					 "compensation => 'UPDATE account SET balance = balance + %d WHERE id = %d', expect_rows => 1);"
					 "SELECT saga.add_step('%s', 'bank_b', "
					 "action => 'UPDATE account SET balance = balance + %d WHERE id = %d', "
					 "compensation => 'UPDATE account SET balance = balance - %d WHERE id = %d', expect_rows => 1);"
					 "SELECT saga.submit('%s');"
					 "COMMIT;",
					 gid, gid, amount, account, amount, amount, account,
					 gid, amount, account, amount, account, gid);
			if (!from_definition)
				exec_or_die(coord, sql, one_statement ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
			if (open_loop)
			{
				record(t0, now_s());
				continue;
			}
			snprintf(sql, sizeof(sql), "SELECT saga.wait('%s', '60 seconds')", gid);
			r = PQexec(coord, sql);
			if (PQresultStatus(r) != PGRES_TUPLES_OK ||
				(strcmp(PQgetvalue(r, 0, 0), "succeeded") != 0 &&
				 strcmp(PQgetvalue(r, 0, 0), "aborted") != 0))
			{
				fprintf(stderr, "driver: saga %s did not finish: %s %s\n", gid,
						PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "",
						PQerrorMessage(coord));
				exit(1);
			}
			PQclear(r);
		}
		record(t0, now_s());
	}
	if (a)
	{
		PQfinish(a);
		PQfinish(b);
	}
	if (coord)
		PQfinish(coord);
	return NULL;
}

static int
cmp_double(const void *x, const void *y)
{
	double		a = *(const double *) x,
				b = *(const double *) y;

	return a < b ? -1 : a > b;
}

int
main(int argc, char **argv)
{
	pthread_t  *threads,
				coordinator;
	long		i;
	struct rusage ru;

	if (argc < 8)
	{
		fprintf(stderr, "usage: driver baseline|saga|start|saga-open|start-open|define|run|floor CLIENTS SECONDS WARMUP COORD A B [FAIL_PCT]\n");
		return 2;
	}
	mode = argv[1];
	one_statement = strncmp(mode, "start", 5) == 0;
	if (getenv("BENCH_ACCOUNTS"))
		naccounts = atoi(getenv("BENCH_ACCOUNTS"));
	open_loop = strstr(mode, "-open") != NULL;
	nclients = atoi(argv[2]);
	seconds = atoi(argv[3]);
	warmup = atoi(argv[4]);
	conn_coord = argv[5];
	conn_a = argv[6];
	conn_b = argv[7];
	fail_pct = argc > 8 ? atoi(argv[8]) : 0;
	from_definition = strcmp(mode, "define") == 0;
	run_call = strcmp(mode, "run") == 0;
	floor_mode = strcmp(mode, "floor") == 0;
	if (getenv("BENCH_LIMIT"))
		limit = atol(getenv("BENCH_LIMIT"));
	if (from_definition || run_call)
	{
		PGconn	   *c = connect_or_die(conn_coord);

		exec_or_die(c, define_sql, PGRES_TUPLES_OK);
		PQfinish(c);
	}
	if (floor_mode)
	{
		PGconn	   *c = connect_or_die(conn_coord);

		exec_or_die(c, floor_coord_sql, PGRES_COMMAND_OK);
		PQfinish(c);
		c = connect_or_die(conn_a);
		exec_or_die(c, floor_participant_sql, PGRES_COMMAND_OK);
		PQfinish(c);
		c = connect_or_die(conn_b);
		exec_or_die(c, floor_participant_sql, PGRES_COMMAND_OK);
		PQfinish(c);
		floor_done = calloc(nclients, sizeof(long));
	}
	samples = malloc(sizeof(double) * MAX_SAMPLES);
	threads = malloc(sizeof(pthread_t) * nclients);

	t_start = now_s();
	if (floor_mode)
		pthread_create(&coordinator, NULL, floor_coordinator, NULL);
	for (i = 0; i < nclients; i++)
		pthread_create(&threads[i], NULL, client, (void *) i);
	for (i = 0; i < nclients; i++)
		pthread_join(threads[i], NULL);
	if (floor_mode)
	{
		pthread_mutex_lock(&floor_lock);
		floor_stop = 1;
		pthread_cond_signal(&floor_submitted);
		pthread_mutex_unlock(&floor_lock);
		pthread_join(coordinator, NULL);
	}
	getrusage(RUSAGE_SELF, &ru);

	qsort(samples, nsamples, sizeof(double), cmp_double);
	printf("%s %d %ld %d %.1f %.2f %.2f %ld %.3f\n", mode, nclients, completed, seconds,
		   completed / (double) seconds,
		   nsamples ? samples[nsamples / 2] : 0.0,
		   nsamples ? samples[(long) (nsamples * 0.99)] : 0.0,
		   total_done,
		   ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		   ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	return 0;
}
