# 043_security.pl: security with real sagas, real authentication and
# hostile input.
#
#  - a plain role (not superuser, not saga_admin) cannot see, abort, retry
#    or purge another role's sagas;
#  - nor run a step on a target without a usable user mapping of its own
#    (none, or one dropped after add_step);
#  - nor reach a participant without giving the password of its mapping, by
#    any of the ways that would use the coordinator's own credentials: trust
#    authentication on the participant, peer authentication over the Unix
#    socket, a .pgpass file of the OS user running the coordinator
#    (PGPASSFILE of the coordinator's server, a temporary file): each such
#    step fails with SQLSTATE 2F003 (or 28P01 when a wrong password is
#    given: .pgpass is not consulted then) and the saga applies nothing;
#  - no view, error text or log line (coordinator and participant) shows a
#    password of a user mapping;
#  - gids, step names and SQL with quotes, semicolons, $$, backslashes,
#    unicode, and a 1 MB action are stored and run exactly as given, in saga
#    and xa mode (prepared-transaction names do not carry the gid): nothing
#    is injected into the remote session;
#  - least privilege: has_table_privilege / has_function_privilege and
#    friends for a plain role; barrier records of another remote role are
#    invisible and cannot be deleted.
use strict;
use warnings;

use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my $PW_ALICE = 'Pw-alice-4711';
my $PW_GUESS = 'Pw-guess-1234';
my $PW_SUPER = 'Pw-super-0815';

# --- the participant: trust for bank_t, scram for the rest over TCP, peer
# over its Unix socket
my $part = new_participant('part');
create_bank($part, 'bank_a', { 1 => 100, 2 => 100 });
create_bank($part, 'bank_t', { 1 => 100, 2 => 100 });
$part->safe_psql('postgres', qq{
SET log_statement = 'none';
ALTER ROLE postgres PASSWORD '$PW_SUPER';
CREATE ROLE alice_r LOGIN PASSWORD '$PW_ALICE';
});
for my $db ('bank_a', 'bank_t')
{
	$part->safe_psql($db, q{
GRANT SELECT, UPDATE ON account TO alice_r;
GRANT INSERT, SELECT ON ledger TO alice_r;
GRANT USAGE ON SEQUENCE ledger_seq_seq TO alice_r;
CREATE TABLE notes (gid text, step int, name text, body text);
});
}
my $hba = $part->data_dir . '/pg_hba.conf';
open(my $fh, '>', $hba) or die "cannot write $hba: $!";
print $fh "local all all peer\n";
print $fh "host bank_t all 127.0.0.1/32 trust\n";
print $fh "host all all 127.0.0.1/32 scram-sha-256\n";
close $fh;
$part->reload;
my $pport = $part->port;
my $psock = $part->host;

# --- the coordinator, whose server has a .pgpass with the participant's
# superuser password
my $pgpass_dir = tempdir(CLEANUP => 1);
my $pgpass = "$pgpass_dir/pgpass";
open($fh, '>', $pgpass) or die "cannot write $pgpass: $!";
print $fh "127.0.0.1:$pport:*:postgres:$PW_SUPER\n";
close $fh;
chmod 0600, $pgpass;
my $coord;
{
	local $ENV{PGPASSFILE} = $pgpass;
	$coord = new_coordinator('coord');
}
create_coordinator_db($coord, 'coord');

sub server
{
	my ($name, $host, $db) = @_;
	$coord->safe_psql('coord',
		"CREATE SERVER $name FOREIGN DATA WRAPPER pg_saga OPTIONS (host '$host', port '$pport', dbname '$db')");
}
server('sec_scram', '127.0.0.1', 'bank_a');     # asks for a password
server('sec_trust', '127.0.0.1', 'bank_t');     # trusts everyone
server('sec_peer', $psock, 'bank_a');           # peer: the coordinator's OS user
server('sec_pgpass', '127.0.0.1', 'bank_a');    # asks; the coordinator's .pgpass knows
server('sec_public', '127.0.0.1', 'bank_a');    # only a PUBLIC mapping

