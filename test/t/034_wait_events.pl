# 034_wait_events.pl: what pg_stat_activity says a pg_saga process waits on.
#
# From PostgreSQL 17 on, pg_saga names its waits (WaitEventExtensionNew, as
# postgres_fdw does): wait_event_type is 'Extension' and wait_event says
# which wait it is.  Before 17 an extension's waits are all 'Extension'.
# Each wait is observed where it happens:
#
#   PgSagaLauncherMain  the launcher, between two looks at the databases
#   PgSagaWorkerMain    an idle worker (latch, target sockets, timers)
#   PgSagaWait          a session in saga.wait() for a saga still retrying
#   PgSagaTarget        a session in saga.setup_participant() whose target
#                       is blocked on a lock
#
# and, on 17, each name is listed in pg_wait_events once registered.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
my $named = $coord->safe_psql('postgres', 'SHOW server_version_num') >= 170000;
note $named ? 'named wait events (17 and later)' : 'one wait event per extension (before 17)';
# The session talking to a target must wait on the lock, not time out.
$coord->append_conf('postgresql.conf', "saga.step_timeout = '10min'\n");
$coord->reload;

sub expect_event
{
	my ($name) = @_;
	return 'Extension:' . ($named ? $name : 'Extension');
}

sub wait_of
{
	my ($where) = @_;
	return "SELECT string_agg(wait_event_type || ':' || wait_event, ',')
	          FROM pg_stat_activity WHERE $where";
}

# --- the background processes ------------------------------------------------
ok( poll_until(
		$coord, 'postgres', wait_of("backend_type = 'pg_saga launcher'"),
		expect_event('PgSagaLauncherMain')),
	'the launcher waits on ' . expect_event('PgSagaLauncherMain'));
ok( poll_until(
		$coord, 'postgres', wait_of("backend_type = 'pg_saga worker' AND datname = 'coord'"),
		expect_event('PgSagaWorkerMain')),
	'an idle worker waits on ' . expect_event('PgSagaWorkerMain'));

# --- saga.wait() ---------------------------------------------------------------
$part->stop;
submit_saga(
	$coord,
	gid => 'waited-1',
	steps => [ { target => 'bank_a', action => move_sql(1, -5), max_attempts => 1000 } ]);
my ($out, $err) = ('', '');
my $waiter = IPC::Run::start(
	[
		'psql', '-X', '-A', '-t', '-d', $coord->connstr('coord'),
		'-c', "SELECT saga.wait('waited-1', '10 min')"
	],
	'>', \$out, '2>', \$err);
ok( poll_until(
		$coord, 'postgres',
		wait_of("query = 'SELECT saga.wait(''waited-1'', ''10 min'')'"),
		expect_event('PgSagaWait')),
	'a session in saga.wait waits on ' . expect_event('PgSagaWait'));
$part->start;
ok($waiter->finish, 'saga.wait returns once the participant is back') or diag $err;
is($out, "succeeded\n", 'with the final status');

# --- a backend talking to a target ---------------------------------------------
# saga.setup_participant alters the barrier table: a participant session
# holding a lock on it makes the coordinator's session wait for the target.
my ($lin, $lout, $lerr) = ('', '', '');
my $timer = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
my $locker = IPC::Run::start(
	[ 'psql', '-X', '-A', '-t', '-d', $part->connstr('bank_a') ],
	'<', \$lin, '>', \$lout, '2>', \$lerr, $timer);
$lin .= "BEGIN;\nLOCK TABLE saga_participant.barrier IN ACCESS SHARE MODE;\nSELECT 'locked';\n";
ok(pump_until($locker, $timer, \$lout, qr/locked/),
	'a participant session holds a lock on the barrier');
my ($sout, $serr) = ('', '');
my $setup = IPC::Run::start(
	[
		'psql', '-X', '-A', '-t', '-d', $coord->connstr('coord'),
		'-c', "SELECT saga.setup_participant('bank_a')"
	],
	'>', \$sout, '2>', \$serr);
ok( poll_until(
		$coord, 'postgres',
		wait_of("query = 'SELECT saga.setup_participant(''bank_a'')'"),
		expect_event('PgSagaTarget')),
	'a session whose target is busy waits on ' . expect_event('PgSagaTarget'));
$lin .= "COMMIT;\n\\q\n";
ok($locker->finish, 'the participant session lets go') or diag $lerr;
ok($setup->finish, 'saga.setup_participant completes then') or diag $serr;

# --- pg_wait_events (17) ---------------------------------------------------------
SKIP:
{
	skip 'pg_wait_events is new in PostgreSQL 17', 1 unless $named;
	is( $coord->safe_psql('postgres',
			"SELECT string_agg(name, ',' ORDER BY name) FROM pg_wait_events
			  WHERE type = 'Extension' AND name LIKE 'PgSaga%'"),
		'PgSagaLauncherMain,PgSagaTarget,PgSagaWait,PgSagaWorkerMain',
		'pg_wait_events lists the four');
}

is(wait_saga($coord, 'waited-1'), 'succeeded', 'the saga waited on succeeded');
is_deeply(balances($part, 'bank_a'), { 1 => 95, 2 => 100 }, 'its step applied once');

$coord->stop;
$part->stop;
done_testing();
