# 033_monitoring.pl: the postgres_exporter query file and pg_monitor.
#
# monitoring/postgres_exporter.yml is read as postgres_exporter reads it
# (a YAML map of namespace => query, metrics) and its query is run as a
# login role that is only a member of pg_monitor, as the exporter would.
# Every metric the file declares is a column of the query, every status has
# its row, and the numbers follow what the sagas did: finished ones counted
# by status, a saga retrying while its participant is down shows retries,
# a step waiting for its next attempt and an age.  pg_monitor also reads
# saga.explain and saga.diagram of every saga, and acts on none.
use strict;
use warnings;

use CPAN::Meta::YAML;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my $file = dirname(__FILE__) . '/../../monitoring/postgres_exporter.yml';
my $yaml = CPAN::Meta::YAML->read($file)
  or BAIL_OUT("cannot parse $file: " . CPAN::Meta::YAML->errstr);
my $doc = $yaml->[0];
is_deeply([ sort keys %$doc ], ['saga'], 'one namespace: metrics are saga_*');
my $query = $doc->{saga}{query};
ok($query =~ /\bFROM\b/i, 'it has a query');
is($doc->{saga}{master}, 'true', 'run on the database of the connection only');
my @metrics = map { (keys %$_)[0] } @{ $doc->{saga}{metrics} };
my %usage = map { my ($k) = keys %$_; ($k => $_->{$k}{usage}) } @{ $doc->{saga}{metrics} };
is($usage{status}, 'LABEL', 'status is the label');
ok(!grep({ $usage{$_} !~ /^(LABEL|GAUGE|COUNTER)$/ } @metrics), 'every metric has a usage');
ok(!grep({ !$_->{(keys %$_)[0]}{description} } @{ $doc->{saga}{metrics} }),
	'every metric has a description');

my ($coord, $part) = standard_setup();
$coord->safe_psql('postgres', 'CREATE ROLE exporter LOGIN IN ROLE pg_monitor');
my @as_exporter = (extra_params => [ '-U', 'exporter' ]);

# finished sagas: two succeeded, one aborted
foreach my $i (1 .. 2)
{
	submit_saga(
		$coord,
		gid => "ok-$i",
		steps => [ { target => 'bank_a', action => move_sql(1, -1) } ]);
	is(wait_saga($coord, "ok-$i"), 'succeeded', "ok-$i succeeded");
}
submit_saga(
	$coord,
	gid => 'bad-1',
	steps => [ { target => 'bank_a', action => 'SELECT 1/0' } ]);
is(wait_saga($coord, 'bad-1'), 'aborted', 'bad-1 aborted');

# one retrying: its participant is down
$part->stop;
submit_saga(
	$coord,
	gid => 'stuck-1',
	steps => [ { target => 'bank_b', action => move_sql(1, 1), max_attempts => 1000 } ]);

is( $coord->safe_psql('coord',
		"SELECT string_agg(k, ' ') FROM json_object_keys(
		   (SELECT row_to_json(q) FROM ($query) q LIMIT 1)) AS k", @as_exporter),
	join(' ', @metrics), 'the query returns exactly the declared metrics, in order');

# (steps_waiting_retry drops to 0 while an attempt is in flight: poll for it)
my $rows = "SELECT status, sagas, retries_last_5min >= 2, steps_waiting_retry, oldest_age_seconds > 0
              FROM ($query) q ORDER BY status";
my $expected = join("\n",
	'aborted|1|f|0|f',
	'building|0|f|0|f',
	'committing|0|f|0|f',
	'compensating|0|f|0|f',
	'failed|0|f|0|f',
	'pending|0|f|0|f',
	'running|1|t|1|t',
	'succeeded|2|f|0|f');
ok(poll_until($coord, 'coord', $rows, $expected),
	'one row per status, with the counts, the retries and the waiting step');
my $exporter_rows = "SELECT status, sagas, retries_last_5min >= 2, oldest_age_seconds > 0
                       FROM ($query) q ORDER BY status";
(my $expected_exporter = $expected) =~ s/\|\d\|([tf])$/|$1/mg;
is($coord->safe_psql('coord', $exporter_rows, @as_exporter),
	$expected_exporter, 'a pg_monitor member gets the same rows');
like( $coord->safe_psql('coord',
		"SELECT finished_last_minute || ' ' || finished_last_hour || ' '
		        || (latency_p50_seconds_last_5min >= 0) || ' ' || (latency_max_seconds_last_5min >= latency_p50_seconds_last_5min)
		   FROM ($query) q WHERE status = 'succeeded'", @as_exporter),
	qr/^2 2 true true$/, 'throughput and latency of the succeeded sagas');
is( $coord->safe_psql('coord',
		"SELECT coalesce(latency_p50_seconds_last_5min::text, 'null') FROM ($query) q WHERE status = 'running'",
		@as_exporter),
	'null', 'no latency where nothing finished (NaN for the exporter)');

# pg_monitor reads every saga's pictures, acts on none
like( $coord->safe_psql('coord', "SELECT saga.diagram('stuck-1')", @as_exporter),
	qr/T1--xC: step 1: retry scheduled/, 'pg_monitor draws any saga');
like( $coord->safe_psql('coord', "SELECT * FROM saga.explain('ok-1')", @as_exporter),
	qr/^ok-1 \(saga mode\): succeeded/, 'pg_monitor explains any saga');
my ($rc, $out, $err) = $coord->psql('coord', "SELECT saga.abort('stuck-1')", @as_exporter);
like($err, qr/saga "stuck-1" does not exist/, 'pg_monitor cannot abort a saga');

$part->start;
is(wait_saga($coord, 'stuck-1'), 'succeeded', 'the stuck saga finishes');

$coord->stop;
$part->stop;
done_testing();
