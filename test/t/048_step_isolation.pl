# 048_step_isolation.pl: nothing a step leaves in its session reaches another.
#
# With one connection per target, every saga of the owner on bank_a runs in
# the same participant session (each step records pg_backend_pid(), and the
# test checks it).  A step that changes its session (search_path,
# application_name, a session advisory lock, a temporary table, SET ROLE,
# SET LOCAL statement_timeout, LISTEN, a WITH HOLD cursor, a prepared
# statement) is followed by a step that fails unless it finds the defaults:
# it must succeed.  The same holds when the step that changed the session
# then failed (its rollback does not release an advisory lock nor forget a
# prepared statement), in every mode, and between the steps of one batch:
# half of the sagas submitted together set a transaction-local search_path,
# and the other half, which need the default one, are unaffected; steps that
# leave a cursor or a prepared statement do not reach their batch-mates
# either.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup(accounts => { map { $_ => 100 } 1 .. 40 });
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.max_connections_per_target = 1;
SELECT pg_reload_conf();
});
$part->safe_psql('bank_a', q{
CREATE TABLE sessions (gid text, pid int, at timestamptz DEFAULT clock_timestamp());
GRANT ALL ON sessions TO PUBLIC;
CREATE ROLE saga_other NOLOGIN;
});
ok(poll_until($coord, 'coord', "SELECT current_setting('saga.max_connections_per_target') = '1'"),
	'one connection per target');

my $note_session =
  "INSERT INTO public.sessions (gid, pid) VALUES (current_setting('saga.gid'), pg_backend_pid())";

# What the next step must find: the worker's session as it set it up.
my %defaults = (
	'search_path' => q{current_setting('search_path') = '"$user", public'},
	'application_name' => q{current_setting('application_name') <> 'hijacked'},
	'advisory lock' => q{NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())},
	'temporary table' => q{to_regclass('pg_temp.scratch') IS NULL},
	'role' => q{current_user = session_user},
	'statement_timeout' => q{current_setting('statement_timeout') = '1min'},
	'listen' => q{NOT EXISTS (SELECT FROM pg_listening_channels())},
	# the unnamed portal is the one running the step itself
	'cursor' => q{NOT EXISTS (SELECT FROM pg_cursors WHERE name <> '')},
	'prepared statement' => q{NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name NOT LIKE 'pgsaga\_%')});
my $what_differs = join(' || ', map { "CASE WHEN $defaults{$_} THEN '' ELSE '$_; ' END" } sort keys %defaults);

# A step that fails unless the session is clean, naming what differs.
sub checking_step
{
	return {
		target => 'bank_a',
		action => "$note_session; DO \$check\$ BEGIN IF ($what_differs) <> '' THEN "
		  . "RAISE EXCEPTION 'the session differs: %', ($what_differs); END IF; END \$check\$"
	};
}

my @changes = (
	[ 'search_path', q{SELECT set_config('search_path', 'pg_catalog', false)} ],
	[ 'application_name', q{SELECT set_config('application_name', 'hijacked', false)} ],
	[ 'advisory lock', q{SELECT pg_advisory_lock(4242)} ],
	[ 'temporary table', q{CREATE TEMP TABLE scratch (x int)} ],
	[ 'role', q{SET ROLE saga_other} ],
	[ 'statement_timeout', q{SET LOCAL statement_timeout = '3s'} ],
	[ 'listen', q{LISTEN hijack} ],
	[ 'cursor', q{DECLARE c CURSOR WITH HOLD FOR SELECT 1} ],
	[ 'prepared statement', q{PREPARE hijack AS SELECT 1} ]);

