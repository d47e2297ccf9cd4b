# 044_lost_progress.pl: a crash of the coordinator loses the worker's last
# progress (committed with synchronous_commit off, see README "Crash
# recovery"), and then the saga is rolled back before its steps are called
# again.
#
# The worker records "step started" and "step done" asynchronously: after a
# crash that lost them, the saga looks as if its steps never ran.  That is
# harmless while the saga goes forward (the steps are called again, and the
# barrier answers "already done"), but not if the saga is rolled back first:
#  - its deadline passed while the coordinator was down;
#  - saga.abort() while the participant is unreachable.
# Then the steps that did run on the participants must be compensated (the
# barrier makes a compensation of a step that never ran a no-op), and an
# outcome that saga.wait() already reported (succeeded) should stand.
#
# wal_writer_delay = 10s only widens the window in which asynchronous
# commits are not yet on disk (200 ms by default) so that the test is
# deterministic; an immediate shutdown loses what is still in WAL buffers.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
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
$coord->stop('immediate');
sleep 4;    # past the saga's deadline
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

$coord->stop;
$part->stop;
done_testing();
