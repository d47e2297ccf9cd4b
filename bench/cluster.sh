# bench/cluster.sh: the benchmark's cluster, shared by bench/run.sh and
# bench/profile.sh.  Sourced after scripts/lib.sh; bench_cluster_up builds
# and installs pg_saga, compiles the load driver, starts a throwaway cluster
# with durable commits and creates the coordinator database (bench) and the
# two participants (bank_a, bank_b, BENCH_ACCOUNTS (10,000) accounts each).  It sets work, dir,
# port, COORD, CONN_A, CONN_B and postmaster_pid, and defines sql DB QUERY.
# cluster_cpu_ticks is the CPU the cluster used so far, in clock ticks
# (ticks_per_s a second).  BENCH_EXTENSION_VERSION installs an earlier version of the extension, to
# compare it with the current one (ALTER EXTENSION pg_saga UPDATE).
# BENCH_SETTINGS adds lines to postgresql.conf (e.g. "saga.batch_wait = 50").

sql() { saga_as_pg "${PSQL[@]}" -d "$1" -At -c "$2"; }

bench_cluster_up() {
	saga_install_deps
	saga_build_install
	work="$(saga_workdir)"
	port="$(saga_free_port)"
	dir="$work/bench-cluster"
	saga_start_cluster "$dir" "$port"

	# Durable commits, as in production; the tests' cluster runs with fsync off.
	saga_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<-EOF
	# bench/cluster.sh
	fsync = on
	synchronous_commit = on
	max_connections = 200
	shared_buffers = '256MB'
	saga.max_connections_per_target = 16
	log_min_messages = warning
	EOF
	# BENCH_SETTINGS: more postgresql.conf lines, for an A/B of a setting
	if [ -n "${BENCH_SETTINGS:-}" ]; then
		printf '%s\n' "$BENCH_SETTINGS" | saga_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
	fi
	saga_as_pg pg_ctl -D "$dir/data" -l "$dir/postmaster.log" -w restart >/dev/null

	PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port")
	saga_log "compiling the driver"
	gcc -O2 -Wall -o "$work/driver" bench/driver.c -I"$("$(saga_pg_config)" --includedir)" \
		-L"$("$(saga_pg_config)" --libdir)" -lpq -lpthread
	chmod a+rx "$work/driver"

	saga_log "creating the databases"
	for db in bench bank_a bank_b; do
		sql postgres "CREATE DATABASE $db"
	done
	for db in bank_a bank_b; do
		sql "$db" "CREATE TABLE account (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
				   INSERT INTO account SELECT g, 1000000000 FROM generate_series(1, ${BENCH_ACCOUNTS:-10000}) g;"
	done
	sql bench "CREATE EXTENSION pg_saga ${BENCH_EXTENSION_VERSION:+VERSION '$BENCH_EXTENSION_VERSION'};
			   CREATE SERVER bank_a FOREIGN DATA WRAPPER pg_saga OPTIONS (host '127.0.0.1', port '$port', dbname 'bank_a');
			   CREATE SERVER bank_b FOREIGN DATA WRAPPER pg_saga OPTIONS (host '127.0.0.1', port '$port', dbname 'bank_b');
			   CREATE USER MAPPING FOR postgres SERVER bank_a OPTIONS (user 'postgres');
			   CREATE USER MAPPING FOR postgres SERVER bank_b OPTIONS (user 'postgres');
			   SELECT saga.setup_participant('bank_a');
			   SELECT saga.setup_participant('bank_b');"

	COORD="host=$dir port=$port dbname=bench user=postgres"
	CONN_A="host=$dir port=$port dbname=bank_a user=postgres"
	CONN_B="host=$dir port=$port dbname=bank_b user=postgres"
	postmaster_pid="$(head -1 "$dir/data/postmaster.pid")"
}

# The pids whose parent is $1, from /proc (no procps needed).
children_of() {
	local parent="$1" stat line fields
	for stat in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$stat" || continue
		read -r -a fields <<<"${line##*) }"	# after "pid (comm) ": state ppid ...
		if [ "${fields[1]:-}" = "$parent" ]; then
			stat="${stat#/proc/}"
			echo "${stat%/stat}"
		fi
	done
}

# CPU seconds used by the cluster so far: the postmaster's reaped children
# plus the live ones (utime + stime, in clock ticks).
cluster_cpu_ticks() {
	local total=0 pid f
	f=($(cut -d' ' -f14-17 "/proc/$postmaster_pid/stat"))
	total=$(( f[0] + f[1] + f[2] + f[3] ))
	for pid in $(children_of "$postmaster_pid"); do
		f=($(cut -d' ' -f14-15 "/proc/$pid/stat" 2>/dev/null || echo "0 0"))
		total=$(( total + f[0] + f[1] ))
	done
	echo "$total"
}
ticks_per_s="$(getconf CLK_TCK)"

# Can perf sample every CPU here?
bench_can_profile() {
	command -v perf >/dev/null &&
		perf record -q -a -o /dev/null -- true >/dev/null 2>&1
}

# "pid|role" of every session while the saga load runs, role being client
# (a client's backend on the coordinator), worker (the pg_saga worker),
# participant (the worker's sessions on the participants) or other.
bench_roles() {
	sql bench "SELECT pid, CASE WHEN backend_type = 'pg_saga worker' THEN 'worker'
								WHEN application_name = 'pg_saga' THEN 'participant'
								WHEN datname = 'bench' AND backend_type = 'client backend' THEN 'client'
								ELSE 'other' END
				 FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
}

# Sagas finished so far.
bench_finished() {
	sql bench "SELECT count(*) FROM saga.gtx WHERE finished_at IS NOT NULL"
}

# bench_profile CLIENTS SECONDS TOP: runs the saga load, samples every CPU
# with perf meanwhile and prints, per role, its share of all samples and its
# TOP hottest functions.
bench_profile() {
	local clients="$1" seconds="$2" top="$3" driver n0 n1 role pid pids share
	declare -A role_pids
	saga_as_pg "$work/driver" saga "$clients" $((seconds + 4)) 0 "$COORD" "$CONN_A" "$CONN_B" >/dev/null &
	driver=$!
	sleep 2
	while IFS='|' read -r pid role; do
		role_pids[$role]="${role_pids[$role]:+${role_pids[$role]},}$pid"
	done < <(bench_roles)
	n0="$(bench_finished)"
	perf record -q -F 997 -a -o "$work/perf.data" -- sleep "$seconds" >/dev/null 2>&1
	n1="$(bench_finished)"
	wait "$driver"
	echo "perf, $clients clients, $((n1 - n0)) sagas finished in the $seconds s sampled;"
	echo "per role: its share of all samples, then its hottest functions as % of the role"
	for role in client worker participant; do
		pids="${role_pids[$role]:-0}"
		share="$(perf report -q -i "$work/perf.data" --no-children --pid "$pids" --sort pid 2>/dev/null |
			awk '{ s += $1 } END { printf "%.1f", s }')"
		echo
		echo "$role: ${share}% of all samples"
		perf report -q -i "$work/perf.data" --no-children --pid "$pids" --percentage relative \
			--sort dso,sym 2>/dev/null | grep -v '^$' | head -n "$top" || true
	done
}
