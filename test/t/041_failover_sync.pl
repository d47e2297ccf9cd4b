# 041_failover_sync.pl: failover to a synchronous standby with sagas in
# flight.
#
# The coordinator streams to a standby named in synchronous_standby_names.
# Transfer sagas of the five modes (a fifth with a business failure) are
# submitted while bank_a is slow, so many are in flight (some forward, some
# committing or compensating) when the primary dies with an immediate
# shutdown.  The standby is promoted; a worker starts there by itself and:
#   - every saga whose submitting commit was acknowledged exists on the new
#     primary (synchronous replication loses no acknowledged commit);
#   - every saga becomes final, and the invariants of the fault campaign
#     hold (SagaFaults::check_invariants): money conserved, every account at
#     its start plus the sagas that succeeded, no ledger row written twice,
#     no prepared transaction left, no barrier record without its saga.
# Progress the worker committed with synchronous_commit off may be lost in
# the failover; the new worker calls those steps again and the barrier
# answers that they are done (the ledger shows no duplicate).
#
# Then a decision that the standby has not received is not acted on: with the
# synchronous standby stopped, a saga whose second step fails decides to roll
# back, and its worker waits for the standby before compensating anything.
# The primary dies there; the standby, promoted without it, runs the saga
# again (the failing step succeeds this time) and it succeeds: the first
# step's compensation never ran, so money is conserved.  (With asynchronous
# replication the same sequence ends with the first step compensated and the
# saga succeeded on the new primary: see docs/operations.md, "High
# availability".)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use SagaTest;
use SagaModes;
use SagaFaults;