# superuser mappings need no password; the one of sec_pgpass works only
# through the coordinator's .pgpass
$coord->safe_psql('coord', qq{
SET log_statement = 'none';
CREATE USER MAPPING FOR postgres SERVER sec_peer OPTIONS (user 'postgres');
CREATE USER MAPPING FOR postgres SERVER sec_trust OPTIONS (user 'postgres');
CREATE USER MAPPING FOR postgres SERVER sec_pgpass OPTIONS (user 'postgres');
CREATE USER MAPPING FOR PUBLIC SERVER sec_public OPTIONS (user 'postgres');
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
GRANT USAGE ON FOREIGN SERVER sec_scram, sec_trust, sec_peer, sec_pgpass, sec_public TO alice, bob;
CREATE USER MAPPING FOR alice SERVER sec_scram OPTIONS (user 'alice_r', password '$PW_ALICE');
CREATE USER MAPPING FOR alice SERVER sec_trust OPTIONS (user 'alice_r', password '$PW_ALICE');
CREATE USER MAPPING FOR alice SERVER sec_peer OPTIONS (user 'postgres', password '$PW_GUESS');
CREATE USER MAPPING FOR alice SERVER sec_pgpass OPTIONS (user 'postgres', password '$PW_GUESS');
});
$coord->safe_psql('coord', "SELECT saga.setup_participant('sec_peer')");
$coord->safe_psql('coord', "SELECT saga.setup_participant('sec_trust')");
is($coord->safe_psql('coord', "SELECT saga.setup_participant('sec_pgpass')"), '',
	'the coordinator\'s .pgpass works for a superuser mapping without password');

my @errors;    # every error text a user saw

# Runs $sql as $role; returns (rc, stdout, stderr) with verbose errors.
sub as_role
{
	my ($role, $sql) = @_;
	return psql_as($coord, 'coord', $role, $sql, errors => \@errors);
}
sub as_role_ok
{
	my ($role, $sql) = @_;
	return psql_as_ok($coord, 'coord', $role, $sql, errors => \@errors);
}

sub submit_as
{
	my ($role, %args) = @_;
	as_role_ok($role, "BEGIN;\n" . build_saga_sql(%args)
		  . 'SELECT saga.submit(' . quote_literal($args{gid}) . ");\nCOMMIT;");
	return $args{gid};
}

sub two_steps
{
	my ($target, $id) = @_;
	return [
		{ target => $target, action => move_sql($id, -7), compensation => move_sql($id, 7, 'compensation'),
		  expect_rows => 1 },
		{ target => $target, action => move_sql($id, 7), compensation => move_sql($id, -7, 'compensation'),
		  expect_rows => 1, after => [] } ];
}

# step rows of a saga whose steps were refused with one of $codes: both
# steps (run concurrently) failed, or the second one skipped
sub refused
{
	my ($codes) = @_;
	return qr/^1\|failed\|(?:$codes)\n2\|(?:failed\|(?:$codes)|skipped\|)$/;
}

# nothing of the saga on bank $db: no ledger row, no barrier record
sub applied_nothing
{
	my ($db, $gid, $what) = @_;
	is($part->safe_psql($db, 'SELECT count(*) FROM ledger WHERE gid = ' . quote_literal($gid))
		  . '/' . $part->safe_psql($db, 'SELECT count(*) FROM saga_participant.barrier WHERE gid = ' . quote_literal($gid)),
		'0/0', "$what: nothing applied, no barrier record");
}

# --- a plain role with a password that the participant checks: works ------
my $gid = submit_as('alice', gid => 'alice-ok', steps => two_steps('sec_scram', 1));
is(wait_saga($coord, $gid), 'succeeded', 'alice\'s saga with password authentication succeeds');
is($part->safe_psql('bank_a', "SELECT count(*) FROM ledger WHERE gid = 'alice-ok'"), '2',
	'and applied both steps');

# --- the ways around the password, each refused with 2F003 -----------------
$gid = submit_as('alice', gid => 'alice-trust', steps => two_steps('sec_trust', 1));
is(wait_saga($coord, $gid), 'aborted', 'trust authentication: the saga rolls back');
like(step_rows($coord, $gid, 'step, status, last_sqlstate'), refused('2F003'),
	'trust authentication: the steps refused with 2F003');
applied_nothing('bank_t', $gid, 'trust authentication');
is_deeply(balances($part, 'bank_t'), { 1 => 100, 2 => 100 }, 'bank_t unchanged');

$gid = submit_as('alice', gid => 'alice-peer', steps => two_steps('sec_peer', 2));
is(wait_saga($coord, $gid), 'aborted', 'peer authentication over the socket: the saga rolls back');
like(step_rows($coord, $gid, 'step, status, last_sqlstate'), refused('2F003'),
	'peer authentication: the steps refused with 2F003');
