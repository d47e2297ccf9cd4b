#!/usr/bin/env bash
# scripts/demo.sh: pg_saga in two minutes.
#
#   bash scripts/demo.sh
#
# As root, or as a user with sudo (it re-runs itself through sudo).
#
# Installs what is missing (Debian packages), builds and installs pg_saga,
# starts a throwaway cluster of the machine's PostgreSQL (15 on bookworm, 17 on
# trixie; see scripts/lib.sh) on a free port of 127.0.0.1, and
# runs sagas between two "banks" coordinated from a third database: a
# transfer defined once (saga.define) and started by name with its values
# (bound values), once succeeding and once failing and compensated, an
# order whose id the next step uses (step results), and a failing transfer
# in at mode, rolled back from row images, and a step that calls a small
# payment service (scripts/demo_service.pl, started on another free port
# of 127.0.0.1) with its idempotency key.  The cluster, the service and
# their files are removed at the end, also on failure.  On a shared machine, run it in a
# Debian root: `bash scripts/debian-root.sh bookworm --demo`.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_ROLE=app
DEMO_PASSWORD=app-secret

heading() {
	printf '\n== %s\n\n' "$*"
}

# psql as the postgres OS user, on the demo cluster's socket.
#   q DB [psql options...]   reads SQL from stdin
q() {
	local db="$1"
	shift
	saga_as_pg psql -X -q -v ON_ERROR_STOP=1 -P footer=off -P null='' \
		-h "$DEMO_DIR" -p "$DEMO_PORT" -d "$db" "$@"
}

# The same, connected as the application role.
qapp() {
	local db="$1"
	shift
	q "$db" -U "$DEMO_ROLE" "$@"
}

# A query's result as a table, without psql's trailing empty line.
show() {
	local db="$1"
	shift
	qapp "$db" -c "$*" | sed -e '${/^$/d}'
}

balances() {
	local a b
	a="$(qapp bank_a -At -F' ' -R', ' -c "SELECT 'account ' || id || ': ' || balance FROM account ORDER BY id")"
	b="$(qapp bank_b -At -F' ' -R', ' -c "SELECT 'account ' || id || ': ' || balance FROM account ORDER BY id")"
	printf '  bank_a  %s\n  bank_b  %s\n' "$a" "$b"
}

demo_cleanup() {
	local rc=$?
	trap - EXIT
	[ -n "${DEMO_SERVICE_PID:-}" ] && kill "$DEMO_SERVICE_PID" 2>/dev/null
	saga_cleanup || true
	[ -n "${DEMO_DIR:-}" ] && rm -rf "$DEMO_DIR"
	if [ "$rc" -ne 0 ]; then
		echo "demo failed (exit $rc)" >&2
	fi
	exit "$rc"
}

saga_run_as_root scripts/demo.sh "$@"

DEMO_DIR=""
trap demo_cleanup EXIT

heading "Preparing: packages, build, a throwaway cluster"
saga_install_deps
saga_build_install
DEMO_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pg_saga_demo.XXXXXX")"
DEMO_PORT="$(saga_free_port)"
saga_start_cluster "$DEMO_DIR" "$DEMO_PORT"

# The application role logs in with a password over TCP, as in production:
# a non-superuser's user mapping must carry a password the remote uses.
saga_as_pg sh -c "{ printf 'host all %s 127.0.0.1/32 scram-sha-256\n' '$DEMO_ROLE'; cat '$DEMO_DIR/data/pg_hba.conf'; } > '$DEMO_DIR/data/pg_hba.conf.new' && mv '$DEMO_DIR/data/pg_hba.conf.new' '$DEMO_DIR/data/pg_hba.conf'"

q postgres <<SQL
SELECT pg_reload_conf() \\g /dev/null
SET password_encryption = 'scram-sha-256';
CREATE ROLE $DEMO_ROLE LOGIN PASSWORD '$DEMO_PASSWORD';
CREATE DATABASE shop;
CREATE DATABASE bank_a OWNER $DEMO_ROLE;
CREATE DATABASE bank_b OWNER $DEMO_ROLE;
SQL

heading "Setting up: coordinator 'shop', participants 'bank_a' and 'bank_b'"

for bank in bank_a bank_b; do
	qapp "$bank" <<'SQL'
