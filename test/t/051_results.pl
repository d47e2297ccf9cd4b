# 051_results.pl: step results across participants.
#
#  - An order saga over two databases: step 1 inserts an order and returns
#    its id, step 2 pays for that id on the other database, step 3 fails;
#    step 1's compensation deletes exactly that order, through saga.results.
#  - A reply lost to a crash of the worker after the remote commit: the
#    retried action meets its barrier record, and its result is still there
#    for step 2.
#  - Values that would break SQL if spliced (quotes, $$, backslashes,
#    unicode) and a 60kB result arrive intact in the next step, through a
#    batch as well as alone; a 70kB result fails with 54000 and leaves
#    nothing on the participant.
#  - msg mode keeps results like the other modes.
#  - xa: read steps (SELECT ... FOR SHARE) while xa transfers move money
#    between bank_a and bank_b: every read saga sees the total conserved;
#    the same reads made without coordination see a total that is not.
#  - A participant set up before step results: steps without rows still
#    run, one with rows fails saying what to do.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');
$part->safe_psql('bank_a',
	q{CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);
	  INSERT INTO orders (item) VALUES ('old 1'), ('old 2');
	  CREATE TABLE notes (gid text, seen jsonb)});
$part->safe_psql('bank_b',
	q{CREATE TABLE payments (order_id int NOT NULL, amount int NOT NULL);
	  CREATE TABLE notes (gid text, seen jsonb)});