# Runs a saga whose step makes $change (then fails if $fail), then a saga
# that checks the session; both must land on the same session.
sub check_isolation
{
	my ($what, $change, %opts) = @_;
	my $mode = $opts{mode} // 'saga';
	my $tail = $opts{fail} ? '; SELECT 1/0' : '';
	my %step = (target => 'bank_a', action => "$note_session; $change$tail");
	$step{confirm} = "$note_session; $change" if $mode eq 'tcc';
	$step{compensation} = 'SELECT 1' if $mode eq 'tcc' || ($mode eq 'saga' && $opts{fail});
	my $dirty = submit_saga($coord, mode => $mode, steps => [ \%step ]);
	is(wait_saga($coord, $dirty), $opts{fail} ? ($mode eq 'msg' ? 'failed' : 'aborted') : 'succeeded',
		"$mode: the step that changes the $what " . ($opts{fail} ? 'failed' : 'ran'));
	is( $part->safe_psql('bank_a',
			"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
		'0', "$mode: no advisory lock held once that saga is final");
	my $clean = submit_saga($coord, steps => [ checking_step() ]);
	is(wait_saga($coord, $clean), 'succeeded', "$mode: the next step found the default $what")
	  or diag step_rows($coord, $clean, 'step, status, last_error');
	is( $part->safe_psql('bank_a',
			"SELECT count(DISTINCT pid) FROM sessions WHERE gid IN ('$dirty', '$clean')"),
		'1', "$mode ($what): both ran in one session");
}

check_isolation(@$_) foreach @changes;

# --- a step that changed its session, then failed ----------------------------
check_isolation('advisory lock', q{SELECT pg_advisory_lock(4243)}, fail => 1);
check_isolation('prepared statement', q{PREPARE left_behind AS SELECT 1}, fail => 1);

# --- every mode --------------------------------------------------------------
check_isolation('application_name', q{SELECT set_config('application_name', 'hijacked', false)},
	mode => 'tcc');
check_isolation('search_path', q{SELECT set_config('search_path', 'pg_catalog', false)},
	mode => 'xa');
check_isolation('advisory lock', q{SELECT pg_advisory_lock(4244)}, mode => 'xa');
check_isolation('role', q{SET ROLE saga_other}, mode => 'msg');
check_isolation('statement_timeout', q{SET statement_timeout = '2s'}, mode => 'msg');

# --- within one batch --------------------------------------------------------
my $sql = "BEGIN;\n";
my @gids;
foreach my $i (1 .. 40)
{
	my $action = $i % 2
	  ? "SELECT set_config('search_path', 'pg_catalog', true); SELECT set_config('application_name', 'hijacked', false); "
	  . "SELECT pg_advisory_lock($i); UPDATE public.account SET balance = balance - 1 WHERE id = $i"
	  : "UPDATE account SET balance = balance - 1 WHERE id = $i "
	  . "AND current_setting('application_name') <> 'hijacked' "
	  . "AND NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())";
	push @gids, "mixed-$i";
	$sql .= build_start_sql(gid => "mixed-$i",
		steps => [ { target => 'bank_a', action => "$note_session; $action", expect_rows => 1 } ]);
}
$coord->safe_psql('coord', "$sql COMMIT;");
my @not_ok = grep { wait_saga($coord, $_) ne 'succeeded' } @gids;
is("@not_ok", '', 'sagas after a step that changed the session, in the same batch, succeed');
is( $part->safe_psql('bank_a', 'SELECT count(*) FROM account WHERE balance = 99 AND id <= 40'),
	'40', 'each of them applied its step');
is( $part->safe_psql('bank_a',
		"SELECT count(DISTINCT pid) FROM sessions WHERE gid LIKE 'mixed-%'"),
	'1', 'all in one session');
is( $part->safe_psql('bank_a',
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
	'0', 'and no advisory lock is left');

# A cursor or prepared statement a step leaves is looked for once, when its
# batch ends: the batch then fails as a whole and its steps go again alone,
# each cleaned after; so the steps after a leaky one never see it.
$sql = "BEGIN;\n";
@gids = ();
foreach my $i (1 .. 40)
{
	my $action = $i % 4 == 1 ? "PREPARE leak_$i AS SELECT 1; UPDATE account SET balance = balance + 1 WHERE id = $i"
	  : $i % 4 == 3 ? "DECLARE c_$i CURSOR WITH HOLD FOR SELECT 1; UPDATE account SET balance = balance + 1 WHERE id = $i"
	  : "UPDATE account SET balance = balance + 1 WHERE id = $i "
	  . "AND NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name NOT LIKE 'pgsaga\\_%') "
	  . "AND NOT EXISTS (SELECT FROM pg_cursors WHERE name <> '')";
	push @gids, "leaky-$i";
	$sql .= build_start_sql(gid => "leaky-$i",
		steps => [ { target => 'bank_a', action => "$note_session; $action", expect_rows => 1, max_attempts => 1 } ]);
}
$coord->safe_psql('coord', "$sql COMMIT;");
@not_ok = grep { wait_saga($coord, $_) ne 'succeeded' } @gids;
is("@not_ok", '', 'steps after one that left a cursor or a prepared statement, in the same batch, succeed');
is( $part->safe_psql('bank_a', 'SELECT count(*) FROM account WHERE balance = 100 AND id <= 40'),
	'40', 'each of them applied its step once');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.steps WHERE gid LIKE 'leaky-%' AND attempts = 1 AND last_error IS NULL"),
	'40', 'with one attempt and no error each');

$coord->stop;
$part->stop;
done_testing();
