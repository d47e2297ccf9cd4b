# 063_abort_races_commit.pl: a saga.abort() that commits while the worker
# is writing its decision to commit wins, and the commit phase the worker
# planned in that turn is never sent (the fix of 031e262).
#
# For each mode with a commit phase (at: at_forget, which deletes the undo
# images; tcc: confirm; xa: COMMIT PREPARED), a transfer of two steps on
# two databases is driven into the race, with no timing involved:
#
#  1. step 2's action waits on a row lock a session of the test holds on
#     its participant;
#  2. a session T1 on the coordinator runs saga.abort() in a transaction
#     it keeps open: it holds the row lock of the saga's saga.gtx row, and
#     the worker does not see the request yet;
#  3. the participant's lock is released: the action ends, the worker
#     decides to commit and plans the commit phase in the same turn, and
#     its write of the decision (UPDATE saga.gtx ... AND NOT
#     abort_requested) waits on T1, which the test sees in pg_stat_activity
#     (wait_event_type Lock, blocked by T1's pid) before going on;
#  4. T1 commits: the write finds abort_requested, the commit is lost to
#     the abort (engine_commit_lost_to_abort), and the saga rolls back.
#
# Then the saga is aborted, rolled back completely: every account row as
# before it, the ledgers as the mode leaves them after a rollback, no
# confirm in the barrier (tcc), no undo image left and every row restored
# (at), no prepared transaction left (xa), no commit-phase call done in the
# history, and the rollback decided by the lost commit ("aborted by
# saga.abort()"), not by the worker reading the request before it decided
# (that reads "aborted: <reason>"): the race was hit.  Before 031e262 the
# planned commit-phase calls were sent next to the rollback, and every mode
# ended aborted with the transfer applied: at's at_forget deleted the
# images before the restores, which then restored nothing; tcc confirmed
# both steps and cancelled none; xa committed both prepared transactions,
# and its ROLLBACK PREPARED found them already resolved.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;
use SagaModes;

my ($coord, $part) = standard_setup();
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');

my $amount = 30;
my $reason = 'abort races commit';

# at: bank_a and bank_b, with account and ledger enabled for at mode
foreach my $db ('bank_a', 'bank_b')
{
	$coord->safe_psql('coord',
		"SELECT saga.setup_participant('$db', at_tables => '{account, ledger}')");
}
# tcc and xa: banks of their own
foreach my $db ('tcc_a', 'tcc_b', 'xa_a', 'xa_b')
{
	create_bank($part, $db, { 1 => 100, 2 => 100 });
	add_target($coord, $db, $part, $db);
}
tcc_bank($part, $_) foreach ('tcc_a', 'tcc_b');

# The steps of a transfer of $amount from account 1 of $a to account 1 of
# $b, in $mode.
sub transfer_steps
{
	my ($mode, $a, $b) = @_;
	if ($mode eq 'tcc')
	{
		return [
			{
				target => $a,
				action => tcc_sql(1, 0, $amount, 0, 'action'),
				confirm => tcc_sql(1, -$amount, -$amount, 0, 'confirm'),
				compensation => tcc_sql(1, 0, -$amount, 0, 'compensation'),
				expect_rows => 1
			},
			{
				target => $b,
				action => tcc_sql(1, 0, 0, $amount, 'action'),
				confirm => tcc_sql(1, $amount, 0, -$amount, 'confirm'),
				compensation => tcc_sql(1, 0, 0, -$amount, 'compensation'),
				expect_rows => 1
			}
		];
	}
	return [
		{ target => $a, action => move_sql(1, -$amount), expect_rows => 1 },
		{ target => $b, action => move_sql(1, $amount), expect_rows => 1 }
	];
}

# What the ledger of step $step holds once the saga is rolled back: at
# restores the ledger too (it is enabled), xa rolled the action back, tcc
# keeps its Try and its Cancel (each with a balance delta of 0).
sub ledger_after_rollback
{
	my ($mode, $step) = @_;
	return $mode eq 'tcc' ? "$step|action|1|0\n$step|compensation|1|0" : '';
}

# The barrier records of step $step once rolled back: xa's went with the
# prepared transaction; at and tcc keep the action and its rollback.
sub barrier_after_rollback
{
	my ($mode, $step) = @_;
	return $mode eq 'xa' ? '' : "$step|action|action\n$step|compensation|compensation";
}

# The commit phase's events: none of them may be done.
my %commit_done = (at => 'forget_done', tcc => 'confirm_done', xa => 'commit_done');
my %commit_started = (at => 'forget_started', tcc => 'confirm_started', xa => 'commit_started');

