# 045_max_active.pl: saga.max_active_sagas bounds what a worker drives.
#
# Twelve one-step sagas, each step sleeping half a second on the
# participant, are submitted at once with saga.max_active_sagas = 3 (and
# connections to spare).  How many ran at once is counted, not sampled:
#
#  - on the participant, each step first takes a shared advisory lock (held
#    until its remote transaction ends) and writes down how many
#    transactions hold it then, itself included.  The most steps executing
#    at once is reached when one of them starts, and each start is
#    recorded, so the largest number written is exactly that maximum;
#  - on the coordinator, the same from saga.steps: for each step's
#    started_at, how many steps had started and not yet finished then.
#
# Neither may exceed three, both must reach three (the limit is used, not
# merely respected by running one at a time), and every step must have
# written its number (a step that ran without it would go uncounted).  They
# start in submission order and all succeed, each applied once.  Raised to
# 6 with a reload, the next batch runs more than three and at most six at
# once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup(accounts => { 1 => 1000 });
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.max_active_sagas = 3;
ALTER SYSTEM SET saga.max_connections_per_target = 8;
});
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');
reload_settings($coord, 'coord');

$part->safe_psql('bank_a', q{
CREATE TABLE running (gid text NOT NULL, n int NOT NULL);
});

# What a step runs first: take the lock, write down how many hold it.
my $COUNT_SQL = q{SELECT pg_advisory_xact_lock_shared(4500); }
  . q{INSERT INTO running SELECT current_setting('saga.gid'), count(*) FROM pg_locks }
  . q{WHERE locktype = 'advisory' AND classid = 0 AND objid = 4500 AND granted; };

# Submits $n sleepy one-step sagas named $prefix-1.. in one transaction.
sub submit_batch
{
	my ($prefix, $n) = @_;
	my $sql = "BEGIN;\n";
	foreach my $i (1 .. $n)
	{
		my $gid = "$prefix-$i";
		$sql .= build_saga_sql(
			gid => $gid,
			steps => [
				{
					target => 'bank_a',
					action => $COUNT_SQL . move_sql(1, -1, 'action', sleep => 0.5),
					compensation => move_sql(1, 1, 'compensation')
				}
			]) . "SELECT saga.submit('$gid');\n";
	}
	$coord->safe_psql('coord', $sql . "COMMIT;\n");
}

# Waits until every saga of the batch is final; then how many steps ran at
# once at most, as the participant wrote it down and as the coordinator's
# step times say, and how many steps wrote theirs.
sub drain
{
	my ($prefix, $n) = @_;
	my $finished = poll_until($coord, 'coord',
		"SELECT count(*) = $n FROM saga.transactions
		  WHERE gid LIKE '$prefix-%' AND status IN ('succeeded', 'aborted', 'failed')", 't', 120);
	my ($max_executing, $counted) = split /\|/, $part->safe_psql('bank_a',
		"SELECT coalesce(max(n), 0), count(DISTINCT gid) FROM running WHERE gid LIKE '$prefix-%'");
	my $max_running = $coord->safe_psql('coord', qq{
SELECT coalesce(max((SELECT count(*) FROM saga.steps o
					  WHERE o.gid LIKE '$prefix-%'
						AND o.started_at <= s.started_at AND o.finished_at > s.started_at)), 0)
  FROM saga.steps s WHERE s.gid LIKE '$prefix-%'});
	return ($finished, $max_running, $max_executing, $counted);
}

submit_batch('lim3', 12);
my ($finished, $max_running, $max_executing, $counted) = drain('lim3', 12);
ok($finished, 'all twelve sagas finished');
is($counted, 12, 'every step wrote down how many ran with it');
is($max_executing, 3, 'at most three steps executing on the participant at once, and three at some point');
is($max_running, 3, 'at most three steps running at once by the coordinator\'s step times, and three at some point');
is( $coord->safe_psql(
		'coord', "SELECT string_agg(DISTINCT status, ',') FROM saga.transactions WHERE gid LIKE 'lim3-%'"),
	'succeeded', 'every saga succeeded');
is( $coord->safe_psql(
		'coord', q{
SELECT max(s.started_at) FILTER (WHERE t.gid IN ('lim3-1', 'lim3-2', 'lim3-3'))
	 < min(s.started_at) FILTER (WHERE t.gid IN ('lim3-10', 'lim3-11', 'lim3-12'))
  FROM saga.steps s JOIN saga.transactions t USING (gid) WHERE t.gid LIKE 'lim3-%'}),
	't', 'they started in submission order');
is_deeply(balances($part, 'bank_a'), { 1 => 988 }, 'bank_a debited once per saga');
is(ledger_duplicates($part, 'bank_a'), '', 'no step applied twice');

# --- raised with a reload ----------------------------------------------------
$coord->safe_psql('coord', 'ALTER SYSTEM SET saga.max_active_sagas = 6');
reload_settings($coord, 'coord');
submit_batch('lim6', 12);
($finished, $max_running, $max_executing, $counted) = drain('lim6', 12);
ok($finished, 'the next twelve finished');
is($counted, 12, 'every step wrote down how many ran with it');
cmp_ok($max_executing, '<=', 6, 'never more than six steps executing');
cmp_ok($max_executing, '>', 3, 'more than three at once after the reload');
cmp_ok($max_running, '<=', 6, 'never more than six by the coordinator\'s step times');
cmp_ok($max_running, '>', 3, 'and more than three');
is_deeply(balances($part, 'bank_a'), { 1 => 976 }, 'bank_a debited once per saga');

$coord->stop;
$part->stop;
done_testing();
