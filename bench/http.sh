#!/usr/bin/env bash
# bench/http.sh: 2-step sagas with one HTTP step, against the same work done
# bare by a client.
#
#   bash bench/http.sh        # its own cluster and service; prints a markdown section
#
# The unit of work: a debit of one account on bank_a (an UPDATE of one row)
# and a charge through a payment service (POST /v1/charges with a JSON body
# and an Idempotency-Key).  The service is bench/http_service.pl on
# 127.0.0.1 (one process, an event loop, keep-alive).  On the cluster of
# bench/cluster.sh, at BENCH_HTTP_CLIENTS (16) clients, closed loop,
# BENCH_HTTP_SECONDS (10) s after BENCH_HTTP_WARMUP (2) s, in
# BENCH_HTTP_ROUNDS (3) alternating rounds, each figure the median round
# (bench/http_driver.c):
#   bare  the client does both itself: the UPDATE on its own connection to
#         bank_a (libpq, autocommit), then the request (libcurl, its own
#         handle and kept-alive connection);
#   saga  the client runs CALL saga.run(ARRAY[saga.step('bank_a', ...),
#         saga.step('pay', saga.http('POST', '/charges', ...))], gid => ...)
#         (start, commit and wait in one statement); pg_saga's worker makes
#         the UPDATE and the request.
# CPU per unit is read from /proc: every process of the cluster
# (cluster_cpu_ticks), the driver's own CPU (getrusage) and the service's
# (its /proc/PID/stat), over every unit of the run, warm-up included.
# Nothing here is a test.
BENCH_HTTP_CLIENTS="${BENCH_HTTP_CLIENTS:-16}"
BENCH_HTTP_SECONDS="${BENCH_HTTP_SECONDS:-10}"
BENCH_HTTP_WARMUP="${BENCH_HTTP_WARMUP:-2}"
BENCH_HTTP_ROUNDS="${BENCH_HTTP_ROUNDS:-3}"

# CPU of one process so far (utime + stime), in clock ticks.
pid_cpu_ticks() {
	local f
	f=($(cut -d' ' -f14-15 "/proc/$1/stat"))
	echo $(( f[0] + f[1] ))
}

# http_measure MODE -> "per_second p50 all_ms cluster_ms driver_ms service_ms"
http_measure() {
	local mode="$1" before after sbefore safter line
	sql bench "CHECKPOINT" >/dev/null
	before="$(cluster_cpu_ticks)"
	sbefore="$(pid_cpu_ticks "$service_pid")"
	line="$(saga_as_pg "$work/http_driver" "$mode" "$BENCH_HTTP_CLIENTS" "$BENCH_HTTP_SECONDS" \
		"$BENCH_HTTP_WARMUP" "$COORD" "$CONN_A" "$service_url")"
	sleep 0.5	# the driver's backends exit and are reaped
	after="$(cluster_cpu_ticks)"
	safter="$(pid_cpu_ticks "$service_pid")"
	# driver: mode clients completed seconds per_second p50 p99 total cpu_s
	set -- $line
	awk -v t=$((after - before)) -v s=$((safter - sbefore)) -v hz="$ticks_per_s" -v n="$8" -v c="$9" \
		-v tps="$5" -v p50="$6" \
		'BEGIN { printf "%s %s %.3f %.3f %.3f %.3f\n", tps, p50, (t / hz + c + s / hz) * 1000 / n,
				 t / hz * 1000 / n, c * 1000 / n, s / hz * 1000 / n }'
}

# http_median FIELD LINES: the median of field FIELD of the non-empty lines
http_median() {
	printf '%s\n' "$2" | awk -v f="$1" 'NF { print $f }' | sort -g |
		awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

http_service_up() {
	local port
	port="$(saga_free_port)"
	perl bench/http_service.pl "$port" >"$work/http_service.out" 2>&1 &
	service_pid=$!
	for _ in $(seq 50); do
		perl -MIO::Socket::INET -e 'exit !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]")' "$port" && break
		sleep 0.1
	done
	service_url="http://127.0.0.1:$port/v1"
	sql bench "CREATE SERVER pay FOREIGN DATA WRAPPER pg_saga OPTIONS (url '$service_url')"
	saga_log "compiling the HTTP driver; the service listens on $service_url"
	gcc -O2 -Wall -o "$work/http_driver" bench/http_driver.c -I"$("$(saga_pg_config)" --includedir)" \
		-L"$("$(saga_pg_config)" --libdir)" -lpq -lcurl -lpthread
	chmod a+rx "$work/http_driver"
}

bench_http() {
	local mode round tps m
	declare -A lines
	for ((round = 1; round <= BENCH_HTTP_ROUNDS; round++)); do
		for mode in bare saga; do
			saga_log "http: round $round, $mode at $BENCH_HTTP_CLIENTS clients"
			lines[$mode]+="$(http_measure "$mode")"$'\n'
			saga_log "http: $(tail -n 1 <<<"${lines[$mode]%$'\n'}")"
		done
	done
	local b_tps b_cpu
	echo "### A debit and a charge, $BENCH_HTTP_CLIENTS clients, closed loop"
	echo
	echo "Medians of $BENCH_HTTP_ROUNDS alternating rounds of $BENCH_HTTP_SECONDS s (after $BENCH_HTTP_WARMUP s of warm-up). CPU per unit in ms, over every unit of the run: all (cluster + driver + service) / the cluster (coordinator, bank_a, the pg_saga worker) / the driver (the 16 clients) / the service."
	echo
	echo "| what | per second | of bare | client p50 (ms) | CPU per unit (ms): all / cluster / driver / service | CPU over bare's | the rounds: per second, CPU ms |"
	echo "|---|---|---|---|---|---|---|"
	for mode in bare saga; do
		tps="$(http_median 1 "${lines[$mode]}")"
		m=("$(http_median 2 "${lines[$mode]}")" "$(http_median 3 "${lines[$mode]}")" "$(http_median 4 "${lines[$mode]}")" \
			"$(http_median 5 "${lines[$mode]}")" "$(http_median 6 "${lines[$mode]}")")
		[ "$mode" = bare ] && b_tps="$tps" b_cpu="${m[1]}"
		echo "| $mode | $tps | $(awk -v a="$tps" -v b="$b_tps" 'BEGIN { printf "%.2f", a / b }') | ${m[0]} | ${m[1]} / ${m[2]} / ${m[3]} / ${m[4]} | **$(awk -v a="${m[1]}" -v b="$b_cpu" 'BEGIN { printf "%.2f", a / b }')** | $(printf '%s' "${lines[$mode]}" | awk 'NF { printf "%s%s, %s", (NR > 1 ? "; " : ""), $1, $3 }') |"
	done
}

# Run on its own: a cluster and a service of its own, the section on stdout.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cd "$(dirname "${BASH_SOURCE[0]}")/.."
	. scripts/lib.sh
	saga_run_as_root bench/http.sh "$@"
	. bench/cluster.sh
	service_pid=""
	trap '[ -n "$service_pid" ] && kill "$service_pid" 2>/dev/null; saga_cleanup' EXIT
	bench_cluster_up
	http_service_up
	bench_http
fi
