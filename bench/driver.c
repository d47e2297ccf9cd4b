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
 * Prints one line: mode clients completed seconds per_second p50_ms p99_ms
 * (latency as the client sees it, submit to final status, in steady state
 * after WARMUP seconds).
 */
#include <pthread.h>
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
record(double started, double ended)
{
	if (started - t_start < warmup)
		return;
	pthread_mutex_lock(&lock);
	completed++;
	if (nsamples < MAX_SAMPLES)
		samples[nsamples++] = (ended - started) * 1000.0;
	pthread_mutex_unlock(&lock);
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
	pthread_t  *threads;
	long		i;

	if (argc < 8)
	{
		fprintf(stderr, "usage: driver baseline|saga|start|saga-open|start-open|define|run CLIENTS SECONDS WARMUP COORD A B [FAIL_PCT]\n");
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
	if (from_definition || run_call)
	{
		PGconn	   *c = connect_or_die(conn_coord);

		exec_or_die(c, define_sql, PGRES_TUPLES_OK);
		PQfinish(c);
	}
	samples = malloc(sizeof(double) * MAX_SAMPLES);
	threads = malloc(sizeof(pthread_t) * nclients);

	t_start = now_s();
	for (i = 0; i < nclients; i++)
		pthread_create(&threads[i], NULL, client, (void *) i);
	for (i = 0; i < nclients; i++)
		pthread_join(threads[i], NULL);

	qsort(samples, nsamples, sizeof(double), cmp_double);
	printf("%s %d %ld %d %.1f %.2f %.2f\n", mode, nclients, completed, seconds,
		   completed / (double) seconds,
		   nsamples ? samples[nsamples / 2] : 0.0,
		   nsamples ? samples[(long) (nsamples * 0.99)] : 0.0);
	return 0;
}