CREATE TABLE account (
	id		int PRIMARY KEY,
	balance	numeric NOT NULL CHECK (balance >= 0)
);
CREATE TABLE ledger (
	id		bigserial PRIMARY KEY,
	gid		text NOT NULL,
	step	int NOT NULL,
	account	int NOT NULL,
	amount	numeric NOT NULL,
	note	text NOT NULL,
	at		timestamptz NOT NULL DEFAULT now()
);
SQL
done
qapp bank_a -c "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)"
qapp bank_b -c "CREATE TABLE payments (id serial PRIMARY KEY, order_id int NOT NULL, amount numeric NOT NULL)"
qapp bank_a -c "INSERT INTO account VALUES (1, 100), (2, 100)"
qapp bank_b -c "INSERT INTO account VALUES (1, 20), (2, 100)"

# The coordinator: the extension, one foreign server per participant, and
# the application role's user mappings (what the worker connects as).
q shop <<SQL
CREATE EXTENSION pg_saga;
CREATE SERVER bank_a FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$DEMO_PORT', dbname 'bank_a');
CREATE SERVER bank_b FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$DEMO_PORT', dbname 'bank_b');
GRANT USAGE ON FOREIGN SERVER bank_a, bank_b TO $DEMO_ROLE;
CREATE USER MAPPING FOR $DEMO_ROLE SERVER bank_a OPTIONS (user '$DEMO_ROLE', password '$DEMO_PASSWORD');
CREATE USER MAPPING FOR $DEMO_ROLE SERVER bank_b OPTIONS (user '$DEMO_ROLE', password '$DEMO_PASSWORD');
SQL
qapp shop <<'SQL'
SELECT saga.setup_participant('bank_a', at_tables => '{account, ledger}') \g /dev/null
SELECT saga.setup_participant('bank_b', at_tables => '{account, ledger}') \g /dev/null
SQL

cat <<EOF
  shop     CREATE EXTENSION pg_saga; servers bank_a, bank_b; user mappings for '$DEMO_ROLE'
  bank_a   account(id, balance CHECK (balance >= 0)), ledger, orders; barrier objects;
           account and ledger enabled for at mode
  bank_b   the same, with payments instead of orders
EOF
echo
echo "Balances before:"
balances

heading "1. A transfer, defined once: \$1 from bank_a account \$2 to bank_b account \$3"

cat <<'EOF'
  SELECT saga.define('transfer', ARRAY[
      saga.step('bank_a',
          action       => 'INSERT INTO ledger ... ($2, -$1, ''debit'');
                           UPDATE account SET balance = balance - $1 WHERE id = $2',
          compensation => 'INSERT INTO ledger ... ($2, $1, ''refund of debit'');
                           UPDATE account SET balance = balance + $1 WHERE id = $2',
          name => 'debit', expect_rows => 1),
      saga.step('bank_b', ... $3 ... name => 'credit', expect_rows => 1)]);

  The steps are stored once, as version 1 of 'transfer'; each saga started
  from it brings its own values, bound on the participants as the
  parameters of prepared statements (never spliced into the SQL).

EOF

qapp shop <<'SQL'
SELECT saga.define('transfer', ARRAY[
	saga.step('bank_a',
		action => $$INSERT INTO ledger (gid, step, account, amount, note)
				VALUES (current_setting('saga.gid'), current_setting('saga.step')::int, $2, -$1::numeric, 'debit');
				UPDATE account SET balance = balance - $1::numeric WHERE id = $2$$,
		compensation => $$INSERT INTO ledger (gid, step, account, amount, note)
				VALUES (current_setting('saga.gid'), current_setting('saga.step')::int, $2, $1::numeric, 'refund of debit');
				UPDATE account SET balance = balance + $1::numeric WHERE id = $2$$,
		name => 'debit', expect_rows => 1),
	saga.step('bank_b',
		action => $$INSERT INTO ledger (gid, step, account, amount, note)
				VALUES (current_setting('saga.gid'), current_setting('saga.step')::int, $3, $1::numeric, 'credit');
				UPDATE account SET balance = balance + $1::numeric WHERE id = $3$$,
		compensation => $$INSERT INTO ledger (gid, step, account, amount, note)
				VALUES (current_setting('saga.gid'), current_setting('saga.step')::int, $3, -$1::numeric, 'reversal of credit');
				UPDATE account SET balance = balance - $1::numeric WHERE id = $3$$,
		name => 'credit', expect_rows => 1)]) \g /dev/null
SQL
show shop "SELECT name, version, owner, mode, cardinality(steps) AS steps FROM saga.definitions"

heading "2. Transfer 30 from bank_a account 1 to bank_b account 1"

