# 002_compensate.pl: business failures roll a saga back.
#
#  - a CHECK violation in step 2 compensates step 1 and records the error;
#  - an expect_rows mismatch fails with SQLSTATE 21000 and compensates;
#  - a compensation that fails for a business reason stops the saga as
#    failed with NOTIFY saga_alert; after the cause is fixed saga.retry()
#    resumes it to aborted.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;
use SagaModes;

my ($coord, $part) = standard_setup();

# --- CHECK violation in the second step ----------------------------------
my $gid = submit_saga(
	$coord,
	gid => 'check-1',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(1, -30),
			compensation => move_sql(1, 30, 'compensation')
		},
		{
			target => 'bank_b',
			action => move_sql(1, -1000),
			compensation => move_sql(1, 1000, 'compensation')
		}
	]);
is(wait_saga($coord, $gid), 'aborted', 'CHECK violation: saga aborted');
is(step_rows($coord, $gid), "1|compensated\n2|failed",
	'step 1 compensated, step 2 failed');
is( $coord->safe_psql('coord',
		"SELECT last_sqlstate FROM saga.steps WHERE gid = 'check-1' AND step = 2"),
	'23514',
	'step 2 records SQLSTATE 23514');
like(
	$coord->safe_psql('coord',
		"SELECT last_error FROM saga.steps WHERE gid = 'check-1' AND step = 2"),
	qr/violates check constraint "account_balance_check"\nDETAIL: Failing row contains/,
	'step 2 records the remote error text with its DETAIL');
like(
	$coord->safe_psql('coord',
		"SELECT last_error FROM saga.transactions WHERE gid = 'check-1'"),
	qr/account_balance_check/,
	'saga.transactions.last_error has the error');
is_deeply(balances($part, 'bank_a'), { 1 => 100, 2 => 100 },
	'bank_a balances restored');
is_deeply(balances($part, 'bank_b'), { 1 => 100, 2 => 100 },
	'bank_b balances untouched');
is(ledger_rows($part, 'bank_a', $gid), "1|action|1|-30\n1|compensation|1|30",
	'bank_a: action and compensation once each');
is(ledger_rows($part, 'bank_b', $gid), '',
	'bank_b: the failed action left nothing');
is( barrier_rows($part, 'bank_a', $gid),
	"1|action|action\n1|compensation|compensation",
	'bank_a barrier: action and compensation');
is(barrier_rows($part, 'bank_b', $gid), '',
	'bank_b barrier: a failed action is not compensated');
my $history = history_rows($coord, $gid);
like($history, qr/^1\|[^\n]*compensat/im, 'history: step 1 compensation');
like($history, qr/aborted/i, 'history: final status');

# --- expect_rows mismatch -------------------------------------------------
$gid = submit_saga(
	$coord,
	gid => 'rows-1',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(2, -10),
			compensation => move_sql(2, 10, 'compensation'),
			expect_rows => 1
		},
		{
			target => 'bank_b',
			action => 'UPDATE account SET balance = balance + 10 WHERE id = 99',
			compensation => 'UPDATE account SET balance = balance - 10 WHERE id = 99',
			expect_rows => 1
		}
	]);
is(wait_saga($coord, $gid), 'aborted', 'expect_rows mismatch: saga aborted');
is( step_rows($coord, $gid, 'step, status, last_sqlstate'),
	"1|compensated|\n2|failed|21000",
	'expect_rows matched in step 1, mismatch in step 2 gives 21000')
  or diag step_rows($coord, $gid, 'step, status, last_sqlstate, last_error');
my $err = $coord->safe_psql('coord',
	"SELECT last_error FROM saga.steps WHERE gid = 'rows-1' AND step = 2");
like($err, qr/\b1\b/, 'the message gives the expected count');
like($err, qr/\b0\b/, 'the message gives the reported count');
is_deeply(balances($part, 'bank_a'), { 1 => 100, 2 => 100 },
	'bank_a restored after expect_rows failure');
is(ledger_sum($part, 'bank_a', $gid), '0', 'bank_a: net effect zero');
is(ledger_duplicates($part, 'bank_a'), '', 'bank_a: no duplicates');

# --- a compensation that fails for a business reason ----------------------
# Refunds on bank_a are closed: the compensation of step 1 violates
# refunds_closed until an operator drops it.
$part->safe_psql(
	'bank_a', q{
CREATE TABLE refund_log (gid text, CONSTRAINT refunds_closed CHECK (gid IS NULL));
});
my $listener = $coord->background_psql('coord');
$listener->query_safe('LISTEN saga_alert');

$gid = submit_saga(
	$coord,
	gid => 'compfail-1',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(2, -20),
			compensation => move_sql(
				2, 20, 'compensation',
				also =>
				  "INSERT INTO refund_log VALUES (current_setting('saga.gid'))")
		},
		{
			target => 'bank_b',
			action => move_sql(2, -1000),
			compensation => move_sql(2, 1000, 'compensation')
		}
	]);
is(wait_saga($coord, $gid), 'failed', 'failing compensation: saga failed');
like(
	$coord->safe_psql('coord',
		"SELECT last_error FROM saga.transactions WHERE gid = 'compfail-1'"),
	qr/refunds_closed/,
	'saga.transactions.last_error names the failing constraint');
is( $coord->safe_psql(
		'coord',
		"SELECT last_sqlstate FROM saga.steps WHERE gid = 'compfail-1' AND step = 1"
	),
	'23514',
	'step 1 records the compensation error');
is_deeply(balances($part, 'bank_a'), { 1 => 100, 2 => 80 },
	'bank_a: step 1 still applied');

ok(wait_for_notify($listener, 'saga_alert', 'compfail-1'),
	'NOTIFY saga_alert with the gid as payload');
$listener->quit;

# retry on a saga that is not failed is refused
my ($rc, $out, $stderr) = $coord->psql('coord',
	"\\set VERBOSITY verbose\nSELECT saga.retry('check-1')");
isnt($rc, 0, 'retry of an aborted saga fails');
like($stderr, qr/55000/, 'with SQLSTATE 55000');

# the operator fixes the cause and retries
$part->safe_psql('bank_a',
	'ALTER TABLE refund_log DROP CONSTRAINT refunds_closed');
$coord->safe_psql('coord', "SELECT saga.retry('compfail-1')");
is(wait_saga($coord, $gid), 'aborted', 'after the fix, retry ends aborted');
is(step_rows($coord, $gid), "1|compensated\n2|failed",
	'step 1 compensated after retry');
is_deeply(balances($part, 'bank_a'), { 1 => 100, 2 => 100 },
	'bank_a restored after retry');
is(ledger_rows($part, 'bank_a', $gid), "1|action|2|-20\n1|compensation|2|20",
	'compensation applied exactly once');
is($part->safe_psql('bank_a', 'SELECT gid FROM refund_log'),
	'compfail-1', 'refund logged once');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no branch applied twice');

$coord->stop;
$part->stop;
done_testing();
