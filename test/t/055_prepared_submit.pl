# 055_prepared_submit.pl: a submission committed through the application's
# own two-phase commit (PREPARE TRANSACTION, then COMMIT PREPARED from
# another session) starts as promptly as one committed directly; ROLLBACK
# PREPARED starts nothing.
#
# The worker finds sagas by wake-ups (ids queued by the committing backend)
# and, every RELOAD_INTERVAL_MS (5 s, src/worker.c), by a scan of all its
# live sagas from the first.  To prove that COMMIT PREPARED wakes it, and
# that the periodic scan did not merely happen to come by:
#
#  - two sagas are prepared (p0, p1), then a saga committed directly runs to
#    its end, so both prepared ones have ids below the ones taken up already;
#  - COMMIT PREPARED p0, waited for with a long timeout: without a wake-up
#    only the periodic scan finds it, so once it has started a periodic scan
#    has just happened and the next one is about 5 s away;
#  - COMMIT PREPARED p1 at once: it must succeed within 2.5 s, before any
#    periodic scan can come by.  Without a wake-up this fails every time.
#
# Each COMMIT PREPARED runs in a session of its own, never the preparing
# one (a prepared transaction outlives its session).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SagaTest;

my ($coord, $part) = standard_setup();
is($coord->safe_psql('coord', 'SHOW max_prepared_transactions'), '10',
	'the coordinator accepts prepared transactions');

sub start_sql
{
	my ($gid, $amount) = @_;
	return build_start_sql(
		gid => $gid,
		steps => [
			{
				target => 'bank_a',
				action => move_sql(1, $amount),
				compensation => move_sql(1, -$amount, 'compensation'),
				expect_rows => 1
			}
		]);
}

# BEGIN; saga.start(...); PREPARE TRANSACTION $xact, in a session that ends
sub prepare_saga
{
	my ($gid, $amount, $xact) = @_;
	$coord->safe_psql('coord',
		"BEGIN;\n" . start_sql($gid, $amount) . "PREPARE TRANSACTION '$xact';\n");
	return $gid;
}

# Waits for $gid to be final for at most $seconds; its status then.
sub status_within
{
	my ($gid, $seconds) = @_;
	my $deadline = time + $seconds;
	my $status = '';
	while (time < $deadline)
	{
		$status = $coord->safe_psql('coord',
			'SELECT coalesce(max(status), \'(none)\') FROM saga.transactions WHERE gid = ' . quote_literal($gid));
		return $status if is_final($status);
		usleep(50_000);
	}
	return $status;
}

prepare_saga('prep-0', -1, 'p0');
prepare_saga('prep-1', -2, 'p1');
is($coord->safe_psql('coord', 'SELECT count(*) FROM saga.transactions WHERE gid LIKE \'prep-%\''),
	'0', 'prepared submissions are not visible yet');
is($coord->safe_psql('coord', 'SELECT count(*) FROM pg_prepared_xacts'), '2',
	'both transactions are prepared');

# a saga committed directly: taken up after the prepared ones got their ids
my $gid = submit_saga($coord, gid => 'direct-1',
	steps => [ { target => 'bank_b', action => move_sql(1, 5) } ]);
is(wait_saga($coord, $gid), 'succeeded', 'a saga committed directly runs');

# p0: whatever finds it (a wake-up, or the periodic scan without one)
$coord->safe_psql('coord', "COMMIT PREPARED 'p0'");
is(status_within('prep-0', 15), 'succeeded', 'COMMIT PREPARED p0: the saga runs');

# p1: only a wake-up finds it before the next periodic scan
$coord->safe_psql('coord', "COMMIT PREPARED 'p1'");
is(status_within('prep-1', 2.5), 'succeeded',
	'COMMIT PREPARED from another session wakes the worker: the saga (older than those taken up) runs at once');
is_deeply(balances($part, 'bank_a'), { 1 => 97, 2 => 100 }, 'both prepared sagas applied once');

# --- ROLLBACK PREPARED starts nothing ---------------------------------------
prepare_saga('prep-rb', -50, 'p_rb');
$coord->safe_psql('coord', "ROLLBACK PREPARED 'p_rb'");
# a later saga runs to its end, and so would anything queued before it
$gid = submit_saga($coord, gid => 'direct-2',
	steps => [ { target => 'bank_b', action => move_sql(2, 5) } ]);
is(wait_saga($coord, $gid), 'succeeded', 'a later saga runs');
is($coord->safe_psql('coord', "SELECT count(*) FROM saga.transactions WHERE gid = 'prep-rb'"),
	'0', 'ROLLBACK PREPARED: the saga never existed');
is_deeply(balances($part, 'bank_a'), { 1 => 97, 2 => 100 }, 'and nothing of it ran on the participant');
is(ledger_rows($part, 'bank_a', 'prep-rb'), '', 'no ledger row of it');
is(barrier_rows($part, 'bank_a', 'prep-rb'), '', 'no barrier record of it');

# --- the preparing session goes on: its next commit carries no stale ids -------
# In one session: prepare a saga, then commit something unrelated, then
# commit the prepared one from another session: it runs (woken by COMMIT
# PREPARED), and exactly once.
my ($stdout, $stderr) = ('', '');
$coord->psql('coord',
	"BEGIN;\n" . start_sql('prep-2', -4) . "PREPARE TRANSACTION 'p2';\n"
	  . "CREATE TABLE unrelated (i int); INSERT INTO unrelated VALUES (1);\n",
	stdout => \$stdout, stderr => \$stderr, on_error_die => 1);
$coord->safe_psql('coord', "COMMIT PREPARED 'p2'");
is(status_within('prep-2', 15), 'succeeded', 'a saga prepared before an unrelated commit runs once committed');
is(ledger_rows($part, 'bank_a', 'prep-2'), '1|action|1|-4', 'and applied once');

done_testing();
