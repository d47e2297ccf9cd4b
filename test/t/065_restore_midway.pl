# 065_restore_midway.pl: a worker that starts while pg_restore loads the
# extension's tables leaves the sagas alone until the restore is over, and
# a saga whose values are missing until they are there.
#
# CREATE EXTENSION, the first thing pg_restore does for pg_saga, starts the
# database's worker.  pg_restore then loads saga.gtx, saga.gtx_args and
# saga.gtx_step one table at a time (several at once with -j), each in a
# transaction of its own, and grants privileges last.  A saga taken up
# meanwhile ran without its values (the participant refused "$1") or
# without its owner's USAGE on the target (42501): a business failure, and
# the saga rolled back, though nothing was wrong with it.
#
#  - While a session of pg_restore is connected to the database the worker
#    started in, it takes up no saga: here a session named pg_restore stays
#    connected after the real one is done, and a saga started meanwhile
#    stays pending; the worker says in its log when pg_restore is there and
#    when it has left.
#  - A saga whose steps reference values it does not have yet is left for
#    later, with a line in the log: the restore is cut in two with
#    pg_restore -L (everything but the values, then the values), the
#    participant up in between; the sagas wait with nothing done on the
#    participant, and after the second part each succeeds once, with its
#    values.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();

# moves $2 from account $1 of bank_a to account $1 of bank_b
$coord->safe_psql('coord',
	    "SELECT saga.define('move', ARRAY["
	  . 'saga.step(' . join(', ', map { quote_literal($_) } 'bank_a', move_sql('$1', '-$2::numeric'),
		move_sql('$1', '$2::numeric', 'compensation'))
	  . ', expect_rows => 1, max_attempts => 100000), '
	  . 'saga.step(' . join(', ', map { quote_literal($_) } 'bank_b', move_sql('$1', '$2::numeric'),
		move_sql('$1', '-$2::numeric', 'compensation'))
	  . ', expect_rows => 1, max_attempts => 100000)])');

# --- sagas left unfinished: the participant is down at the dump --------------
$part->stop;
my %moves = (m1 => [ 1, 30 ], m2 => [ 2, 20 ]);
for my $gid (sort keys %moves)
{
	$coord->safe_psql('coord',
		"SELECT saga.start('move', ARRAY['$moves{$gid}[0]', '$moves{$gid}[1]'], gid => '$gid')");
	ok(poll_until($coord, 'coord', "SELECT bool_or(attempts >= 1) FROM saga.steps WHERE gid = '$gid'"),
		"$gid tries while the participant is down");
}
my $dump = $PostgreSQL::Test::Utils::tmp_check . '/coord.dump';
$coord->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', 'coord' ], 'pg_dump -Fc of the coordinator database');
# one copy of a saga runs, not two: the original goes before the restore
$coord->safe_psql('postgres', 'DROP DATABASE coord WITH (FORCE)');

# --- the restore in two parts: all but the values, then the values -----------
my ($toc, $err) = ('', '');
IPC::Run::run([ 'pg_restore', '-l', $dump ], '>', \$toc, '2>', \$err) or die "pg_restore -l: $err";
my @values_entry = grep { /\bTABLE DATA saga gtx_args\b/ } split /\n/, $toc;
is(scalar @values_entry, 1, 'the dump holds the sagas\' values as one table');
my $tmp = $PostgreSQL::Test::Utils::tmp_check;
PostgreSQL::Test::Utils::append_to_file("$tmp/all_but_values.list",
	join("\n", grep { !/\bTABLE DATA saga gtx_args\b/ } split /\n/, $toc) . "\n");
PostgreSQL::Test::Utils::append_to_file("$tmp/values.list", "$values_entry[0]\n");

sub restore_part
{
	my ($list, $what) = @_;
	my ($out, $stderr) = ('', '');
	my $ok = IPC::Run::run([ 'pg_restore', '-L', $list, '-d', $coord->connstr('moved'), $dump ],
		'>', \$out, '2>', \$stderr);
	ok($ok && $stderr eq '', "pg_restore of $what") or diag $stderr;
}

