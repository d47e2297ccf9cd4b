# 045_max_active.pl: saga.max_active_sagas bounds what a worker drives.
#
# Twelve one-step sagas, each step sleeping half a second on the
# participant, are submitted at once with saga.max_active_sagas = 3 (and
# connections to spare).  Sampled while they drain: never more than three
# sagas running on the coordinator nor more than three steps executing on
# the participant, and three at some point (the limit is used, not merely
# respected by running one at a time).  They start in submission order and
# all succeed, each applied once.  Raised to 6 with a reload, the next batch
# runs up to six at once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use SagaTest;

my ($coord, $part) = standard_setup(accounts => { 1 => 1000 });
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.max_active_sagas = 3;
ALTER SYSTEM SET saga.max_connections_per_target = 8;
});
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');
reload_settings($coord, 'coord');

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
					action => move_sql(1, -1, 'action', sleep => 0.5),
					compensation => move_sql(1, 1, 'compensation')
				}
			]) . "SELECT saga.submit('$gid');\n";
	}
	$coord->safe_psql('coord', $sql . "COMMIT;\n");
}

# Samples, until every saga of the batch is final, how many of them run on
# the coordinator and how many steps execute on the participant.
sub drain
{
	my ($prefix, $n) = @_;
	my ($max_running, $max_executing, $finished) = (0, 0, 0);
	my $deadline = time + 120;
	while (time < $deadline)
	{
		my ($running, $final) = split /\|/, $coord->safe_psql(
			'coord', "SELECT count(*) FILTER (WHERE status = 'running'),
							 count(*) FILTER (WHERE status IN ('succeeded', 'aborted', 'failed'))
						FROM saga.transactions WHERE gid LIKE '$prefix-%'");
		my $executing = $part->safe_psql(
			'bank_a', "SELECT count(*) FROM pg_stat_activity
						WHERE application_name = 'pg_saga' AND wait_event = 'PgSleep'");
		$max_running = $running if $running > $max_running;
		$max_executing = $executing if $executing > $max_executing;
		if ($final == $n)
		{
			$finished = 1;
			last;
		}
		usleep(50_000);
	}
	return ($finished, $max_running, $max_executing);
}

submit_batch('lim3', 12);
my ($finished, $max_running, $max_executing) = drain('lim3', 12);
ok($finished, 'all twelve sagas finished');
cmp_ok($max_running, '<=', 3, 'never more than three sagas running');
cmp_ok($max_executing, '<=', 3, 'never more than three steps executing on the participant');
is($max_executing, 3, 'three steps executed at once: the limit was used');
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
($finished, $max_running, $max_executing) = drain('lim6', 12);
ok($finished, 'the next twelve finished');
cmp_ok($max_executing, '<=', 6, 'never more than six steps executing');
cmp_ok($max_executing, '>', 3, 'more than three at once after the reload');
is_deeply(balances($part, 'bank_a'), { 1 => 976 }, 'bank_a debited once per saga');

$coord->stop;
$part->stop;
done_testing();