srand($ENV{SAGA_FAILOVER_SEED} // 41);

my $primary = new_coordinator('primary', allows_streaming => 1);
my $part = new_participant('part', start => 0);
$part->append_conf('postgresql.conf', "max_prepared_transactions = 50\nmax_connections = 80\n");
$part->start;

my $c = SagaFaults->new(
	coord => $primary,
	banks => { bank_a => $part, bank_b => $part },
	participants => [$part],
	prefix => 'fo',
	deadline_rate => 0);    # deadlines under lost progress: see 044_lost_progress.pl
$c->setup;
like(wait_for_worker($primary, 'coord'), qr/^\d+$/, 'worker on the primary');

# a synchronous standby
$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;
# set after the backup, so that the promoted standby does not wait for a
# standby of its own
$primary->append_conf('postgresql.conf',
	"synchronous_standby_names = 'standby'\nsynchronous_commit = on\n");
$primary->reload;
ok( poll_until(
		$primary, 'postgres',
		"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'",
		'sync'),
	'the standby is synchronous');

# sagas in flight: every step on bank_a takes 1 s (its timeout is 1.5 s)
$c->set_knob('bank_a', 1) or die 'cannot slow bank_a';
$c->submit_batch(10, mode => $_) foreach @SagaFaults::MODES;
$c->submit_batch(20);
ok( poll_until(
		$primary, 'coord',
		"SELECT count(*) >= 5 FROM saga.gtx WHERE status IN ('succeeded', 'aborted', 'failed')"),
	'some sagas finished on the primary');
$c->submit_batch(10);
my @acked = $c->submitted_gids;
# ten of each mode, then 30 of random modes
is(scalar @acked, 10 * @SagaFaults::MODES + 30, 'every submission acknowledged by the primary');

my $live_before = $primary->safe_psql('coord',
	"SELECT count(*) FROM saga.gtx WHERE status IN ('pending', 'running', 'committing', 'compensating')");
cmp_ok($live_before, '>', 0, "sagas in flight when the primary dies ($live_before)");

$primary->stop('immediate');
$standby->promote;
ok(poll_until($standby, 'postgres', 'SELECT NOT pg_is_in_recovery()'),
	'standby promoted');
like(wait_for_worker($standby, 'coord'), qr/^\d+$/,
	'a worker starts on the new primary by itself');

# nothing acknowledged is lost
my %there = map { $_ => 1 } split /\n/,
  $standby->safe_psql('coord', 'SELECT gid FROM saga.gtx');
is(join(' ', grep { !$there{$_} } @acked), '',
	'every acknowledged saga exists on the new primary');
my $live_after = $standby->safe_psql('coord',
	"SELECT count(*) FROM saga.gtx WHERE status IN ('pending', 'running', 'committing', 'compensating')");
note "sagas not final: $live_before on the primary, $live_after on the new primary at promotion";

$c->{coord} = $standby;
$c->set_knob('bank_a', 0) or die 'cannot reset bank_a';
$c->submit_batch(10);
is(scalar($c->submitted_gids), 10 * @SagaFaults::MODES + 40, 'the new primary takes new sagas');

ok(defined $c->wait_quiesce(90), 'every saga final after the failover');
ok(defined $c->wait_no_prepared(75), 'no prepared transaction left');
my @v = $c->check_invariants;
is(scalar @v, 0, 'no invariant violated') or diag join("\n", @v);
note campaign_report($c);
note 'steps found already done by the barrier after the failover: '
  . $standby->safe_psql('coord',
	"SELECT count(*) FROM saga.history WHERE detail = 'already applied (barrier)'");
my $bs = $c->{counts}{by_status};
cmp_ok($bs->{succeeded} // 0, '>', 0, 'some sagas succeeded');
cmp_ok(($bs->{aborted} // 0) + ($bs->{failed} // 0), '>', 0,
	'the business failures rolled back (or failed, in msg mode)');

# --- a decision not yet on the synchronous standby is not acted on ---------
my $p2 = new_coordinator('primary2', allows_streaming => 1);
create_bank($part, 'gate_a', { 1 => 100 });
create_bank($part, 'gate_b', { 1 => 100 });
create_gate($part, 'gate_b', 'P0001');
create_coordinator_db($p2, 'coord');
add_target($p2, 'gate_a', $part, 'gate_a');
add_target($p2, 'gate_b', $part, 'gate_b');
$p2->backup('b2');
my $s2 = PostgreSQL::Test::Cluster->new('standby2');
$s2->init_from_backup($p2, 'b2', has_streaming => 1);
$s2->start;
$p2->append_conf('postgresql.conf', "synchronous_standby_names = 'standby2'\n");
$p2->reload;
ok( poll_until(
		$p2, 'postgres',
		"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby2'",
		'sync'),
	'second pair: the standby is synchronous');

# step 2 sleeps 2 s, then fails while the gate is closed
my $gated = 'SELECT pg_sleep(2); '
  . "WITH l AS (INSERT INTO ledger (gid, step, op, id, delta) VALUES "
  . "(current_setting('saga.gid'), current_setting('saga.step')::int, 'action', 1, 10)) "
  . 'UPDATE account SET balance = balance + 10 + gate_check() WHERE id = 1';
my $g2 = submit_saga(
	$p2,
	gid => 'sync-decision',
	steps => [
		{ target => 'gate_a', action => move_sql(1, -10), compensation => move_sql(1, 10, 'compensation') },
		{ target => 'gate_b', action => $gated, compensation => move_sql(1, -10, 'compensation'),
		  expect_rows => 1 } ]);
ok(wait_for_sleeper($part, 'gate_b'), 'step 2 is running');
$s2->stop;
ok( poll_until(
		$p2, 'postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' AND wait_event = 'SyncRep'"),
	'step 2 failed: the worker waits for the standby to take its decision');
# the worker sends a call only after the local commit of its decision,
# which waits on the standby: the compensation cannot have gone out
is(ledger_rows($part, 'gate_a', $g2), '1|action|1|-10',
	'no compensation was sent before the standby had the decision');
is( $p2->safe_psql(
		'postgres',
		"SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'pg_saga worker'"),
	'SyncRep',
	'the worker still waits for the standby after the ledger was read');
set_gate($part, 'gate_b', 0);
$p2->stop('immediate');
$s2->append_conf('postgresql.conf', "primary_conninfo = ''\n");
$s2->start;
$s2->promote;
is(wait_saga($s2, $g2), 'succeeded',
	'the promoted standby, which never saw the decision, runs the saga to success');
is(ledger_rows($part, 'gate_a', $g2), '1|action|1|-10', 'gate_a: debited once, never compensated');
is(ledger_rows($part, 'gate_b', $g2), '2|action|1|10', 'gate_b: credited once');
is(total_balance($part, 'gate_a') + total_balance($part, 'gate_b'), 200, 'money conserved');
$s2->stop;

$standby->stop;
$part->stop;
done_testing();
