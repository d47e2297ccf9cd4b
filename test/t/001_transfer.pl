# 001_transfer.pl: a two-step transfer between two participant databases.
#
# The worker appears by itself after CREATE EXTENSION, the steps see
# saga.gid and saga.step, each branch takes effect exactly once behind its
# barrier record, and the views report the outcome.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my $coord = new_coordinator('coord');
my $part = new_participant('part');
create_bank($part, 'bank_a', { 1 => 100, 2 => 100 });
create_bank($part, 'bank_b', { 1 => 100, 2 => 100 });

# --- the worker starts after CREATE EXTENSION, without a restart ---------
$coord->safe_psql('postgres', 'CREATE DATABASE coord');
is(worker_pid($coord, 'coord'), '', 'no worker before CREATE EXTENSION');
$coord->safe_psql('coord', 'CREATE EXTENSION pg_saga');
my $pid = wait_for_worker($coord, 'coord');
like($pid, qr/^\d+$/, 'a pg_saga worker runs after CREATE EXTENSION');
is( $coord->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' AND datname = 'coord'"
	),
	'1',
	'exactly one worker for the database');

# --- targets and participant set-up --------------------------------------
add_target($coord, 'bank_a', $part, 'bank_a');
add_target($coord, 'bank_b', $part, 'bank_b');
foreach my $db ('bank_a', 'bank_b')
{
	is( $part->safe_psql(
			$db,
			"SELECT to_regclass('saga_participant.barrier') IS NOT NULL
			    AND to_regprocedure('saga_participant.run(text, text, int, text, text, bigint)') IS NOT NULL"
		),
		't',
		"setup_participant created the barrier objects in $db");
}
my ($rc, $out, $err) =
  $coord->psql('coord', "SELECT saga.setup_participant('bank_a')");
is($rc, 0, 'setup_participant runs again without error') or diag $err;

# --- a transfer: 30 from bank_a.1 to bank_b.1 ---------------------------
my $gid = submit_saga(
	$coord,
	gid => 'transfer-1',
	payload => '{"kind": "transfer", "amount": 30}',
	steps => [
		{
			target => 'bank_a',
			name => 'debit',
			action => move_sql(1, -30),
			compensation => move_sql(1, 30, 'compensation')
		},
		{
			target => 'bank_b',
			name => 'credit',
			action => move_sql(1, 30),
			compensation => move_sql(1, -30, 'compensation')
		}
	]);
is(wait_saga($coord, $gid), 'succeeded', 'transfer succeeded');
is($coord->safe_psql('coord', "SELECT saga.status('transfer-1')"),
	'succeeded', 'saga.status agrees');

is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'bank_a debited');
is_deeply(balances($part, 'bank_b'), { 1 => 130, 2 => 100 }, 'bank_b credited');

# the ledger rows carry saga.gid and saga.step: each branch ran exactly once
is(ledger_rows($part, 'bank_a', $gid), '1|action|1|-30',
	'bank_a ledger: one row from step 1 with the saga gid');
is(ledger_rows($part, 'bank_b', $gid), '2|action|1|30',
	'bank_b ledger: one row from step 2 with the saga gid');

is(barrier_rows($part, 'bank_a', $gid), '1|action|action',
	'barrier record of step 1 on bank_a');
is(barrier_rows($part, 'bank_b', $gid), '2|action|action',
	'barrier record of step 2 on bank_b');
is( $part->safe_psql(
		'bank_a',
		"SELECT count(DISTINCT coordinator) FROM saga_participant.barrier"),
	'1',
	'barrier records name one coordinator');

is(step_rows($coord, $gid, 'step, name, target, status'),
	"1|debit|bank_a|succeeded\n2|credit|bank_b|succeeded",
	'saga.steps: both steps succeeded');
is( step_rows(
		$coord, $gid,
		'attempts >= 1, started_at IS NOT NULL, finished_at >= started_at, next_attempt_at IS NULL'
	),
	"t|t|t|t\nt|t|t|t",
	'saga.steps: attempts and times recorded');
is( $coord->safe_psql(
		'coord', q{
SELECT mode, status, owner = current_user, payload->>'amount', steps, steps_done,
       submitted_at >= created_at, finished_at >= submitted_at, deadline IS NULL,
       last_error IS NULL
  FROM saga.transactions WHERE gid = 'transfer-1'}),
	'saga|succeeded|t|30|2|2|t|t|t|t',
	'saga.transactions row');

my $history = history_rows($coord, $gid);
ok($history ne '', 'saga.history has events') or diag $history;
like($history, qr/succeeded/i, 'history records the success');
is( $coord->safe_psql(
		'coord',
		"SELECT count(DISTINCT step) FROM saga.history WHERE gid = 'transfer-1' AND step IS NOT NULL"
	),
	'2',
	'history has events of both steps');
is( $coord->safe_psql(
		'coord',
		"SELECT bool_and(a.at <= b.at) FROM saga.history a, saga.history b
		  WHERE a.gid = 'transfer-1' AND b.gid = 'transfer-1' AND a.step = 1 AND b.step = 2"
	),
	't',
	'step 1 events precede step 2 events');

# --- dependencies: a step after two others starts after both finished ------
$gid = submit_saga(
	$coord,
	gid => 'fan-in',
	steps => [
		{ target => 'bank_a', name => 'a', after => [], action => move_sql(2, -5) },
		{ target => 'bank_b', name => 'b', after => [], action => move_sql(2, -5) },
		{
			target => 'bank_b',
			name => 'c',
			after => [ 'a', 'b' ],
			action => move_sql(1, 10)
		}
	]);
is(wait_saga($coord, $gid), 'succeeded', 'fan-in saga succeeded');
is( $coord->safe_psql(
		'coord', q{
SELECT c.started_at >= greatest(a.finished_at, b.finished_at)
  FROM saga.steps a, saga.steps b, saga.steps c
 WHERE a.gid = 'fan-in' AND a.name = 'a' AND b.gid = 'fan-in' AND b.name = 'b'
   AND c.gid = 'fan-in' AND c.name = 'c'}),
	't',
	'step c started after a and b finished');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 95 }, 'bank_a after fan-in');
is_deeply(balances($part, 'bank_b'), { 1 => 140, 2 => 95 }, 'bank_b after fan-in');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no branch applied twice');

# the worker is still the same process: nothing crashed
is(worker_pid($coord, 'coord'), $pid, 'worker did not restart');

$coord->stop;
$part->stop;
done_testing();
