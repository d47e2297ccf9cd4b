# bench/cluster.sh: the benchmark's cluster, shared by bench/run.sh and
# bench/profile.sh.  Sourced after scripts/lib.sh; bench_cluster_up builds
# and installs pg_saga, compiles the load driver, starts a throwaway cluster
# with durable commits and creates the coordinator database (bench) and the
# two participants (bank_a, bank_b, 100 accounts each).  It sets work, dir,
# port, COORD, CONN_A, CONN_B and postmaster_pid, and defines sql DB QUERY.

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
				   INSERT INTO account SELECT g, 1000000000 FROM generate_series(1, 100) g;"
	done
	sql bench "CREATE EXTENSION pg_saga;
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
