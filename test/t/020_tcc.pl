# 020_tcc.pl: mode tcc (Try, then Confirm on all or Cancel on all).
#
#  - success: the Try of each step reserves (frozen for the debit, incoming
#    for the credit), the decision is recorded, and every step is
#    confirmed; a confirm that fails for a transient reason keeps the saga
#    committing and is retried past saga.max_attempts until it succeeds;
#  - a business failure in the last step's Try cancels the first step: the
#    reservation is released, the failed Try needs no Cancel;
#  - abort while a Try is in flight: the Cancel finds no landed Try, becomes
#    a null compensation, and the Try, arriving late, is a no-op (no
#    hanging).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;
use SagaModes;

my ($coord, $part) = standard_setup();
tcc_bank($part, 'bank_a');
tcc_bank($part, 'bank_b');
# A participant notices within 100ms when the coordinator gives up on a
# call and closes its connection, and then rolls the call back; without it
# an abandoned Try would run to its end (see the abort case below).
$part->append_conf('postgresql.conf',
	"client_connection_check_interval = '100ms'");
$part->reload;

# Transfer $amount from account $from on bank_a to account $to on bank_b.
sub transfer_steps
{
	my ($from, $to, $amount, %opts) = @_;
	return [
		{
			target => 'bank_a',
			name => 'debit',
			action => tcc_sql($from, 0, $amount, 0, 'action',
				%{ $opts{debit_try} // {} }),
			confirm =>
			  tcc_sql($from, -$amount, -$amount, 0, 'confirm'),
			compensation =>
			  tcc_sql($from, 0, -$amount, 0, 'compensation'),
			expect_rows => 1
		},
		{
			target => 'bank_b',
			name => 'credit',
			action => tcc_sql($to, 0, 0, $amount, 'action'),
			confirm => tcc_sql($to, $amount, 0, -$amount, 'confirm',
				%{ $opts{credit_confirm} // {} }),
			compensation => tcc_sql($to, 0, 0, -$amount, 'compensation'),
			expect_rows => 1
		}
	];
}

# --- success, with a confirm that has to be retried -----------------------
# gate_check() on bank_b raises 40001 (serialization failure: transient)
# while the gate is closed, so the credit's Confirm fails until it opens.
create_gate($part, 'bank_b', '40001');

my $gid = submit_saga(
	$coord,
	gid => 'tcc-ok',
	mode => 'tcc',
	steps => transfer_steps(1, 1, 30,
		credit_confirm => { extra => 'gate_check()' }));

# both Tries ran, the decision is taken, the debit is confirmed, and the
# credit's Confirm keeps failing: more attempts than saga.max_attempts (5)
ok( poll_until(
		$coord, 'coord',
		"SELECT bool_and(CASE step WHEN 1 THEN status = 'confirmed' "
		  . "ELSE status = 'succeeded' AND attempts >= 7 END) "
		  . "FROM saga.steps WHERE gid = 'tcc-ok'"),
	'the debit is confirmed; the credit confirm is retried past max_attempts');
is(saga_status($coord, $gid), 'committing',
	'the saga is committing while a confirm is outstanding');
is( $coord->safe_psql('coord',
		"SELECT last_sqlstate FROM saga.steps WHERE gid = 'tcc-ok' AND step = 2"),
	'40001', 'the confirm failure is recorded with its SQLSTATE');
like(history_events($coord, $gid), qr/:commit_decided .*2:retry_scheduled/,
	'history: the decision, then confirm retries');
is(tcc_accounts($part, 'bank_a'), "1|70|0|0\n2|100|0|0",
	'bank_a: the debit is confirmed (frozen amount released and taken)');
is(tcc_accounts($part, 'bank_b'), "1|100|0|30\n2|100|0|0",
	'bank_b: the credit is still only announced');

set_gate($part, 'bank_b', 0);
is(wait_saga($coord, $gid), 'succeeded', 'tcc success: saga succeeded');
is(step_rows($coord, $gid), "1|confirmed\n2|confirmed",
	'both steps confirmed');
is(tcc_accounts($part, 'bank_a'), "1|70|0|0\n2|100|0|0",
	'bank_a: 30 left account 1, nothing frozen');
is(tcc_accounts($part, 'bank_b'), "1|130|0|0\n2|100|0|0",
	'bank_b: 30 arrived on account 1, nothing pending');
is(ledger_rows($part, 'bank_a', $gid), "1|action|1|0\n1|confirm|1|-30",
	'bank_a: one Try and one Confirm');
is(ledger_rows($part, 'bank_b', $gid), "2|action|1|0\n2|confirm|1|30",
	'bank_b: one Try and one Confirm, despite the retries');
is(barrier_rows($part, 'bank_a', $gid), "1|action|action\n1|confirm|confirm",
	'bank_a barrier: action and confirm');
is(barrier_rows($part, 'bank_b', $gid), "2|action|action\n2|confirm|confirm",
	'bank_b barrier: action and confirm');
my $events = history_events($coord, $gid);
like($events,
	qr/^:submitted .*1:action_succeeded .*2:action_succeeded .*:commit_decided .*:succeeded$/,
	'history: tries, decision, final status in that order')
  or diag $events;
like($events, qr/1:confirm_done/, 'history: step 1 confirm done');
like($events, qr/2:confirm_done/, 'history: step 2 confirm done');
unlike($events, qr/compensation/, 'history: nothing cancelled');

# --- the last step's Try fails: the first step is cancelled ---------------
# account 2 on bank_a holds 100; bank_b has no account 9, so the credit's
# Try reports 0 rows against expect_rows 1.
$gid = submit_saga(
	$coord,
	gid => 'tcc-cancel',
	mode => 'tcc',
	steps => transfer_steps(2, 9, 40));
is(wait_saga($coord, $gid), 'aborted', 'failing Try: saga aborted');
is( step_rows($coord, $gid, 'step, status, last_sqlstate'),
	"1|compensated|\n2|failed|21000",
	'step 1 cancelled, step 2 failed with 21000');
like(
	$coord->safe_psql('coord',
		"SELECT last_error FROM saga.transactions WHERE gid = 'tcc-cancel'"),
	qr/expected 1 row/,
	'saga.transactions.last_error tells why');
is(tcc_accounts($part, 'bank_a'), "1|70|0|0\n2|100|0|0",
	'bank_a: the reservation of account 2 is released');
is(tcc_accounts($part, 'bank_b'), "1|130|0|0\n2|100|0|0",
	'bank_b: unchanged');
is( ledger_rows($part, 'bank_a', $gid),
	"1|action|2|0\n1|compensation|2|0",
	'bank_a: one Try and one Cancel');
is(ledger_rows($part, 'bank_b', $gid), '',
	'bank_b: the failed Try left nothing');
is( barrier_rows($part, 'bank_a', $gid),
	"1|action|action\n1|compensation|compensation",
	'bank_a barrier: the Try and its Cancel');
is(barrier_rows($part, 'bank_b', $gid), '',
	'bank_b barrier: a failed Try is not cancelled');
$events = history_events($coord, $gid);
like($events, qr/2:action_failed .*:rollback_decided .*1:compensation_done .*:aborted$/,
	'history: failure, decision, cancel, final status') or diag $events;
unlike($events, qr/confirm/, 'history: nothing confirmed');

# --- abort while a Try is in flight: null compensation, no hanging --------
my $try_sql = tcc_sql(2, 0, 50, 0, 'action', sleep => 10);
$gid = submit_saga(
	$coord,
	gid => 'tcc-null',
	mode => 'tcc',
	steps => [
		{
			target => 'bank_a',
			action => $try_sql,
			confirm => tcc_sql(2, -50, -50, 0, 'confirm'),
			compensation => tcc_sql(2, 0, -50, 0, 'compensation')
		},
		{
			target => 'bank_b',
			action => tcc_sql(2, 0, 0, 50, 'action'),
			confirm => tcc_sql(2, 50, 0, -50, 'confirm'),
			compensation => tcc_sql(2, 0, 0, -50, 'compensation')
		}
	]);
ok(wait_for_sleeper($part, 'bank_a'),
	'the Try of step 1 is running (past its barrier record)');
$coord->safe_psql('coord', "SELECT saga.abort('tcc-null', 'test abort')");
is(wait_saga($coord, $gid), 'aborted', 'abort during a Try: saga aborted');
is(step_rows($coord, $gid), "1|compensated\n2|skipped",
	'step 1 cancelled, step 2 never tried');
ok(poll_until($part, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"),
	'the abandoned Try is gone from the participant');
is(tcc_accounts($part, 'bank_a'), "1|70|0|0\n2|100|0|0",
	'bank_a: the Try never took effect');
is(ledger_rows($part, 'bank_a', $gid), '',
	'bank_a: neither the Try nor the Cancel changed anything');
is( barrier_rows($part, 'bank_a', $gid),
	"1|action|compensation\n1|compensation|compensation",
	'bank_a barrier: the action slot taken by the Cancel (null compensation)');
is(barrier_rows($part, 'bank_b', $gid), '', 'bank_b barrier: nothing');
$events = history_events($coord, $gid);
like($events, qr/:abort_requested .*:rollback_decided .*1:action_cancelled/,
	'history: abort, decision, Try cancelled') or diag $events;
like(
	$coord->safe_psql('coord',
		"SELECT detail FROM saga.history WHERE gid = 'tcc-null' AND step = 1 "
		  . "AND event = 'compensation_done'"),
	qr/null compensation/,
	'history: the Cancel was a null compensation');

# The Try arrives late (say, delayed in the network): the barrier blocks it.
my $coordinator_id = $part->safe_psql('bank_a',
	"SELECT DISTINCT coordinator FROM saga_participant.barrier WHERE gid = 'tcc-null'");
my $late = $part->safe_psql(
	'bank_a', qq{
SELECT set_config('saga.gid', 'tcc-null', false), set_config('saga.step', '1', false) \\gset
SELECT saga_participant.run(@{[ quote_literal($coordinator_id) ]}, 'tcc-null', 1, 'action',
	@{[ quote_literal($try_sql =~ s/pg_sleep\(10\)/pg_sleep(0)/r) ]});
});
is($late, 'hanging', 'a late Try after its Cancel is refused (hanging)');
is(tcc_accounts($part, 'bank_a'), "1|70|0|0\n2|100|0|0",
	'bank_a: the late Try froze nothing');
is(ledger_rows($part, 'bank_a', $gid), '', 'bank_a: still no ledger row');

is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no branch applied twice');

$coord->stop;
$part->stop;
done_testing();