applied_nothing('bank_a', $gid, 'peer authentication');

# a wrong password is not replaced by the .pgpass one
$gid = submit_as('alice', gid => 'alice-pgpass-wrong', steps => two_steps('sec_pgpass', 2));
is(wait_saga($coord, $gid), 'aborted', 'a wrong password with a .pgpass around: the saga rolls back');
like(step_rows($coord, $gid, 'step, status, last_sqlstate'), refused('28P01'),
	'the wrong password is refused by the participant: .pgpass not used');
like(step_rows($coord, $gid, 'last_error'), qr/password authentication failed/,
	'the error says so');
like(step_rows($coord, $gid, 'attempts'), qr/^1\n[01]$/,
	'a refused login is not retried: one attempt per step at most');
applied_nothing('bank_a', $gid, 'wrong password');

# an empty password, set by the owner after add_step, would let libpq read
# the .pgpass: refused when the step runs
as_role_ok('alice', "BEGIN;\n" . build_saga_sql(gid => 'alice-pgpass-empty', steps => two_steps('sec_pgpass', 2)) . 'COMMIT;');
as_role_ok('alice', q{ALTER USER MAPPING FOR alice SERVER sec_pgpass OPTIONS (SET password '')});
as_role_ok('alice', q{SELECT saga.submit('alice-pgpass-empty')});
is(wait_saga($coord, 'alice-pgpass-empty'), 'aborted', 'an empty password (.pgpass): the saga rolls back');
like(step_rows($coord, 'alice-pgpass-empty', 'step, status, last_sqlstate'), refused('2F003'),
	'an empty password: the steps refused with 2F003');
applied_nothing('bank_a', 'alice-pgpass-empty', 'empty password');

# and add_step refuses such mappings up front
my ($rc, $out, $err) = as_role('alice', q{SELECT saga.begin('alice-nopw'); SELECT saga.add_step('alice-nopw', 'sec_pgpass', 'SELECT 1')});
like($err, qr/2F003/, 'add_step: a mapping with an empty password raises 2F003');
as_role_ok('alice', q{ALTER USER MAPPING FOR alice SERVER sec_pgpass OPTIONS (DROP password)});
($rc, $out, $err) = as_role('alice', q{SELECT saga.add_step('alice-nopw', 'sec_pgpass', 'SELECT 1')});
like($err, qr/2F003/, 'add_step: a mapping without a password raises 2F003');
($rc, $out, $err) = as_role('alice', q{SELECT saga.add_step('alice-nopw', 'sec_public', 'SELECT 1')});
like($err, qr/2F003/, 'add_step: a PUBLIC mapping without a password raises 2F003');

# --- a usable user mapping of one's own ------------------------------------
($rc, $out, $err) = as_role('bob', q{SELECT saga.begin('bob-1'); SELECT saga.add_step('bob-1', 'sec_scram', 'SELECT 1')});
like($err, qr/42704.*user mapping not found/s,
	'bob has USAGE but no mapping: add_step raises 42704 (alice\'s mapping is not his)');
$coord->safe_psql('coord', qq{SET log_statement = 'none';
CREATE USER MAPPING FOR bob SERVER sec_scram OPTIONS (user 'alice_r', password '$PW_ALICE')});
as_role_ok('bob', "BEGIN;\n" . build_saga_sql(gid => 'bob-dropped', steps => two_steps('sec_scram', 2)) . 'COMMIT;');
as_role_ok('bob', 'DROP USER MAPPING FOR bob SERVER sec_scram');
as_role_ok('bob', q{SELECT saga.submit('bob-dropped')});
is(wait_saga($coord, 'bob-dropped'), 'aborted', 'mapping dropped after add_step: the saga rolls back');
like(step_rows($coord, 'bob-dropped', 'step, status, last_sqlstate'), refused('42704'),
	'its steps fail with 42704');
applied_nothing('bank_a', 'bob-dropped', 'mapping dropped');

# --- other roles' sagas ------------------------------------------------------
# alice: one failed saga (its compensation fails) and one running (slow)
$gid = submit_as('alice', gid => 'alice-failed', steps => [
	{ target => 'sec_scram', action => move_sql(1, -1), compensation => 'SELECT 1/0' },
	{ target => 'sec_scram', action => move_sql(99, 1), expect_rows => 1 } ]);