$coord->safe_psql('postgres', 'CREATE DATABASE moved');
# a session that looks like pg_restore's and stays after the real one
my ($held_out, $held_err) = ('', '');
my $held = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $coord->connstr('moved') . ' application_name=pg_restore',
	  '-c', 'SELECT pg_sleep(600)' ],
	'>', \$held_out, '2>', \$held_err);
ok( poll_until(
		$coord, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'moved' AND application_name = 'pg_restore'"),
	'a session named pg_restore is connected to the database restored into');
my $log_offset = -s $coord->logfile;
restore_part("$tmp/all_but_values.list", 'all but the values');
ok(wait_for_worker($coord, 'moved'), 'a worker runs for the restored database');
ok($coord->wait_for_log(qr/pg_restore is connected to database "moved": sagas are taken up once it has left/,
		$log_offset),
	'the worker says that it waits for pg_restore');
is( $coord->safe_psql('moved',
		"SELECT string_agg(gid || ' ' || (s.steps = 2)::text, ', ' ORDER BY gid)
		   FROM saga.transactions t, LATERAL (SELECT count(*) AS steps FROM saga.steps WHERE gid = t.gid) s"),
	'm1 true, m2 true', 'the sagas and their steps are restored, their values not yet');

$part->start;
# the worker rechecks every 5 s: a saga started now is not taken up within 6
$coord->safe_psql('moved', "SELECT saga.start('move', ARRAY['1', '1'], gid => 'fresh')");
is($coord->safe_psql('moved', "SELECT saga.wait('fresh', '6 s')"), 'pending',
	'while pg_restore is connected, a saga started meanwhile is not taken up');
is($part->safe_psql('bank_a', "SELECT count(*) FROM ledger"), '0', 'and nothing reaches the participant');

$coord->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'moved' AND application_name = 'pg_restore'");
$held->finish;
$log_offset = $coord->wait_for_log(qr/pg_restore has left database "moved": sagas are taken up/, $log_offset);
ok($log_offset, 'the worker says that pg_restore has left');
for my $gid (sort keys %moves)
{
	ok($coord->wait_for_log(qr/saga "$gid" waits for its values, which are not visible yet/, $log_offset),
		"then, that $gid waits for its values");
}
is(wait_saga($coord, 'fresh', 90, 'moved'), 'succeeded', 'the saga started meanwhile succeeds');
is( $coord->safe_psql('moved',
		"SELECT string_agg(gid || ' ' || status, ', ' ORDER BY gid) FROM saga.transactions WHERE gid LIKE 'm%'"),
	'm1 running, m2 running', 'the sagas without their values are left running');
is($part->safe_psql('bank_a', "SELECT count(*) FROM ledger WHERE gid LIKE 'm%'"), '0',
	'and nothing of them reached the participant');

restore_part("$tmp/values.list", 'the values');
for my $gid (sort keys %moves)
{
	is(wait_saga($coord, $gid, 90, 'moved'), 'succeeded', "$gid succeeds once its values are restored")
	  or diag $coord->safe_psql('moved',
		"SELECT string_agg(step || ' ' || status || ' ' || coalesce(last_sqlstate, '') || ' '
						   || coalesce(last_error, ''), '; ') FROM saga.steps WHERE gid = '$gid'");
}
for my $bank (qw(bank_a bank_b))
{
	is( $part->safe_psql($bank,
			"SELECT string_agg(gid || ' ' || op || ' ' || id || ' ' || delta, ', ' ORDER BY gid)
			   FROM ledger WHERE gid LIKE 'm%'"),
		$bank eq 'bank_a' ? 'm1 action 1 -30, m2 action 2 -20' : 'm1 action 1 30, m2 action 2 20',
		"on $bank each saga took effect once, with its values");
}
is_deeply(balances($part, 'bank_a'), { 1 => 69, 2 => 80 }, 'bank_a: 30 and 20 left, and 1 of the fresh saga');
is_deeply(balances($part, 'bank_b'), { 1 => 131, 2 => 120 }, 'bank_b: 30 and 20 arrived, and 1 of the fresh saga');

$coord->stop;
$part->stop;
done_testing();