sub race
{
	my ($mode, $a, $b) = @_;
	my $gid = "race-$mode";
	my %before = map { $_ => table_image($part, $_, 'account') } ($a, $b);

	# 1. step 2's action will wait on this row lock
	my $holder = $part->background_psql($b);
	my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
	$holder->query_safe('BEGIN');
	$holder->query_safe('SELECT balance FROM account WHERE id = 1 FOR UPDATE');

	submit_saga($coord, gid => $gid, mode => $mode, steps => transfer_steps($mode, $a, $b));
	ok( poll_until(
			$part, 'postgres',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = '$b' "
			  . "AND wait_event_type = 'Lock' AND $holder_pid = ANY (pg_blocking_pids(pid))"),
		"$mode: step 2's action waits on the row lock the test holds");
	is(step_rows($coord, $gid), "1|" . ($mode eq 'xa' ? 'prepared' : 'succeeded') . "\n2|running",
		"$mode: step 1 done, step 2 running");

	# 2. T1: saga.abort() in an open transaction
	my $t1 = $coord->background_psql('coord');
	my $t1_pid = $t1->query_safe('SELECT pg_backend_pid()');
	$t1->query_safe('BEGIN');
	$t1->query_safe("SELECT saga.abort('$gid', '$reason')");

	# 3. the action ends; the worker's write of its decision waits on T1
	$holder->query_safe('COMMIT');
	$holder->quit;
	ok( poll_until(
			$coord, 'postgres',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' "
			  . "AND datname = 'coord' AND wait_event_type = 'Lock' "
			  . "AND $t1_pid = ANY (pg_blocking_pids(pid))"),
		"$mode: the worker's write waits on T1's lock of the saga's row");
	# meanwhile step 2's action landed on its participant
	if ($mode eq 'xa')
	{
		is(prepared_xacts($part, $b), 1, "$mode: step 2's action is prepared on $b");
	}
	else
	{
		is( $part->safe_psql($b,
				"SELECT count(*) FROM ledger WHERE gid = '$gid' AND step = 2 AND op = 'action'"),
			1, "$mode: step 2's action committed on $b");
	}

	# 4. the abort commits
	$t1->query_safe('COMMIT');
	$t1->quit;

	is(wait_saga($coord, $gid), 'aborted', "$mode: the saga is aborted");
	is(step_rows($coord, $gid), "1|compensated\n2|compensated",
		"$mode: both steps rolled back");
	foreach my $db ($a, $b)
	{
		is(table_image($part, $db, 'account'), $before{$db},
			"$mode: $db: every account row as before the saga");
	}
	is(ledger_rows($part, $a, $gid), ledger_after_rollback($mode, 1),
		"$mode: $a: the ledger as a rollback leaves it");
	is(ledger_rows($part, $b, $gid), ledger_after_rollback($mode, 2),
		"$mode: $b: the ledger as a rollback leaves it");
	is(barrier_rows($part, $a, $gid), barrier_after_rollback($mode, 1),
		"$mode: $a: barrier records of the action and its rollback, nothing else");
	is(barrier_rows($part, $b, $gid), barrier_after_rollback($mode, 2),
		"$mode: $b: barrier records of the action and its rollback, nothing else");
	if ($mode eq 'at')
	{
		is(at_rows($part, $a) . ' / ' . at_rows($part, $b), '0 0 / 0 0',
			"$mode: undo images and reservations gone once restored");
	}
	if ($mode eq 'xa')
	{
		is(prepared_xacts($part), 0, "$mode: no prepared transaction left");
	}

	# (like and unlike show the whole history when they fail)
	my $history = history_rows($coord, $gid);
	like($history, qr/^\|abort_requested\|\Q$reason\E$/m,
		"$mode: history: the abort request");
	like($history, qr/^\|rollback_decided\|aborted by saga\.abort\(\)$/m,
		"$mode: history: the rollback decided by the commit lost to the abort");
	unlike($history, qr/\|$commit_done{$mode}\|/,
		"$mode: history: no $commit_done{$mode}: the commit phase never ran");
	unlike($history, qr/\|$commit_started{$mode}\|/,
		"$mode: history: no $commit_started{$mode}: the commit phase's calls were never sent");
	unlike($history, qr/\|commit_decided\|/,
		"$mode: history: no commit_decided: the decision lost to the abort never took effect");
	like($history, qr/\|aborted\|[^\n]*\z/, "$mode: history: aborted, last");
	return;
}

race('at', 'bank_a', 'bank_b');
race('tcc', 'tcc_a', 'tcc_b');
race('xa', 'xa_a', 'xa_b');

done_testing();