is(wait_saga($coord, $gid), 'failed', 'alice has a failed saga');
$gid = submit_as('alice', gid => 'alice-slow', steps => [
	{ target => 'sec_scram', action => move_sql(1, -1, 'action', sleep => 3),
	  compensation => move_sql(1, 1, 'compensation') } ]);
is( as_role_ok('bob', q{
SELECT (SELECT count(*) FROM saga.transactions WHERE gid LIKE 'alice-%')
	 + (SELECT count(*) FROM saga.steps WHERE gid LIKE 'alice-%')
	 + (SELECT count(*) FROM saga.history WHERE gid LIKE 'alice-%')
	 + (SELECT count(*) FROM saga.gtx WHERE gid LIKE 'alice-%')}),
	'0', 'bob sees none of alice\'s sagas, steps or history');
for my $call ("saga.status('alice-ok')", "saga.wait('alice-ok', '0 s')", "saga.abort('alice-slow')",
	"saga.retry('alice-failed')", "saga.add_step('alice-slow', 'sec_scram', 'SELECT 1')",
	"saga.submit('alice-slow')")
{
	($rc, $out, $err) = as_role('bob', "SELECT $call");
	like($err, qr/42704/, "bob: $call raises 42704 (unknown)");
}
is(as_role_ok('bob', q{SELECT saga.purge('0 seconds')}), '1',
	'bob\'s purge deletes his own finished saga only');
is($coord->safe_psql('coord', q{SELECT string_agg(gid, ',' ORDER BY gid) FROM saga.gtx WHERE gid LIKE 'bob-%'}),
	'bob-1', 'the one that was aborted (his building one stays)');
is(wait_saga($coord, 'alice-slow'), 'succeeded', 'bob\'s abort did not touch alice\'s running saga');
is(saga_status($coord, 'alice-failed'), 'failed', 'nor his retry her failed one');
is($coord->safe_psql('coord', "SELECT count(*) FROM saga.gtx WHERE gid LIKE 'alice-%'"), '8',
	'nor his purge her finished ones');

# --- no password anywhere ----------------------------------------------------
my $views = $coord->safe_psql('coord', q{
SELECT string_agg(r, ' ') FROM (
	SELECT row_to_json(t)::text AS r FROM saga.transactions t
	UNION ALL SELECT row_to_json(s)::text FROM saga.steps s
	UNION ALL SELECT row_to_json(h)::text FROM saga.history h
	UNION ALL SELECT row_to_json(x)::text FROM saga.stats x) v});
my $coord_log = slurp_file($coord->logfile);
my $part_log = slurp_file($part->logfile);
my $texts = join("\n", @errors);
for my $pw ($PW_ALICE, $PW_GUESS, $PW_SUPER)
{
	unlike($views, qr/\Q$pw\E/, "no view shows password $pw");
	unlike($texts, qr/\Q$pw\E/, "no error text shows password $pw");
	unlike($coord_log, qr/\Q$pw\E/, "the coordinator's log does not show password $pw");
	unlike($part_log, qr/\Q$pw\E/, "the participant's log does not show password $pw");
}