my $order_id_sql = q{(current_setting('saga.results')::jsonb #>> '{order,0,id}')::int};
my $delete_order = "DELETE FROM orders WHERE id = $order_id_sql";
my $note_sql = q{INSERT INTO notes VALUES (current_setting('saga.gid'), current_setting('saga.results')::jsonb)};

sub order_saga
{
	my ($gid, %o) = @_;
	my @steps = (
		{ target => 'bank_a', name => 'order',
		  action => ($o{order_prefix} // '') . "INSERT INTO orders (item) VALUES ('$gid') RETURNING id, item",
		  compensation => $delete_order },
		{ target => 'bank_b', name => 'pay',
		  action => "INSERT INTO payments VALUES ($order_id_sql, 30)",
		  compensation => "DELETE FROM payments WHERE order_id = $order_id_sql" });
	push @steps, { target => 'bank_b', name => 'fail', action => 'SELECT 1/0' } if $o{fail};
	return submit_saga($coord, gid => $gid, steps => \@steps);
}

sub order_of
{
	my ($gid) = @_;
	return $part->safe_psql('bank_a', "SELECT id FROM orders WHERE item = '$gid'");
}

# Loses the reply of step 1 of saga $gid to a crash of the worker after the
# action committed: step 1's action starts by waiting on advisory lock $key
# of bank_a, which the test holds in $hold.  The test locks the step's row
# on the coordinator, lets the action go, waits until $committed (a query on
# bank_a) is true and the worker waits on the row lock to write the reply,
# then runs $o{before_kill} if given and kills the worker.
sub crash_before_reply
{
	my ($gid, $hold, $key, $committed, %o) = @_;
	ok( poll_until($part, 'bank_a',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'pg_saga' AND wait_event = 'advisory'"),
		"$gid: step 1 waits on the participant");
	ok(poll_until($coord, 'coord', "SELECT status = 'running' FROM saga.steps WHERE gid = '$gid' AND step = 1"),
		"$gid: step 1 is recorded as running");
	my $lock = $coord->background_psql('coord');
	$lock->query_safe(
		"BEGIN; SELECT 1 FROM saga.gtx_step WHERE gtx_id = (SELECT id FROM saga.gtx WHERE gid = '$gid') AND step = 1 FOR UPDATE");
	my $old_pid = worker_pid($coord, 'coord');
	$hold->query_safe("SELECT pg_advisory_unlock($key)");
	ok(poll_until($part, 'bank_a', $committed), "$gid: the action reached its end on the participant");
	ok( poll_until($coord, 'postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $old_pid AND wait_event_type = 'Lock'"),
		"$gid: the worker waits to write the reply");
	$hold->quit;
	$o{before_kill}->() if $o{before_kill};
	kill 'KILL', $old_pid;
	eval { $lock->quit };
	like(wait_for_worker($coord, 'coord', $old_pid), qr/^\d+$/, "$gid: a new worker runs after the crash");
	return;
}

# --- the order saga ----------------------------------------------------------
my $gid = order_saga('ord-ok');
is(wait_saga($coord, $gid), 'succeeded', 'the order saga succeeds');
my $id = order_of($gid);
like($id, qr/^\d+$/, 'the order exists on bank_a');
is($coord->safe_psql('coord', "SELECT saga.result('ord-ok')->'order'"),
	qq([{"id": $id, "item": "ord-ok"}]), 'saga.result has the order step\'s rows');
is($part->safe_psql('bank_b', 'SELECT order_id FROM payments'), $id,
	'bank_b paid for the order bank_a made');
is($part->safe_psql('bank_a',
		"SELECT result FROM saga_participant.barrier WHERE gid = 'ord-ok' AND step = 1 AND op = 'action'"),
	qq([{"id": $id, "item": "ord-ok"}]), 'the participant keeps the result with the barrier record');

$gid = order_saga('ord-fail', fail => 1);
is(wait_saga($coord, $gid), 'aborted', 'the order saga whose last step fails is aborted');
is($part->safe_psql('bank_a', 'SELECT item FROM orders ORDER BY id'),
	"old 1\nold 2\nord-ok", 'the compensation deleted exactly the order its action made');
is($part->safe_psql('bank_b', 'SELECT order_id FROM payments'), $id,
	'and the payment for it, not the other one');
is(step_rows($coord, $gid, 'step, status'), "1|compensated\n2|compensated\n3|failed",
	'steps compensated, the failed one not');

# --- a reply lost to a crash of the worker ------------------------------------
# Step 1 waits on an advisory lock the test holds, so the test can lock its
# step row on the coordinator before the action commits: the worker then
# blocks writing the reply, and is killed there.
my $hold = $part->background_psql('bank_a');
$hold->query_safe('SELECT pg_advisory_lock(5101)');
$gid = order_saga('ord-lost', order_prefix => 'SELECT pg_advisory_xact_lock(5101); ');
crash_before_reply($gid, $hold, 5101,
	"SELECT count(*) = 1 FROM saga_participant.barrier WHERE gid = 'ord-lost' AND step = 1 AND result IS NOT NULL");
is(wait_saga($coord, $gid), 'succeeded', 'the saga whose reply was lost succeeds');
$id = order_of($gid);
is($part->safe_psql('bank_a', "SELECT count(*) FROM orders WHERE item = 'ord-lost'"), '1',
	'the order was made once');
is($coord->safe_psql('coord', "SELECT result FROM saga.steps WHERE gid = 'ord-lost' AND step = 1"),
	qq([{"id": $id, "item": "ord-lost"}]), 'the result came from the barrier record');
like($coord->safe_psql('coord',
		"SELECT detail FROM saga.history WHERE gid = 'ord-lost' AND step = 1 AND event = 'action_succeeded'"),
	qr/already applied \(barrier\), result of \d+ bytes/, 'the history says so');
is($part->safe_psql('bank_b', "SELECT count(*) FROM payments WHERE order_id = $id"), '1',
	'step 2 paid for that order');

# --- a compensation whose action's reply was lost ------------------------------
# As above, but the participant is stopped before the worker is killed, and
# the saga is aborted before the action could be retried: the coordinator
# never learns the result, and the compensation gets it from the action's
# barrier record.
$hold = $part->background_psql('bank_a');
$hold->query_safe('SELECT pg_advisory_lock(5104)');
$gid = order_saga('ord-abort', order_prefix => 'SELECT pg_advisory_xact_lock(5104); ');
crash_before_reply($gid, $hold, 5104,
	"SELECT count(*) = 1 FROM saga_participant.barrier WHERE gid = 'ord-abort' AND step = 1 AND result IS NOT NULL",
	before_kill => sub { $part->stop });
$coord->safe_psql('coord', "SELECT saga.abort('ord-abort', 'changed my mind')");
ok( poll_until($coord, 'coord',
		"SELECT status = 'compensating' FROM saga.transactions WHERE gid = 'ord-abort'"),
	'the saga rolls back while the participant is down');
is($coord->safe_psql('coord', "SELECT result IS NULL FROM saga.steps WHERE gid = 'ord-abort' AND step = 1"),
	't', 'the coordinator never learned the result of step 1');
$part->start;
is(wait_saga($coord, $gid), 'aborted', 'the saga is aborted once the participant is back');
is($part->safe_psql('bank_a', "SELECT count(*) FROM orders WHERE item = 'ord-abort'"), '0',
	'the compensation deleted the order, with the id from the barrier record');
is($part->safe_psql('bank_a', 'SELECT count(*) FROM orders'), '4', 'and no other');
is($coord->safe_psql('coord', "SELECT status FROM saga.steps WHERE gid = 'ord-abort' AND step = 1"),
	'compensated', 'step 1 is compensated');

# --- values that would break spliced SQL; sizes --------------------------------
my $odd = q{it's "quoted" \\ $$ $x$ E'\\n' é中 -- ; */};
my $odd_lit = quote_literal($odd);
my $sixty = 'SELECT repeat(\'0123456789\', 6000) AS big';
sub odd_saga
{
	my ($gid) = @_;
	return submit_saga(
		$coord, gid => $gid,
		steps => [
			{ target => 'bank_a', name => 'odd', action => "SELECT $odd_lit AS s, NULL::int AS n" },
			{ target => 'bank_a', name => 'big', action => $sixty, after => [] },
			{ target => 'bank_b', action => $note_sql, after => [ 'odd', 'big' ] } ]);
}
# enough at once that steps share batches, and one alone
my @gids = map { odd_saga("odd-$_") } 1 .. 12;
my @not_ok = grep { wait_saga($coord, $_) ne 'succeeded' } @gids;
is("@not_ok", '', 'sagas with odd and large results succeed');
is($part->safe_psql('bank_b',
		"SELECT count(*) FROM notes WHERE gid LIKE 'odd-%' AND seen->'odd'->0->>'s' = $odd_lit "
		  . "AND seen->'odd'->0->'n' = 'null' AND length(seen->'big'->0->>'big') = 60000"),
	'12', 'every third step got both results intact');
is($coord->safe_psql('coord',
		"SELECT count(*) FROM saga.steps WHERE gid LIKE 'odd-%' AND step = 3 AND result = '[]'"),
	'12', 'a step whose statement returns no rows has the result []');
is($coord->safe_psql('coord',
		"SELECT count(*) FROM saga.steps WHERE gid LIKE 'odd-%' AND step = 2 "
		  . "AND length(result->0->>'big') = 60000"),
	'12', 'the 60kB results are kept whole');

$gid = submit_saga(
	$coord, gid => 'too-big',
	steps => [
		{ target => 'bank_a', action => "INSERT INTO orders (item) VALUES (repeat('x', 70000)) RETURNING item" } ]);
is(wait_saga($coord, $gid), 'aborted', 'a 70kB result aborts its saga');
is($coord->safe_psql('coord', "SELECT status, last_sqlstate FROM saga.steps WHERE gid = 'too-big'"),
	'failed|54000', 'its step failed with 54000');
like($coord->safe_psql('coord', "SELECT last_error FROM saga.steps WHERE gid = 'too-big'"),
	qr/the result of step 1 is 700\d\d bytes, more than saga.max_result_size \(65536 bytes\)/,
	'saying both sizes');
is($part->safe_psql('bank_a',
		"SELECT (SELECT count(*) FROM orders WHERE length(item) = 70000) || '/' || "
		  . "(SELECT count(*) FROM saga_participant.barrier WHERE gid = 'too-big')"),
	'0/0', 'nothing of it is left on the participant');

# --- what the last statement may be ---------------------------------------------
# Rows are collected on the participant as the statement returns them, so
# any statement that returns rows gives them: on a table with a DO ALSO
# rule, with a WITH that writes, in ORDER BY order; two columns of one name
# cannot both be kept, and say so.
$part->safe_psql('bank_a', q{
CREATE TABLE ruled (id int PRIMARY KEY, v int);
CREATE TABLE ruled_log (id int, v int);
CREATE RULE ruled_log AS ON UPDATE TO ruled DO ALSO INSERT INTO ruled_log VALUES (NEW.id, NEW.v);
INSERT INTO ruled SELECT g, g FROM generate_series(1, 30) g;
});
$gid = submit_saga(
	$coord, gid => 'shapes',
	steps => [
		{ target => 'bank_a', name => 'rule', action => 'UPDATE ruled SET v = v + 100 WHERE id = 1 RETURNING id, v',
		  after => [] },
		{ target => 'bank_a', name => 'cte',
		  action => 'WITH d AS (DELETE FROM ruled WHERE id > 27 RETURNING id) SELECT id FROM d ORDER BY id DESC',
		  after => [] },
		{ target => 'bank_a', name => 'order', action => 'SELECT id FROM ruled ORDER BY id DESC LIMIT 5', after => ['cte'] },
		{ target => 'bank_a', name => 'tail', action => "SELECT 1 AS a; -- a comment\nSELECT 2 AS b; /* another */",
		  after => [] } ]);
is(wait_saga($coord, $gid), 'succeeded', 'sagas of such statements succeed');
is($coord->safe_psql('coord', "SELECT string_agg(name || '=' || result::text, ' ' ORDER BY step) FROM saga.steps WHERE gid = 'shapes'"),
	'rule=[{"v": 101, "id": 1}] cte=[{"id": 30}, {"id": 29}, {"id": 28}] '
	  . 'order=[{"id": 27}, {"id": 26}, {"id": 25}, {"id": 24}, {"id": 23}] tail=[{"b": 2}]',
	'each gives the rows of its last statement, in order');
is($part->safe_psql('bank_a', 'SELECT id, v FROM ruled_log'), '1|101', 'the rule ran once');
$gid = submit_saga(
	$coord, gid => 'twice',
	steps => [ { target => 'bank_a', action => 'SELECT a.id, b.id FROM ruled a JOIN ruled b USING (id) WHERE id = 2' } ]);
is(wait_saga($coord, $gid), 'aborted', 'a result with two columns of one name aborts its saga');
is($coord->safe_psql('coord', "SELECT last_sqlstate || ' ' || split_part(last_error, E'\n', 1) FROM saga.steps WHERE gid = 'twice'"),
	'42712 the result of step 1 has two columns named "id"', 'saying which');

# MERGE ... RETURNING exists from PostgreSQL 17 on
SKIP:
{
	skip 'MERGE ... RETURNING needs PostgreSQL 17', 2
	  if $coord->safe_psql('coord', 'SHOW server_version_num') < 170000;
	$part->safe_psql('bank_a', 'CREATE TABLE merged (id int PRIMARY KEY, v int); INSERT INTO merged VALUES (3, 3)');
	$gid = submit_saga(
		$coord, gid => 'merge',
		steps => [ { target => 'bank_a',
			action => 'MERGE INTO merged r USING (VALUES (3), (99)) AS s (id) ON r.id = s.id '
			  . 'WHEN MATCHED THEN UPDATE SET v = r.v + 1 WHEN NOT MATCHED THEN INSERT VALUES (s.id, 0) '
			  . 'RETURNING merge_action() AS did, r.id' } ]);
	is(wait_saga($coord, $gid), 'succeeded', 'a MERGE ... RETURNING saga succeeds');
	is($coord->safe_psql('coord', "SELECT result FROM saga.steps WHERE gid = 'merge'"),
		'[{"id": 3, "did": "UPDATE"}, {"id": 99, "did": "INSERT"}]', 'and gives the rows MERGE returned');
}

# --- msg mode -------------------------------------------------------------------
$gid = submit_saga(
	$coord, gid => 'msg-res', mode => 'msg',
	steps => [
		{ target => 'bank_a', name => 'made', action => "INSERT INTO orders (item) VALUES ('msg') RETURNING id" },
		{ target => 'bank_b', action => $note_sql } ]);
is(wait_saga($coord, $gid), 'succeeded', 'a msg saga with results succeeds');
$id = order_of('msg');
is($part->safe_psql('bank_b', "SELECT seen FROM notes WHERE gid = 'msg-res'"),
	qq({"made": [{"id": $id}]}), 'its second delivery read the first one\'s result');

# --- xa: a consistent read across databases -------------------------------------
# Transfers between account 1 of bank_a and bank_b in xa mode, every one
# locking bank_a first; reads lock in the same order, so nobody waits on a
# cycle.  Each read saga's result must total 200.
sub xa_transfer
{
	my ($gid, $delta) = @_;
	return submit_saga(
		$coord, gid => $gid, mode => 'xa',
		steps => [
			{ target => 'bank_a', action => "UPDATE account SET balance = balance - ($delta) WHERE id = 1",
			  expect_rows => 1 },
			{ target => 'bank_b', action => "UPDATE account SET balance = balance + ($delta) WHERE id = 1",
			  expect_rows => 1 } ]);
}
sub xa_read
{
	my ($gid, $prefix_b) = @_;
	return submit_saga(
		$coord, gid => $gid, mode => 'xa',
		steps => [
			{ target => 'bank_a', name => 'a', action => 'SELECT balance FROM account WHERE id = 1 FOR SHARE' },
			{ target => 'bank_b', name => 'b',
			  action => ($prefix_b // '') . 'SELECT balance FROM account WHERE id = 1 FOR SHARE' } ]);
}
sub read_total
{
	my ($gid) = @_;
	return $coord->safe_psql('coord',
		"SELECT (r #>> '{a,0,balance}')::numeric + (r #>> '{b,0,balance}')::numeric "
		  . "FROM saga.result('$gid') AS r");
}

# reads without coordination while xa transfers run: bank_a, then bank_b a
# moment later, as two plain queries; the test goes on until one pair sees
# a total other than 200, or fails after a minute
my $ra = $part->background_psql('bank_a');
my $rb = $part->background_psql('bank_b');
my ($seen, $reads, @moving) = (undef, 0);
my $until = time + 60;
while (!defined $seen && time < $until)
{
	push @moving, xa_transfer('xa-u-' . scalar(@moving), @moving % 2 ? 3 : -3)
	  if $reads % 2 == 0 && @moving < 300;
	my $a = $ra->query_safe('SELECT balance FROM account WHERE id = 1');
	$rb->query_safe('SELECT pg_sleep(0.005)');
	my $b = $rb->query_safe('SELECT balance FROM account WHERE id = 1');
	$reads++;
	$seen = "$a + $b" if $a + $b != 200;
}
ok(defined $seen, 'reads without coordination saw a total other than 200 ('
	  . ($seen // 'never') . " after $reads pairs)");
$ra->quit;
$rb->quit;
@not_ok = grep { wait_saga($coord, $_) ne 'succeeded' } @moving;
is("@not_ok", '', 'the transfers meanwhile succeeded');
is(total_balance($part, 'bank_a') + total_balance($part, 'bank_b'), 400, 'and conserved the money');

# the same interleaving tried with an xa read: its bank_b step waits on a lock
# the test holds while the transfer is submitted; the transfer must wait for
# the read, and the read sees 200
$hold = $part->background_psql('bank_b');
$hold->query_safe('SELECT pg_advisory_lock(5102)');
my $r = xa_read('xa-r0', 'SELECT pg_advisory_xact_lock(5102); ');
ok( poll_until($part, 'bank_b',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'pg_saga' AND wait_event = 'advisory'"),
	'the read saga holds bank_a and waits before reading bank_b');
my $t = xa_transfer('xa-t1', 10);
ok( poll_until($part, 'bank_a',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'pg_saga' "
		  . "AND wait_event_type = 'Lock' AND query LIKE '%xa-t1%'"),
	'the transfer waits for the read\'s lock on bank_a');
$hold->query_safe('SELECT pg_advisory_unlock(5102)');
$hold->quit;
is(wait_saga($coord, $r), 'succeeded', 'the read saga succeeds');
is(wait_saga($coord, $t), 'succeeded', 'then the transfer');
is(read_total($r), '200', 'the read saw the total conserved');

# and a stream of both at once
my (@reads, @transfers);
for my $i (1 .. 15)
{
	push @transfers, xa_transfer("xa-t-$i", $i % 2 ? 7 : -5);
	push @reads, xa_read("xa-r-$i");
}
@not_ok = grep { wait_saga($coord, $_) ne 'succeeded' } @transfers, @reads;
is("@not_ok", '', 'every transfer and read of the stream succeeds');
my @wrong = grep { read_total($_) ne '200' } @reads;
is("@wrong", '', 'every read saga saw a total of 200');
is(total_balance($part, 'bank_a') + total_balance($part, 'bank_b'), 400, 'no money made or lost');

# an xa action whose reply a crash lost after it prepared: the attempt found
# prepared has no result the coordinator can read, so it is rolled back and
# the action runs again, answering its result
$hold = $part->background_psql('bank_a');
$hold->query_safe('SELECT pg_advisory_lock(5103)');
$gid = submit_saga(
	$coord, gid => 'xa-lost', mode => 'xa',
	steps => [
		{ target => 'bank_a', name => 'a',
		  action => 'SELECT pg_advisory_xact_lock(5103); SELECT id, balance FROM account WHERE id = 2 FOR SHARE' },
		{ target => 'bank_b', action => $note_sql } ]);
crash_before_reply($gid, $hold, 5103, 'SELECT count(*) = 1 FROM pg_prepared_xacts');
is(wait_saga($coord, $gid), 'succeeded', 'the xa saga whose reply was lost succeeds');
is($coord->safe_psql('coord', "SELECT result FROM saga.steps WHERE gid = 'xa-lost' AND step = 1"),
	'[{"id": 2, "balance": 100}]', 'with the result of its action');
is($part->safe_psql('bank_b', "SELECT seen FROM notes WHERE gid = 'xa-lost'"),
	'{"a": [{"id": 2, "balance": 100}]}', 'which the next step read');
like($coord->safe_psql('coord', "SELECT string_agg(event, ' ' ORDER BY at) FROM saga.history WHERE gid = 'xa-lost' AND step = 1"),
	qr/probe_started prepared_discarded rollback_started rollback_done action_started action_succeeded/,
	'the prepared attempt was found, rolled back, and the action run again');
is($part->safe_psql('bank_a', 'SELECT count(*) FROM pg_prepared_xacts'), '0', 'no prepared transaction is left');

# --- at mode: actions answer results too ------------------------------------------
$coord->safe_psql('coord', "SELECT saga.setup_participant('bank_a', at_tables => '{orders}')");
$gid = submit_saga(
	$coord, gid => 'at-res', mode => 'at',
	steps => [
		{ target => 'bank_a', name => 'order', action => "INSERT INTO orders (item) VALUES ('at-res') RETURNING id" },
		{ target => 'bank_b', action => q{SELECT current_setting('saga.results')::jsonb AS seen} } ]);
is(wait_saga($coord, $gid), 'succeeded', 'an at saga with a result succeeds');
$id = order_of('at-res');
is($coord->safe_psql('coord', "SELECT result FROM saga.steps WHERE gid = 'at-res' AND step = 2"),
	qq([{"seen": {"order": [{"id": $id}]}}]), 'its second step read the result of the first');
$gid = submit_saga(
	$coord, gid => 'at-res-fail', mode => 'at',
	steps => [
		{ target => 'bank_a', name => 'order', action => "INSERT INTO orders (item) VALUES ('at-res-fail') RETURNING id" },
		{ target => 'bank_b', action => 'SELECT 1/0' } ]);
is(wait_saga($coord, $gid), 'aborted', 'an at saga with a result whose next step fails is aborted');
like($coord->safe_psql('coord', "SELECT result FROM saga.steps WHERE gid = 'at-res-fail' AND step = 1"),
	qr/^\[\{"id": \d+\}\]$/, 'the result of its first step was kept');
is($part->safe_psql('bank_a', "SELECT count(*) FROM orders WHERE item = 'at-res-fail'"), '0',
	'and the row it inserted was taken back from the images');

# --- a participant set up before step results ------------------------------------
$part->safe_psql('postgres', 'CREATE DATABASE bank_old');
$part->safe_psql('bank_old', 'CREATE TABLE t (v int)');
$coord->safe_psql('coord', 'SELECT 1');
add_target($coord, 'bank_old', $part, 'bank_old');
# what a 1.3 participant lacks
$part->safe_psql('bank_old', q{
DROP FUNCTION saga_participant.run_batch(text, text[], int[], text[], text[], bigint[], text[], text[], int, text[]);
DROP FUNCTION saga_participant.run_batch_step(text, text, int, text, text, bigint, text, text, int, text);
DROP FUNCTION saga_participant.run_step(text, text, int, text, text, bigint, text, text, int, text) CASCADE;
DROP FUNCTION saga_participant.version();
CREATE OR REPLACE FUNCTION saga_participant.run(
	coordinator text, gid text, step int, op text, sql text, expect_rows bigint DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO saga_participant.barrier (coordinator, gid, step, op, origin)
	VALUES (coordinator, gid, step, op, op) ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN RETURN 'duplicate'; END IF;
	EXECUTE sql;
	RETURN 'done';
END $$;
});
$gid = submit_saga($coord, gid => 'old-ok',
	steps => [ { target => 'bank_old', action => 'INSERT INTO t VALUES (1)' },
			   { target => 'bank_old', action => 'INSERT INTO t VALUES (2)' } ]);
is(wait_saga($coord, $gid), 'succeeded', 'an old participant runs steps that return no rows');
$gid = submit_saga($coord, gid => 'old-rows',
	steps => [ { target => 'bank_old', action => 'INSERT INTO t VALUES (3) RETURNING v' } ]);
is(wait_saga($coord, $gid), 'aborted', 'a step that returns rows cannot run there');
like($coord->safe_psql('coord', "SELECT last_error FROM saga.steps WHERE gid = 'old-rows'"),
	qr/saga_participant\.run_step.*does not exist.*run saga\.setup_participant\('bank_old'\)/s,
	'and the error says what to do');
is($part->safe_psql('bank_old', 'SELECT string_agg(v::text, \',\' ORDER BY v) FROM t'), '1,2',
	'nothing of it ran');

$coord->stop;
$part->stop;
done_testing();
