# 023_msg.pl: mode msg (a transactional outbox).
#
#  - a saga submitted in a transaction that rolls back is never delivered;
#  - the participant is down at submit: deliveries retry without limit
#    (past saga.max_attempts, the backoff capped by saga.max_retry_interval)
#    and once it is back every step is applied exactly once, in dependency
#    order;
#  - a delivery that fails for a business reason max_attempts times makes
#    the saga failed, sends NOTIFY saga_alert with the gid, and delivers
#    nothing after it; once the cause is fixed saga.retry() resumes it to
#    succeeded, without delivering the earlier steps again;
#  - saga.abort() on a msg saga waiting for its participant is refused: a
#    message cannot be taken back once submitted; it is delivered.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;
use SagaModes;

my ($coord, $part) = standard_setup();
$coord->safe_psql('coord',
	'CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL)');

# --- the mode's argument rules ---------------------------------------------
my ($rc, $out, $err) = $coord->psql(
	'coord', q{\set VERBOSITY verbose
BEGIN;
SELECT saga.begin('msg-rules', mode => 'msg');
SELECT saga.add_step('msg-rules', 'bank_a', 'SELECT 1', compensation => 'SELECT 2');
});
like($err, qr/22023/, 'msg: a step with a compensation is refused (22023)');
($rc, $out, $err) = $coord->psql('coord',
	qq{\\set VERBOSITY verbose\nSELECT saga.begin('msg-rules', mode => 'msg', timeout => '1 minute')});
like($err, qr/22023/, 'msg: a saga with a timeout is refused (22023)');

# --- rolled back with the caller's transaction: never delivered -----------
$coord->safe_psql(
	'coord', "BEGIN;\nINSERT INTO orders VALUES (1, 10);\n"
	  . build_saga_sql(
		gid => 'msg-rolled-back',
		mode => 'msg',
		steps => [ { target => 'bank_a', action => move_sql(1, 10) } ])
	  . "SELECT saga.submit('msg-rolled-back');\nROLLBACK;\n");
($rc, $out, $err) = $coord->psql('coord',
	"\\set VERBOSITY verbose\nSELECT saga.status('msg-rolled-back')");
like($err, qr/42704/, 'the rolled-back saga does not exist');

# --- the participant is down at submit ------------------------------------
$part->stop;
my $gid = 'msg-outage';
$coord->safe_psql(
	'coord', "BEGIN;\nINSERT INTO orders VALUES (2, 10);\n"
	  . build_saga_sql(
		gid => $gid,
		mode => 'msg',
		steps => [
			{ target => 'bank_a', action => move_sql(1, -10), expect_rows => 1 },
			{ target => 'bank_b', action => move_sql(1, 10), expect_rows => 1 },
			{ target => 'bank_a', action => move_sql(2, 1), expect_rows => 1 }
		])
	  . "SELECT saga.submit('$gid');\nCOMMIT;\n");
is($coord->safe_psql('coord', 'SELECT total FROM orders WHERE id = 2'),
	'10', 'the order and its messages committed together');

# Past saga.max_attempts (5), with waits that would exceed
# saga.max_retry_interval (1 s) if they kept doubling (100 ms * 2^6).
# clock_timestamp(), not now(): the statement may start before the worker's
# commit that its snapshot sees, and the wait counts from that commit's turn.
is( poll_value(
		$coord, 'coord',
		"SELECT CASE WHEN attempts >= 7 AND next_attempt_at IS NOT NULL THEN "
		  . "(next_attempt_at <= clock_timestamp() + interval '1 second')::text ELSE 'wait' END "
		  . "FROM saga.steps WHERE gid = '$gid' AND step = 1"),
	'true',
	'step 1 is retried past max_attempts, the wait capped at max_retry_interval'
);
is(saga_status($coord, $gid), 'running', 'the saga keeps running');
is( step_rows($coord, $gid, 'step, status, last_sqlstate'),
	"1|running|08001\n2|pending|\n3|pending|",
	'step 1 waits with a connection error; later steps wait for it');
like(history_events($coord, $gid), qr/(1:retry_scheduled .*){6}/,
	'history: the retries of step 1');

$part->start;
is(wait_saga($coord, $gid), 'succeeded', 'participant back: saga succeeded');
is(step_rows($coord, $gid), "1|succeeded\n2|succeeded\n3|succeeded",
	'every step delivered');
is(ledger_rows($part, 'bank_a', $gid), "1|action|1|-10\n3|action|2|1",
	'bank_a: steps 1 and 3 applied once each');
is(ledger_rows($part, 'bank_b', $gid), '2|action|1|10',
	'bank_b: step 2 applied once');
is_deeply(balances($part, 'bank_a'), { 1 => 90, 2 => 101 }, 'bank_a balances');
is_deeply(balances($part, 'bank_b'), { 1 => 110, 2 => 100 }, 'bank_b balances');
# the banks share one server, hence one clock
my $at2 = $part->safe_psql('bank_b',
	"SELECT at FROM ledger WHERE gid = '$gid' AND step = 2");