cat <<'EOF'
  SELECT saga.start('transfer', ARRAY['30', '1', '1'], gid => 'transfer-1',
                    payload => '{"amount": 30}');
  SELECT saga.wait('transfer-1');

EOF

qapp shop <<'SQL'
SELECT saga.start('transfer', ARRAY['30', '1', '1'], gid => 'transfer-1',
	payload => '{"from": "bank_a/1", "to": "bank_b/1", "amount": 30}') \g /dev/null
SQL
printf "saga.wait('transfer-1') returned: %s\n\n" \
	"$(qapp shop -At -c "SELECT saga.wait('transfer-1')")"
echo "Balances after:"
balances

heading "3. Transfer 30 from bank_a account 2 to bank_b account 3 (no such account)"

cat <<'EOF'
  SELECT saga.start('transfer', ARRAY['30', '2', '3'], gid => 'transfer-2');

  Step 1 'debit' takes 30 from bank_a; step 2 'credit' finds no account 3
  on bank_b: its UPDATE changes 0 rows where expect_rows says 1.  That is a
  business failure: the credit's remote transaction rolls back and the
  debit is compensated.

EOF

qapp shop <<'SQL'
SELECT saga.start('transfer', ARRAY['30', '2', '3'], gid => 'transfer-2',
	payload => '{"from": "bank_a/2", "to": "bank_b/3", "amount": 30}') \g /dev/null
SQL
printf "saga.wait('transfer-2') returned: %s\n\n" \
	"$(qapp shop -At -c "SELECT saga.wait('transfer-2')")"
echo "Balances after (unchanged):"
balances
echo
echo "Ledger of bank_a for transfer-2 (the debit and its compensation):"
show bank_a "SELECT gid, step, account, amount, note FROM ledger WHERE gid = 'transfer-2' ORDER BY id"

heading "4. An order on bank_a, paid on bank_b with the order's id (step results)"

