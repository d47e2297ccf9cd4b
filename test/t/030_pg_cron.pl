# 030_pg_cron.pl: retention with pg_cron, as docs/operations.md ("Retention
# with pg_cron") shows it.
#
# pg_cron and pg_saga are preloaded together on the coordinator.  A job
# scheduled with cron.schedule_in_database runs saga.purge('7 days') in the
# coordinator database; the test waits until pg_cron has run it
# (cron.job_run_details) and checks that final sagas older than the retention
# are gone, steps and history included, while recent ones and unfinished
# ones stay.
#
# The installed pg_cron's version decides the schedule: from 1.5 on it takes
# an interval in seconds ('2 seconds'); before that the shortest schedule is
# one minute, so the test may wait up to a minute for the first run.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my $coord = new_coordinator('coord', start => 0);
$coord->append_conf(
	'postgresql.conf', q{
# 030_pg_cron
shared_preload_libraries = 'pg_saga,pg_cron'
cron.database_name = 'postgres'
# jobs run in background workers: no connection string, no password
cron.use_background_workers = on
max_worker_processes = 24
});
$coord->start;
my $part = new_participant('part');
create_bank($part, 'bank_a', { 1 => 1000 });
create_coordinator_db($coord, 'coord');
add_target($coord, 'bank_a', $part, 'bank_a');

ok( poll_until(
		$coord, 'postgres',
		"SELECT count(DISTINCT backend_type) FROM pg_stat_activity
		  WHERE backend_type IN ('pg_cron launcher', 'pg_saga launcher', 'pg_saga worker')",
		'3'),
	'pg_cron and pg_saga run side by side');

# --- sagas of every age ----------------------------------------------------
my @old = map { "old-$_" } 1 .. 3;
my @recent = map { "recent-$_" } 1 .. 2;
foreach my $gid (@old, @recent)
{
	submit_saga(
		$coord,
		gid => $gid,
		steps => [
			{
				target => 'bank_a',
				action => move_sql(1, -1),
				compensation => move_sql(1, 1, 'compensation')
			}
		]);
	is(wait_saga($coord, $gid), 'succeeded', "$gid succeeded");
}
# one that failed for good a long time ago, and one still being built
submit_saga(
	$coord,
	gid => 'old-aborted',
	steps => [ { target => 'bank_a', action => 'SELECT 1/0' } ]);
is(wait_saga($coord, 'old-aborted'), 'aborted', 'old-aborted aborted');
push @old, 'old-aborted';
$coord->safe_psql('coord',
	"SELECT saga.begin('building-1'); SELECT saga.add_step('building-1', 'bank_a', 'SELECT 1')");

# Age the old ones: they finished ten days ago.
my $old_list = join(', ', map { quote_literal($_) } @old);
$coord->safe_psql('coord',
	"UPDATE saga.gtx SET created_at = created_at - interval '10 days',
	                     submitted_at = submitted_at - interval '10 days',
	                     finished_at = finished_at - interval '10 days'
	  WHERE gid IN ($old_list)");
my $old_ids = $coord->safe_psql('coord',
	"SELECT string_agg(id::text, ',') FROM saga.gtx WHERE gid IN ($old_list)");
ok( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.gtx_event WHERE gtx_id IN ($old_ids)") > 0,
	'the old sagas have history');

# --- the job, as in docs/operations.md -------------------------------------
$coord->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
my $cron_version = $coord->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'");
note "pg_cron $cron_version";

# pg_cron 1.5 and later (Debian 13's 1.6.5) take seconds; 1.4 (Debian 12's)
# runs the job at the next minute.
my ($major, $minor) = split /\./, $cron_version;
my $seconds = $major > 1 || ($major == 1 && $minor >= 5);
my $schedule = $seconds ? '2 seconds' : '* * * * *';
note $seconds ? 'the job runs every 2 seconds' : 'this pg_cron takes no seconds: the job runs every minute';
my $jobid = $coord->safe_psql('postgres',
	qq{SELECT cron.schedule_in_database('saga-purge', '$schedule', \$\$SELECT saga.purge('7 days')\$\$, 'coord')});
my $wait = $seconds ? 30 : 150;
ok($jobid =~ /^\d+$/, "job $jobid scheduled");
is( $coord->safe_psql('postgres',
		"SELECT database || ' ' || command FROM cron.job WHERE jobid = $jobid"),
	q{coord SELECT saga.purge('7 days')},
	'the job runs saga.purge in the coordinator database');

ok( poll_until(
		$coord, 'postgres',
		"SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = $jobid AND status = 'succeeded'",
		't', $wait),
	'pg_cron ran the job');
is( $coord->safe_psql('postgres',
		"SELECT return_message FROM cron.job_run_details
		  WHERE jobid = $jobid AND status = 'succeeded' ORDER BY runid LIMIT 1"),
	'SELECT 1',
	'the job returned the row of saga.purge');
is( $coord->safe_psql('postgres',
		"SELECT count(*) FROM cron.job_run_details WHERE jobid = $jobid AND status = 'failed'"),
	'0', 'no run failed');

# --- its effect ---------------------------------------------------------------
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.transactions WHERE gid IN ($old_list)"),
	'0', 'final sagas older than 7 days are gone');
is( $coord->safe_psql('coord',
		"SELECT (SELECT count(*) FROM saga.gtx_step WHERE gtx_id IN ($old_ids))
		      + (SELECT count(*) FROM saga.gtx_event WHERE gtx_id IN ($old_ids))"),
	'0', 'with their steps and history');
is( $coord->safe_psql('coord',
		"SELECT string_agg(gid || ':' || status, ' ' ORDER BY gid) FROM saga.transactions"),
	'building-1:building recent-1:succeeded recent-2:succeeded',
	'recent and unfinished sagas stay');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.history WHERE gid IN ('recent-1', 'recent-2')"),
	'8', 'recent history stays whole (4 events each)');

# History stays bounded: a saga that ages past the retention goes at the next run.
$coord->safe_psql('coord',
	"UPDATE saga.gtx SET finished_at = finished_at - interval '8 days' WHERE gid = 'recent-1'");
my $runs = $coord->safe_psql('postgres',
	"SELECT count(*) FROM cron.job_run_details WHERE jobid = $jobid AND status = 'succeeded'");
ok( poll_until(
		$coord, 'postgres',
		"SELECT count(*) > $runs FROM cron.job_run_details WHERE jobid = $jobid AND status = 'succeeded'",
		't', $wait),
	'the job ran again');
is( $coord->safe_psql('coord',
		"SELECT string_agg(gid, ' ' ORDER BY gid) FROM saga.transactions"),
	'building-1 recent-2', 'the next run purged the saga that aged');

# The worker carried on: a new saga still runs.
submit_saga(
	$coord,
	gid => 'after-purge',
	steps => [ { target => 'bank_a', action => move_sql(1, -1) } ]);
is(wait_saga($coord, 'after-purge'), 'succeeded', 'sagas still run next to pg_cron');
is_deeply(balances($part, 'bank_a'), { 1 => 994 }, 'every succeeded saga applied once');

$coord->safe_psql('postgres', "SELECT cron.unschedule($jobid)");
$coord->stop;
$part->stop;
done_testing();