# --- hostile text -------------------------------------------------------------
my $odd = q{it's "odd"; DROP TABLE account; -- $$ $q$ \ \\' x', true); SELECT 1/0; -- é ☃ 🚀};
my $name = q{step 'one'; DROP TABLE ledger; --"$$\\};
my $body = q{semi;colon 'quote' "dq" $$dollar$$ $q$ E'\x41' \\ back\slash é ☃ 🚀};
my $note_sql = 'INSERT INTO notes (gid, step, name, body) VALUES '
  . "(current_setting('saga.gid'), current_setting('saga.step')::int, "
  . quote_literal($name) . ', ' . quote_literal($body) . ')';
my %hostile = (
	"$odd saga" => 'saga',
	"$odd xa" => 'xa',
	"$odd xa fails" => 'xa',
	('é' x 128) => 'xa');
foreach my $g (sort keys %hostile)
{
	my $fails = $g =~ /fails$/;
	submit_saga($coord, gid => $g, mode => $hostile{$g}, steps => [
		{ target => 'sec_peer', name => $name, action => $note_sql,
		  $hostile{$g} eq 'saga' ? (compensation => 'DELETE FROM notes WHERE gid = current_setting(\'saga.gid\')') : () },
		{ target => 'sec_peer', action => $fails ? move_sql(99, 1) : move_sql(1, 0), expect_rows => 1 } ]);
}
foreach my $g (sort keys %hostile)
{
	my $fails = $g =~ /fails$/;
	my $what = $hostile{$g} . ' mode, gid of ' . length($g) . ' bytes' . ($fails ? ', failing' : '');
	is(wait_saga($coord, $g), $fails ? 'aborted' : 'succeeded', "hostile gid ($what): final");
	is($coord->safe_psql('coord', 'SELECT name FROM saga.steps WHERE step = 1 AND gid = ' . quote_literal($g)),
		$name, "hostile gid ($what): step name stored as given");
	is($part->safe_psql('bank_a', 'SELECT count(*) FILTER (WHERE name = ' . quote_literal($name)
		  . ' AND body = ' . quote_literal($body) . ' AND step = 1), count(*) FROM notes WHERE gid = '
		  . quote_literal($g)),
		$fails ? '0|0' : '1|1', "hostile gid ($what): the step ran with gid, name and text exactly as given");
	is($part->safe_psql('bank_a', 'SELECT count(*) FROM saga_participant.barrier WHERE gid = ' . quote_literal($g)),
		$fails ? '0' : '2', "hostile gid ($what): barrier records under the exact gid");
}
is($part->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'no prepared transaction left by the xa sagas with hostile gids');
like($part->safe_psql('bank_a', q{SELECT count(*) FROM account}), qr/^2$/,
	'nothing was injected: account still there');
is($part->safe_psql('bank_a', q{SELECT count(*) FROM ledger WHERE op = 'action' AND id = 1 AND delta = 0}), '3',
	'nothing was injected: ledger still there, with the steps that ran');

# a 1 MB action
my $big = 'x' x (1024 * 1024);
$gid = submit_saga($coord, gid => 'big-1', steps => [
	{ target => 'sec_peer',
	  action => "INSERT INTO notes (gid, step, body) VALUES (current_setting('saga.gid'), 1, '$big')" } ]);
is(wait_saga($coord, $gid), 'succeeded', 'a 1 MB action succeeds');
is($part->safe_psql('bank_a', "SELECT length(body) FROM notes WHERE gid = 'big-1'"), 1024 * 1024,
	'and inserted its 1 MB text');

# --- least privilege -------------------------------------------------------------
my @checks = (
	# [query as superuser about role bob, expected]
	[ q{SELECT string_agg(t || ':' || p, ',' ORDER BY t, p) FROM unnest(ARRAY['saga.gtx', 'saga.gtx_step', 'saga.gtx_event', 'saga.coordinator', 'saga.transactions', 'saga.steps', 'saga.history', 'saga.stats']) t,
	          unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
	    WHERE has_table_privilege('bob', t, p)}, '', 'no table or view is writable by a plain role' ],
	[ q{SELECT string_agg(t, ',' ORDER BY t) FROM unnest(ARRAY['saga.gtx', 'saga.gtx_step', 'saga.gtx_event', 'saga.transactions', 'saga.steps', 'saga.history', 'saga.stats']) t
	    WHERE NOT has_table_privilege('bob', t, 'SELECT')}, '', 'the tables and views are readable (filtered by row-level security)' ],
	[ q{SELECT has_table_privilege('bob', 'saga.coordinator', 'SELECT')}, 'f', 'saga.coordinator is not readable' ],
	[ q{SELECT string_agg(c.relname, ',') FROM pg_class c WHERE c.relnamespace = 'saga'::regnamespace AND c.relkind = 'S'
	    AND (has_sequence_privilege('bob', c.oid, 'USAGE') OR has_sequence_privilege('bob', c.oid, 'UPDATE'))}, '', 'no sequence is usable' ],
	[ q{SELECT string_agg(c.relname, ',') FROM pg_class c WHERE c.relnamespace = 'saga'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
	    AND has_table_privilege('bob', c.oid, 'SELECT')}, '', 'every readable table has row-level security' ],
	[ q{SELECT string_agg(f, ',' ORDER BY f) FROM unnest(ARRAY['saga.begin(text, text, interval, jsonb, text[])', 'saga.add_step(text, text, text, text, text, text, text[], bigint, int, interval)',
	      'saga.submit(text)', 'saga.wait(text, interval)', 'saga.status(text)', 'saga.abort(text, text)', 'saga.retry(text)', 'saga.purge(interval)', 'saga.setup_participant(text, text[])']) f
	    WHERE NOT has_function_privilege('bob', f, 'EXECUTE')}, '', 'the SQL functions are executable by every role' ],
	[ q{SELECT has_function_privilege('bob', 'saga._start_worker()', 'EXECUTE')}, 'f', 'saga._start_worker() is not' ],
	[ q{SELECT has_function_privilege('bob', 'saga._stamp_submit()', 'EXECUTE')}, 'f', 'saga._stamp_submit() is not' ],
	[ q{SELECT has_function_privilege('bob', 'saga._gtx_deleted()', 'EXECUTE') OR has_function_privilege('bob', 'saga._gtx_truncated()', 'EXECUTE')},
	  'f', 'nor are the cascading trigger functions' ],
	[ q{SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE pronamespace = 'saga'::regnamespace AND prosecdef},
	  '_gtx_deleted,_gtx_truncated,_stamp_submit', 'the only SECURITY DEFINER functions are the trigger functions' ],
	[ q{SELECT has_foreign_data_wrapper_privilege('bob', 'pg_saga', 'USAGE')}, 'f', 'a plain role cannot create pg_saga servers' ],
	[ q{SELECT has_schema_privilege('bob', 'saga', 'CREATE')}, 'f', 'nor objects in schema saga' ],
	[ q{SELECT pg_has_role('bob', 'saga_admin', 'MEMBER')}, 'f', 'bob is not a member of saga_admin' ]);
foreach my $c (@checks)
{
	is($coord->safe_psql('coord', $c->[0]), $c->[1], "least privilege: $c->[2]");
}

# barrier records of another remote role: invisible, not deletable
my $as_alice_r = "host=127.0.0.1 port=$pport dbname=bank_a user=alice_r password=$PW_ALICE";
my $mine = $part->safe_psql('bank_a', q{SELECT count(*) FROM saga_participant.barrier WHERE owner = 'alice_r'});
cmp_ok($mine, '>', 0, 'alice_r has barrier records on bank_a');
is($part->safe_psql('bank_a', q{SELECT count(*) FROM saga_participant.barrier}, connstr => $as_alice_r),
	$mine, 'alice_r sees only her own barrier records');
my $others = $part->safe_psql('bank_a', q{SELECT count(*) FROM saga_participant.barrier WHERE owner <> 'alice_r'});
$part->safe_psql('bank_a', q{DELETE FROM saga_participant.barrier WHERE owner <> 'alice_r'}, connstr => $as_alice_r);
is($part->safe_psql('bank_a', q{SELECT count(*) FROM saga_participant.barrier WHERE owner <> 'alice_r'}),
	$others, 'alice_r cannot delete the records of postgres');
($rc, $out, $err) = $part->psql('bank_a',
	q{INSERT INTO saga_participant.barrier (coordinator, owner, gid, step, op, origin) VALUES ('x', 'postgres', 'forged', 1, 'action', 'action')},
	connstr => $as_alice_r);
like($err, qr/row-level security/, 'nor forge a record in the name of postgres');

# --- installation and set-up misuse ------------------------------------------
($rc, $out, $err) = $part->psql('postgres', "\\set VERBOSITY verbose\nCREATE EXTENSION pg_saga");
like($err, qr/55000: pg_saga must be loaded via shared_preload_libraries/,
	'CREATE EXTENSION without shared_preload_libraries raises 55000');
$coord->safe_psql('postgres', 'GRANT CREATE ON DATABASE postgres TO bob');
($rc, $out, $err) = $coord->psql('postgres', "\\set VERBOSITY verbose\nCREATE EXTENSION pg_saga",
	connstr => $coord->connstr('postgres') . ' user=bob');
like($err, qr/42501: permission denied to create extension "pg_saga"/,
	'CREATE EXTENSION by a plain role raises 42501');
($rc, $out, $err) = as_role('alice', q{SELECT saga.setup_participant('sec_scram')});
like($err, qr/42501: target "sec_scram" reported an error: permission denied for database bank_a/,
	'setup_participant by a role that may not create the schema there: the remote 42501');
($rc, $out, $err) = as_role('alice', q{SELECT saga.setup_participant('sec_trust')});
like($err, qr/2F003: password is required/,
	'setup_participant through trust authentication by a plain role: 2F003');

unlink $pgpass;
$coord->stop;
$part->stop;
done_testing();
