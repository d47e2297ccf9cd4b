# 008_standby.pl: no worker on a streaming standby; one after promotion.
#
# A saga submitted on the primary while its participant is down is still
# pending when the primary goes away; the promoted standby starts a worker
# by itself and completes the saga exactly once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($primary, $part) = standard_setup(coord_init => { allows_streaming => 1 });
like(wait_for_worker($primary, 'coord'), qr/^\d+$/, 'worker on the primary');

$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;

# a saga that cannot finish yet: its participant is down
$part->stop;
my $gid = submit_saga(
	$primary,
	gid => 'failover-1',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(1, -15),
			compensation => move_sql(1, 15, 'compensation'),
			max_attempts => 1000
		},
		{
			target => 'bank_b',
			action => move_sql(1, 15),
			compensation => move_sql(1, -15, 'compensation'),
			max_attempts => 1000
		}
	]);
ok( poll_until(
		$primary, 'coord',
		"SELECT attempts >= 2 FROM saga.steps WHERE gid = 'failover-1' AND step = 1"),
	'the primary retries the saga');
$primary->wait_for_catchup($standby);

is($standby->safe_psql('coord', 'SELECT pg_is_in_recovery()'),
	't', 'standby in recovery');
like($standby->safe_psql('coord', "SELECT status FROM saga.transactions WHERE gid = 'failover-1'"),
	qr/^(pending|running)$/, 'the saga replicated, not final');

# with the primary gone, nothing on the standby may move the saga on
$primary->stop;
my $attempts = $standby->safe_psql('coord',
	"SELECT attempts FROM saga.steps WHERE gid = 'failover-1' AND step = 1");
# The standby has been consistent since before the saga was replicated, so
# a worker registered to start in recovery would run by now; once the
# standby has noticed the primary is gone (no streaming WAL receiver),
# nothing may have started either.
ok( poll_until(
		$standby, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_wal_receiver WHERE status = 'streaming'"),
	'the standby noticed the primary is gone');
is( $standby->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('pg_saga worker', 'pg_saga launcher')"),
	'0',
	'no pg_saga worker (nor launcher) on the standby');
is( $standby->safe_psql('coord',
		"SELECT attempts FROM saga.steps WHERE gid = 'failover-1' AND step = 1"),
	$attempts,
	'the standby does not run the saga');

$standby->promote;
ok( poll_until($standby, 'postgres', 'SELECT NOT pg_is_in_recovery()'),
	'standby promoted');
like(wait_for_worker($standby, 'coord'), qr/^\d+$/,
	'a worker starts on the promoted standby');

$part->start;
is(wait_saga($standby, $gid), 'succeeded',
	'the promoted standby completes the saga');
is(ledger_rows($part, 'bank_a', $gid), '1|action|1|-15', 'bank_a once');
is(ledger_rows($part, 'bank_b', $gid), '2|action|1|15', 'bank_b once');
is_deeply(balances($part, 'bank_a'), { 1 => 85, 2 => 100 }, 'bank_a');
is_deeply(balances($part, 'bank_b'), { 1 => 115, 2 => 100 }, 'bank_b');

# and runs new ones
$gid = submit_saga(
	$standby,
	gid => 'after-promote',
	steps => [ { target => 'bank_a', action => move_sql(2, -1) } ]);
is(wait_saga($standby, $gid), 'succeeded', 'new sagas run after promotion');

$standby->stop;
$part->stop;
done_testing();
