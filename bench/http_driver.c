/*
 * bench/http_driver.c: the load of bench/http.sh.
 *
 *   http_driver bare|saga CLIENTS SECONDS WARMUP COORD BANK_A URL
 *
 * CLIENTS threads, closed loop, for SECONDS after WARMUP seconds (not
 * counted).  Each unit of work is the same two things: a debit of one
 * account on bank_a (UPDATE ... WHERE id = n, one row) and a charge
 * through the service (POST URL/charges, a JSON body, an Idempotency-Key).
 *   bare  the client does both itself: the UPDATE (libpq, autocommit, on
 *         its own connection to bank_a) and the request (libcurl easy, its
 *         own handle, so its connection is kept alive);
 *   saga  the client runs a 2-step saga that does both and waits for it,
 *         in one statement: CALL saga.run(ARRAY[saga.step('bank_a', ...),
 *         saga.step('pay', saga.http(...))], gid => ...).
 * Prints one line: mode clients completed seconds per_second p50_ms p99_ms
 * total cpu_s, cpu_s being this process's own CPU over the whole run
 * (getrusage), total every unit done, warm-up included.
 */
#include <curl/curl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_SAMPLES 2000000

static const char *mode, *conn_coord, *conn_a, *url;
static int	nclients, seconds, warmup;
static double t_start;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double *samples;
static long nsamples, completed, total_done;

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
		fprintf(stderr, "connect: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void
exec_or_die(PGconn *c, const char *sql, ExecStatusType want, char *out, size_t outlen)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != want)
	{
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	if (out && PQntuples(r) > 0)
		snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
}

static size_t
discard(char *p, size_t s, size_t n, void *u)
{
	return s * n;
}

/* The bare unit: the debit, then the charge. */
static void
bare_unit(PGconn *a, CURL *curl, long id, long seq, int client)
{
	char		sql[128], hdr[128], body[64];
	struct curl_slist *h = NULL;
	long		status = 0;

	snprintf(sql, sizeof(sql), "UPDATE account SET balance = balance - 1 WHERE id = %ld", id);
	exec_or_die(a, sql, PGRES_COMMAND_OK, NULL, 0);
	snprintf(hdr, sizeof(hdr), "Idempotency-Key: bare:%d:%ld:2:action", client, seq);
	h = curl_slist_append(h, hdr);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	snprintf(body, sizeof(body), "{\"amount\": \"1\", \"account\": \"%ld\"}", id);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(curl) != CURLE_OK ||
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 201)
	{
		fprintf(stderr, "charge failed (HTTP %ld)\n", status);
		exit(1);
	}
	curl_slist_free_all(h);
}

/* The saga unit: start the 2-step saga, wait for it. */
static void
saga_unit(PGconn *c, long id, long seq, int client)
{
	char		sql[1024], status[32] = "";
	PGresult   *r;

	/* start, commit and wait in one statement (saga.run) */
	snprintf(sql, sizeof(sql),
			 "CALL saga.run(ARRAY["
			 "saga.step('bank_a', 'UPDATE account SET balance = balance - 1 WHERE id = %ld', "
			 "'UPDATE account SET balance = balance + 1 WHERE id = %ld', expect_rows => 1), "
			 "saga.step('pay', saga.http('POST', '/charges', '{\"amount\": \"1\", \"account\": \"%ld\"}'))], "
			 "gid => 'h-%d-%ld-%ld')", id, id, id, client, seq, (long) (t_start * 1000));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
	{
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	snprintf(status, sizeof(status), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	if (strcmp(status, "succeeded") != 0)
	{
		fprintf(stderr, "saga ended %s\n", status);
		exit(1);
	}
}

static void *
client(void *arg)
{
	int			me = (int) (long) arg;
	PGconn	   *c = connect_or_die(strcmp(mode, "bare") == 0 ? conn_a : conn_coord);
	CURL	   *curl = NULL;
	char		charges[512];
	long		seq = 0;
	double		end = t_start + warmup + seconds;

	if (strcmp(mode, "bare") == 0)
	{
		curl = curl_easy_init();
		snprintf(charges, sizeof(charges), "%s/charges", url);
		curl_easy_setopt(curl, CURLOPT_URL, charges);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	}
	for (;;)
	{
		double		t0 = now_s();
		long		id = 1 + (me * 617 + seq * 31) % 10000;

		if (t0 >= end)
			break;
		if (curl)
			bare_unit(c, curl, id, seq, me);
		else
			saga_unit(c, id, seq, me);
		seq++;
		pthread_mutex_lock(&lock);
		total_done++;
		if (t0 >= t_start + warmup)
		{
			completed++;
			if (nsamples < MAX_SAMPLES)
				samples[nsamples++] = (now_s() - t0) * 1000;
		}
		pthread_mutex_unlock(&lock);
	}
	if (curl)
		curl_easy_cleanup(curl);
	PQfinish(c);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	pthread_t  *threads;
	struct rusage ru;
	long		i;

	if (argc < 8)
	{
		fprintf(stderr, "usage: http_driver bare|saga CLIENTS SECONDS WARMUP COORD BANK_A URL\n");
		return 2;
	}
	mode = argv[1];
	nclients = atoi(argv[2]);
	seconds = atoi(argv[3]);
	warmup = atoi(argv[4]);
	conn_coord = argv[5];
	conn_a = argv[6];
	url = argv[7];
	curl_global_init(CURL_GLOBAL_DEFAULT);
	samples = malloc(sizeof(double) * MAX_SAMPLES);
	threads = malloc(sizeof(pthread_t) * nclients);
	t_start = now_s();
	for (i = 0; i < nclients; i++)
		pthread_create(&threads[i], NULL, client, (void *) i);
	for (i = 0; i < nclients; i++)
		pthread_join(threads[i], NULL);
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
