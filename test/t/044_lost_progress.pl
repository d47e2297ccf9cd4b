# 044_lost_progress.pl: a crash of the coordinator loses the worker's last
# progress (committed with synchronous_commit off, see docs/operations.md,
# "Crash recovery"), and then the saga is rolled back before its steps are called
# again.
#
# The worker records "step started" and "step done" asynchronously: after a
# crash that lost them, the saga looks as if its steps never ran.  That is
# harmless while the saga goes forward (the steps are called again, and the
# barrier answers "already done"), but not if the saga is rolled back first:
#  - its deadline passed while the coordinator was down;
#  - saga.abort() while the participant is unreachable.
#  - saga.abort() of a saga whose very start was lost, so that it reads as
#    pending, as if no step had ever been called (its start is committed
#    asynchronously too).
# Then the steps that did run on the participants must be compensated (the
# barrier makes a compensation of a step that never ran a no-op), and an
# outcome that saga.wait() already reported (succeeded) should stand.
#
# wal_writer_delay = 10s only widens the window in which asynchronous
# commits are not yet on disk (200 ms by default) so that the test is
# deterministic; an immediate shutdown loses what is still in WAL buffers.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use SagaTest;

my ($coord, $part) = standard_setup();
$coord->append_conf('postgresql.conf', "wal_writer_delay = '10s'\n");
$coord->restart;
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');

sub transfer
{
	my ($gid, $id, %o) = @_;
	return submit_saga(
		$coord,
		gid => $gid,
		%o,
		steps => [
			{ target => 'bank_a', action => move_sql($id, -10),
			  compensation => move_sql($id, 10, 'compensation') },
			{ target => 'bank_b', action => move_sql($id, 10),
			  compensation => move_sql($id, -10, 'compensation') } ]);
}

# the saga's final status and what the participants hold must agree
sub consistent
{
	my ($gid, $what) = @_;
	my $st = saga_status($coord, $gid);
	my $net = ledger_sum($part, 'bank_a', $gid) . '/' . ledger_sum($part, 'bank_b', $gid);
	note "$what: $gid ends $st, bank_a/bank_b net $net; history:\n" . history_rows($coord, $gid);
	is($net, $st eq 'succeeded' ? '-10/10' : '0/0',
		"$what: the participants hold what the final status ($st) says");
	is($st, 'succeeded', "$what: the outcome saga.wait() reported stands");
	is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'), '',
		"$what: no branch applied twice");
}

# --- the deadline passes while the coordinator is down ----------------------
my $gid = transfer('lost-deadline', 1, timeout => '3 seconds');
is(wait_saga($coord, $gid), 'succeeded', 'deadline case: saga.wait() reports succeeded');
my $deadline = $coord->safe_psql('coord',
	"SELECT extract(epoch FROM deadline) FROM saga.transactions WHERE gid = '$gid'");
like($deadline, qr/^\d+(\.\d+)?$/, 'deadline case: the saga has a deadline');
$coord->stop('immediate');
# down until the clock is past the deadline recorded for the saga
usleep(100_000) while time <= $deadline + 0.5;
$coord->start;
ok(is_final(wait_saga($coord, $gid)), 'deadline case: final after the restart');
consistent($gid, 'deadline case');

# --- saga.abort() while the participant is unreachable ------------------------
$gid = transfer('lost-abort', 2);
is(wait_saga($coord, $gid), 'succeeded', 'abort case: saga.wait() reports succeeded');
$coord->stop('immediate');
$part->stop;
$coord->start;
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'abort case: worker back');
my ($rc, $out, $err) = $coord->psql('coord', "SELECT saga.abort('$gid', 'changed my mind')");
note "saga.abort: rc $rc $err";
$part->start;
ok(is_final(wait_saga($coord, $gid)), 'abort case: final once the participant is back');
consistent($gid, 'abort case');

# --- the saga's start is lost, then it is aborted ----------------------------
# Step 1 has run and step 2 is still running (it sleeps) when the
# coordinator stops at once.  Nothing the worker wrote for the saga may have
# reached the disk, its start included: which of its asynchronous commits a
# crash loses depends on where WAL pages ended, so the state such a crash
# leaves (the saga pending, its steps never started, only "submitted" in
# its history) is made by hand, in single-user mode, before the restart.
# Aborted while the participant is down, the saga must still compensate
# step 1, which did run.
$gid = submit_saga(
	$coord,
	gid => 'lost-start',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -10),
		  compensation => move_sql(1, 10, 'compensation') },
		{ target => 'bank_b', action => move_sql(1, 10, 'action', sleep => 30),
		  compensation => move_sql(1, -10, 'compensation') } ]);
ok( poll_until(
		$part, 'bank_a', "SELECT count(*) = 1 FROM ledger WHERE gid = 'lost-start'"),
	'start case: step 1 ran on bank_a');
ok( poll_until(
		$part, 'bank_b',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"),
	'start case: step 2 is running on bank_b');
$coord->stop('immediate');
$part->stop;
my $lose_start = q{
UPDATE saga.gtx SET status = 'pending', phase = 'forward', last_error = NULL WHERE gid = 'lost-start';
UPDATE saga.gtx_step SET status = 'pending', attempts = 0, maybe_applied = false, started_at = NULL, finished_at = NULL, next_attempt_at = NULL, last_error = NULL, last_sqlstate = NULL WHERE gtx_id = (SELECT id FROM saga.gtx WHERE gid = 'lost-start');
DELETE FROM saga.gtx_event WHERE event <> 'submitted' AND gtx_id = (SELECT id FROM saga.gtx WHERE gid = 'lost-start');
};
my ($single_out, $single_err) = ('', '');
ok( IPC::Run::run(
		[ 'postgres', '--single', '-D', $coord->data_dir, 'coord' ],
		'<', \$lose_start, '>', \$single_out, '2>', \$single_err),
	'start case: the start is undone in single-user mode')
  or diag $single_err;
$coord->start;
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'start case: worker back');
($rc, $out, $err) = $coord->psql('coord', "SELECT saga.abort('$gid', 'changed my mind')");
is($rc, 0, 'start case: the abort of the pending saga is accepted') or diag $err;
$part->start;
is(wait_saga($coord, $gid), 'aborted', 'start case: aborted once the participant is back');
is( ledger_sum($part, 'bank_a', $gid) . '/' . ledger_sum($part, 'bank_b', $gid),
	'0/0', 'start case: step 1 was compensated, step 2 left nothing');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'), '',
	'start case: no branch applied twice');

$coord->stop;
$part->stop;
done_testing();
