# 007_concurrent.pl: steps with after => '{}' run concurrently.
#
# Three independent steps sleep 2 seconds each; their [started_at,
# finished_at] intervals overlap.  A fourth step after all three starts only
# when they are done.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) =
  standard_setup(accounts => { 1 => 100, 2 => 100, 3 => 100, 4 => 100 });

my $gid = submit_saga(
	$coord,
	gid => 'conc-1',
	steps => [
		(
			map {
				{
					target => 'bank_a',
					name => "s$_",
					after => [],
					action => move_sql($_, -1, 'action', sleep => 2),
					compensation => move_sql($_, 1, 'compensation')
				}
			} 1 .. 3
		),
		{
			target => 'bank_b',
			name => 'join',
			after => [ 's1', 's2', 's3' ],
			action => move_sql(4, 3)
		}
	]);
is(wait_saga($coord, $gid), 'succeeded', 'concurrent saga succeeded');
is(step_rows($coord, $gid, 'name, status'),
	"s1|succeeded\ns2|succeeded\ns3|succeeded\njoin|succeeded",
	'all steps succeeded');
is( $coord->safe_psql(
		'coord',
		"SELECT max(started_at) < min(finished_at) FROM saga.steps
		  WHERE gid = 'conc-1' AND name IN ('s1', 's2', 's3')"),
	't',
	'the three independent steps ran at the same time')
  or diag step_rows($coord, $gid, 'name, started_at, finished_at');
is( $coord->safe_psql(
		'coord',
		"SELECT j.started_at >= (SELECT max(finished_at) FROM saga.steps
		                          WHERE gid = 'conc-1' AND name IN ('s1', 's2', 's3'))
		   FROM saga.steps j WHERE j.gid = 'conc-1' AND j.name = 'join'"),
	't',
	'the joining step started after the three');
is_deeply(balances($part, 'bank_a'), { 1 => 99, 2 => 99, 3 => 99, 4 => 100 },
	'bank_a');
is_deeply(balances($part, 'bank_b'), { 1 => 100, 2 => 100, 3 => 100, 4 => 103 },
	'bank_b');
is(ledger_duplicates($part, 'bank_a'), '', 'no branch applied twice');

# independent sagas run concurrently too
my @gids = map {
	submit_saga(
		$coord,
		gid => "par-$_",
		steps => [
			{
				target => 'bank_b',
				action => move_sql($_, -1, 'action', sleep => 2)
			}
		])
} 1 .. 3;
is(wait_saga($coord, $_), 'succeeded', "$_ succeeded") foreach @gids;
is( $coord->safe_psql(
		'coord',
		"SELECT max(started_at) < min(finished_at) FROM saga.steps WHERE gid LIKE 'par-%'"),
	't',
	'three independent sagas ran at the same time');

$coord->stop;
$part->stop;
done_testing();