cat <<'EOF'
  SELECT saga.start(ARRAY[
      saga.step('bank_a', $$INSERT INTO orders (item) VALUES ('book') RETURNING id$$,
                $$DELETE FROM orders WHERE id = (current_setting('saga.results')::jsonb #>> '{order,0,id}')::int$$,
                name => 'order'),
      saga.step('bank_b', $$INSERT INTO payments (order_id, amount)
                VALUES ((current_setting('saga.results')::jsonb #>> '{order,0,id}')::int, 12) RETURNING id$$,
                name => 'pay')],
      gid => 'order-1');

EOF

qapp shop <<'SQL'
SELECT saga.start(ARRAY[
	saga.step('bank_a', $$INSERT INTO orders (item) VALUES ('book') RETURNING id$$,
			  $$DELETE FROM orders WHERE id = (current_setting('saga.results')::jsonb #>> '{order,0,id}')::int$$,
			  name => 'order'),
	saga.step('bank_b', $$INSERT INTO payments (order_id, amount)
			  VALUES ((current_setting('saga.results')::jsonb #>> '{order,0,id}')::int, 12) RETURNING id$$,
			  $$DELETE FROM payments WHERE id = (current_setting('saga.results')::jsonb #>> '{pay,0,id}')::int$$,
			  name => 'pay')],
	gid => 'order-1') \g /dev/null
SQL
printf "saga.wait('order-1') returned: %s\n" "$(qapp shop -At -c "SELECT saga.wait('order-1')")"
printf "saga.result('order-1'): %s\n\n" "$(qapp shop -At -c "SELECT saga.result('order-1')")"
echo "The payment on bank_b refers to the order bank_a made:"
show bank_b "SELECT id, order_id, amount FROM payments"

heading "5. Transfer 500 from bank_b account 1 (balance too low), in at mode: no compensation written"

cat <<'EOF'
  SELECT saga.start(ARRAY[
      saga.step('bank_a', 'INSERT INTO ledger ...; UPDATE account SET balance = balance + 500 WHERE id = 2'),
      saga.step('bank_b', 'INSERT INTO ledger ...; UPDATE account SET balance = balance - 500 WHERE id = 1')],
      gid => 'transfer-at', mode => 'at');
  The credit on bank_a ran; the debit broke CHECK (balance >= 0) on bank_b
  and failed; bank_a put back the rows the credit changed, from the images
  it recorded.

EOF

qapp shop <<'SQL'
SELECT saga.start(ARRAY[
	saga.step('bank_a', $$INSERT INTO ledger (gid, step, account, amount, note)
				VALUES (current_setting('saga.gid'), current_setting('saga.step')::int, 2, 500, 'credit');
				UPDATE account SET balance = balance + 500 WHERE id = 2$$, expect_rows => 1, name => 'credit'),
	saga.step('bank_b', $$INSERT INTO ledger (gid, step, account, amount, note)
				VALUES (current_setting('saga.gid'), current_setting('saga.step')::int, 1, -500, 'debit');
				UPDATE account SET balance = balance - 500 WHERE id = 1$$, expect_rows => 1, name => 'debit')],
	gid => 'transfer-at', mode => 'at') \g /dev/null
SQL
printf "saga.wait('transfer-at') returned: %s\n\n" \
	"$(qapp shop -At -c "SELECT saga.wait('transfer-at')")"
echo "Balances after (unchanged), and no ledger row of transfer-at left on bank_a:"
balances
show bank_a "SELECT count(*) AS ledger_rows_of_transfer_at FROM ledger WHERE gid = 'transfer-at'"

heading "6. A debit on bank_a and a card charge through a payment service (HTTP target)"

DEMO_SERVICE_PORT="$(saga_free_port)"
perl "$SAGA_REPO_ROOT/scripts/demo_service.pl" "$DEMO_SERVICE_PORT" "$DEMO_DIR/service.log" &
DEMO_SERVICE_PID=$!
for _ in $(seq 50); do
	perl -MIO::Socket::INET -e 'exit !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]")' \
		"$DEMO_SERVICE_PORT" && break
	sleep 0.1
done
q shop <<SQL
CREATE SERVER pay FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'http://127.0.0.1:$DEMO_SERVICE_PORT/v1');
GRANT USAGE ON FOREIGN SERVER pay TO $DEMO_ROLE;
CREATE USER MAPPING FOR $DEMO_ROLE SERVER pay OPTIONS (bearer_token 'demo-token');
SQL

cat <<EOF
  CREATE SERVER pay FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'http://127.0.0.1:$DEMO_SERVICE_PORT/v1');
  CREATE USER MAPPING FOR $DEMO_ROLE SERVER pay OPTIONS (bearer_token '...');

  SELECT saga.start(ARRAY[
      saga.step('bank_a', 'UPDATE account SET balance = balance - \$1::numeric WHERE id = 2',
                'UPDATE account SET balance = balance + \$1::numeric WHERE id = 2', expect_rows => 1),
      saga.step('pay', saga.http('POST', '/charges', '{"amount": "\$1"}'),
                saga.http('POST', '/charges/{\$.charge.id}/refund'), name => 'charge')],
      gid => 'order-2', args => ARRAY['12']);

  The service gets the saga's value as data, and an Idempotency-Key that
  stays the same on every retry; the charge it answers is the step's result.

EOF

qapp shop <<'SQL'
SELECT saga.start(ARRAY[
	saga.step('bank_a', 'UPDATE account SET balance = balance - $1::numeric WHERE id = 2',
			  'UPDATE account SET balance = balance + $1::numeric WHERE id = 2', expect_rows => 1),
	saga.step('pay', saga.http('POST', '/charges', '{"amount": "$1"}'),
			  saga.http('POST', '/charges/{$.charge.id}/refund'), name => 'charge')],
	gid => 'order-2', args => ARRAY['12']) \g /dev/null
SQL
printf "saga.wait('order-2') returned: %s\n" "$(qapp shop -At -c "SELECT saga.wait('order-2')")"
printf "saga.result('order-2'): %s\n\n" "$(qapp shop -At -c "SELECT saga.result('order-2')")"
echo "What the service received:"
sed -e 's/^/  /' "$DEMO_DIR/service.log"
kill "$DEMO_SERVICE_PID" 2>/dev/null || true
wait "$DEMO_SERVICE_PID" 2>/dev/null || true
DEMO_SERVICE_PID=""

heading "saga.transactions"
show shop "SELECT gid, mode, status, owner, definition, definition_version AS version, args,
	steps, steps_done, finished_at - submitted_at AS took, last_error
	FROM saga.transactions ORDER BY created_at"

heading "saga.steps"
show shop "SELECT gid, step, name, target, status, attempts, result, last_sqlstate, last_error
	FROM saga.steps ORDER BY gid, step"

heading "saga.history"
show shop "SELECT gid, step, to_char(at, 'HH24:MI:SS.MS') AS at, event, detail
	FROM saga.history ORDER BY at"

heading "saga.stats"
show shop "SELECT status, sagas, finished_last_minute, latency_p50_last_5min
	FROM saga.stats ORDER BY status"

echo
echo "Done; stopping the cluster."