is( $part->safe_psql(
		'bank_a',
		"SELECT (SELECT at FROM ledger WHERE gid = '$gid' AND step = 1) < '$at2' "
		  . "AND '$at2' < (SELECT at FROM ledger WHERE gid = '$gid' AND step = 3)"),
	't',
	'delivered in dependency order: step 1, then 2, then 3');
is(barrier_rows($part, 'bank_a', $gid), "1|action|action\n3|action|action",
	'bank_a barrier: one record per delivery');
is(ledger_rows($part, 'bank_a', 'msg-rolled-back'), '',
	'the rolled-back saga was never delivered');

# --- a business failure after max_attempts --------------------------------
# bank_b has no account 3 yet: step 2 reports 0 rows against expect_rows 1.
my $listener = $coord->background_psql('coord');
$listener->query_safe('LISTEN saga_alert');

$gid = submit_saga(
	$coord,
	gid => 'msg-stuck',
	mode => 'msg',
	steps => [
		{ target => 'bank_a', action => move_sql(2, -5), expect_rows => 1 },
		{
			target => 'bank_b',
			action => move_sql(3, 5),
			expect_rows => 1,
			max_attempts => 3
		},
		{ target => 'bank_a', action => move_sql(2, -1), expect_rows => 1 }
	]);
is(wait_saga($coord, $gid), 'failed', 'business failure: saga failed');
ok(wait_for_notify($listener, 'saga_alert', $gid),
	'NOTIFY saga_alert received with the gid as payload');
is( step_rows($coord, $gid, 'step, status, attempts, last_sqlstate'),
	"1|succeeded|1|\n2|failed|3|21000\n3|pending|0|",
	'step 2 failed after its 3 attempts; step 3 was not delivered');
like(
	$coord->safe_psql('coord',
		"SELECT last_error FROM saga.transactions WHERE gid = '$gid'"),
	qr/step 2.*expected 1 row/,
	'saga.transactions.last_error names the step and the error');
my $events = history_events($coord, $gid);
like($events,
	qr/(2:retry_scheduled .*){2}2:action_failed .*:failed$/,
	'history: two retries, then the failure and the final status')
  or diag $events;
unlike($events, qr/compensation/, 'history: nothing compensated');
is(ledger_rows($part, 'bank_a', $gid), '1|action|2|-5',
	'bank_a: step 1 delivered once, step 3 not at all');
is(ledger_rows($part, 'bank_b', $gid), '', 'bank_b: nothing');

# the operator fixes the cause and retries
$part->safe_psql('bank_b', 'INSERT INTO account VALUES (3, 0)');
$coord->safe_psql('coord', "SELECT saga.retry('$gid')");
is(wait_saga($coord, $gid), 'succeeded', 'after the fix, retry ends succeeded');
is( step_rows($coord, $gid, 'step, status'),
	"1|succeeded\n2|succeeded\n3|succeeded",
	'every step delivered');
is(ledger_rows($part, 'bank_a', $gid), "1|action|2|-5\n3|action|2|-1",
	'bank_a: step 1 not delivered again, step 3 once');
is(ledger_rows($part, 'bank_b', $gid), '2|action|3|5',
	'bank_b: step 2 once');
is_deeply(balances($part, 'bank_a'), { 1 => 90, 2 => 95 }, 'bank_a balances');
is_deeply(balances($part, 'bank_b'), { 1 => 110, 2 => 100, 3 => 5 },
	'bank_b balances');
like(history_events($coord, $gid), qr/:failed :retry .*:succeeded$/,
	'history: failed, retry, succeeded');
$listener->quit;

# --- saga.abort() while a delivery waits for its participant ---------------
$part->stop;
$gid = submit_saga(
	$coord,
	gid => 'msg-abort',
	mode => 'msg',
	steps => [ { target => 'bank_a', action => move_sql(1, 7), expect_rows => 1 } ]);
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts >= 2 FROM saga.steps WHERE gid = 'msg-abort' AND step = 1"),
	'the delivery is being retried');
($rc, $out, $err) = $coord->psql('coord', "SELECT saga.abort('msg-abort', 'changed my mind')");
isnt($rc, 0, 'saga.abort of a submitted msg saga is refused');
like($err, qr/msg saga "msg-abort" cannot be aborted once submitted/,
	'abort: the error says why');
$part->start;
my $status = wait_saga($coord, $gid);
is($status, 'succeeded', 'abort refused: the message is delivered');
is(ledger_rows($part, 'bank_a', $gid), '1|action|1|7', 'abort refused: delivered once')
  or diag history_rows($coord, $gid);

is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no branch applied twice');

$coord->stop;
$part->stop;
done_testing();
