# 059_restore_owners.pl: owners survive pg_dump and pg_restore into another
# cluster, by role name.
#
# Two roles, alice and bob, each with a definition, sagas of it with values
# (one finished, one purged, one left unfinished because the participant is
# down at dump time) and a user mapping of their own.  The database is
# dumped and restored into a new cluster where the roles have other OIDs:
# bob is created before alice there, and an extra role, mallory, is created
# first with exactly the OID bob had on the first cluster.  Kept as OIDs,
# the owners would point to the wrong roles after the restore (bob's sagas
# and values would be mallory's, alice's nobody's, and alice could not
# redefine her definition); kept by name (regrole), after the restore:
#  - saga.definitions.owner, saga.transactions.owner and the owners of the
#    queued barrier records to forget are the right names;
#  - each role sees its own sagas and their values only, mallory none;
#  - the owner of a definition redefines it; another role cannot (42501);
#  - the unfinished sagas complete once the participant is back, each with
#    its owner's user mapping (the participant records the remote role).
# A restore into a cluster where one of the owners' roles is missing fails,
# naming the role (as for the owner of any other object), and gives nothing
# of that role's to another.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my %PW = (alice => 'Pw-alice-5901', bob => 'Pw-bob-5902');

# --- the participant: scram for alice_r and bob_r over TCP, trust for the
# rest (the superuser's mapping that sets up the barrier)
my $part = new_participant('part');
create_bank($part, 'bank_a', { 1 => 100 });
$part->safe_psql('postgres', qq{
SET log_statement = 'none';
CREATE ROLE alice_r LOGIN PASSWORD '$PW{alice}';
CREATE ROLE bob_r LOGIN PASSWORD '$PW{bob}';
});
$part->safe_psql('bank_a', q{
CREATE TABLE notes (gid text NOT NULL, who name NOT NULL, v text);
GRANT INSERT, SELECT ON notes TO alice_r, bob_r;
});
my $hba = $part->data_dir . '/pg_hba.conf';
open(my $fh, '>', $hba) or die "cannot write $hba: $!";
print $fh "local all all trust\n";
print $fh "host all alice_r,bob_r 127.0.0.1/32 scram-sha-256\n";
print $fh "host all all 127.0.0.1/32 trust\n";
close $fh;
$part->reload;

# --- the first coordinator: alice, then bob, each with a mapping ------------
my $coord = new_coordinator('coord');
create_coordinator_db($coord, 'coord');
add_target($coord, 'bank_a', $part, 'bank_a');
$coord->safe_psql('coord', qq{
SET log_statement = 'none';
CREATE ROLE alice;
CREATE ROLE bob;
GRANT USAGE ON FOREIGN SERVER bank_a TO alice, bob;
CREATE USER MAPPING FOR alice SERVER bank_a OPTIONS (user 'alice_r', password '$PW{alice}');
CREATE USER MAPPING FOR bob SERVER bank_a OPTIONS (user 'bob_r', password '$PW{bob}');
});
my %old_oid = map { $_ => $coord->safe_psql('coord', "SELECT oid FROM pg_roles WHERE rolname = '$_'") }
  qw(alice bob);

# A step noting the saga, the remote role it runs as, and its value $1.
sub define_sql
{
	my ($name, $tag) = @_;
	return "SELECT saga.define('$name', ARRAY[saga.step('bank_a', "
	  . quote_literal("INSERT INTO notes VALUES (current_setting('saga.gid'), current_user, '$tag ' || \$1)")
	  . ", name => 'note', max_attempts => 100000)])";
}

sub as_role
{
	my ($node, $db, $role, $sql) = @_;
	return $node->safe_psql($db, "SET ROLE $role; $sql");
}

sub start_sql
{
	my ($def, $value, $gid) = @_;
	return "SELECT saga.start('$def', ARRAY['$value'], gid => '$gid')";
}

for my $who (qw(alice bob))
{
	is(as_role($coord, 'coord', $who, define_sql("${who}_def", "$who-v1")), '1',
		"$who defines ${who}_def");
	as_role($coord, 'coord', $who, start_sql("${who}_def", "$who-purged", "$who-purged"));
	is(wait_saga($coord, "$who-purged"), 'succeeded', "a saga of $who finished");
}
is($coord->safe_psql('coord', "SET saga.forget_delay = '1h'; SELECT saga.purge('0')"),
	'2', 'both were purged: their barrier records wait to be forgotten');
for my $who (qw(alice bob))
{
	as_role($coord, 'coord', $who, start_sql("${who}_def", "$who-done", "$who-done"));
	is(wait_saga($coord, "$who-done"), 'succeeded', "another saga of $who finished");
}

# --- sagas left unfinished: the participant is down ----------------------------
$part->stop;
for my $who (qw(alice bob))
{
	as_role($coord, 'coord', $who, start_sql("${who}_def", "$who-secret", "$who-pending"));
	ok( poll_until(
			$coord, 'coord',
			"SELECT attempts >= 2 FROM saga.steps WHERE gid = '$who-pending'"),
		"the saga of $who retries while the participant is down");
}

my $owners_image = q{
	SELECT (SELECT string_agg(name || ' ' || version || ' ' || owner, ', ' ORDER BY name, version)
			  FROM saga.definitions)
		|| ' / ' ||
		   (SELECT string_agg(gid || ' ' || owner, ', ' ORDER BY gid) FROM saga.transactions)
		|| ' / ' ||
		   (SELECT string_agg(pg_get_userbyid(owner)::text, ', ' ORDER BY pg_get_userbyid(owner)::text) FROM saga.barrier_forget)};
my $owners = 'alice_def 1 alice, bob_def 1 bob / '
  . 'alice-done alice, alice-pending alice, bob-done bob, bob-pending bob / alice, bob';
is($coord->safe_psql('coord', $owners_image), $owners, 'the owners before the dump');

my $dump = $PostgreSQL::Test::Utils::tmp_check . '/coord.dump';
$coord->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', 'coord' ],
	'pg_dump -Fc of the coordinator database');
$coord->stop;

# --- a new cluster: mallory first, with bob's old OID; then bob, then alice ----
my $coord2 = new_coordinator('coord2');
$coord2->safe_psql('postgres', 'CREATE DATABASE moved');
# Spend OIDs until the next one is bob's old OID.  Nothing else allocates
# OIDs in this fresh cluster meanwhile (no pg_saga database yet).
$coord2->safe_psql('postgres', qq{
DO \$\$
DECLARE
	o oid;
BEGIN
	LOOP
		CREATE ROLE filler;
		SELECT oid INTO o FROM pg_roles WHERE rolname = 'filler';
		DROP ROLE filler;
		EXIT WHEN o >= $old_oid{bob} - 1;
	END LOOP;
END
\$\$;
CREATE ROLE mallory;
CREATE ROLE bob;
CREATE ROLE alice;
});
my %new_oid = map { $_ => $coord2->safe_psql('postgres', "SELECT oid FROM pg_roles WHERE rolname = '$_'") }
  qw(alice bob mallory);
is($new_oid{mallory}, $old_oid{bob}, 'mallory has the OID bob had on the first cluster');
ok($new_oid{alice} != $old_oid{alice} && $new_oid{bob} != $old_oid{bob},
	'alice and bob have other OIDs than on the first cluster');

my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ 'pg_restore', '-d', $coord2->connstr('moved'), '--no-password', $dump ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'pg_restore succeeded') or diag $stderr;
is($stderr, '', 'pg_restore reported nothing');

is($coord2->safe_psql('moved', $owners_image), $owners,
	'definitions, sagas and barrier records to forget keep their owners by name');
is( $coord2->safe_psql('moved',
		"SELECT string_agg(DISTINCT owner::oid::text, ' ') FROM saga.gtx WHERE gid LIKE 'alice-%'"),
	$new_oid{alice}, 'the restored sagas of alice are owned by alice\'s OID here');

# --- each role sees its own sagas and values, and only those ---------------------
my $seen = q{SELECT coalesce(string_agg(gid || ' ' || coalesce(args::text, '-'), ', ' ORDER BY gid), 'none')
			   || ' / ' || (SELECT count(*) FROM saga.gtx_args) FROM saga.transactions};
is(as_role($coord2, 'moved', 'alice', $seen), 'alice-done {alice-done}, alice-pending {alice-secret} / 2',
	'alice sees her sagas and their values only');
is(as_role($coord2, 'moved', 'bob', $seen), 'bob-done {bob-done}, bob-pending {bob-secret} / 2',
	'bob sees his sagas and their values only');
is(as_role($coord2, 'moved', 'mallory', $seen), 'none / 0',
	'mallory, who has bob\'s old OID, sees no saga and no value');
my ($rc, $out, $err) = $coord2->psql('moved', "SET ROLE mallory; SELECT saga.abort('bob-pending')");
like($err, qr/does not exist/, 'nor can she abort one of bob\'s');

# --- only the owner redefines ------------------------------------------------------
is(as_role($coord2, 'moved', 'alice', define_sql('alice_def', 'alice-v2')), '2',
	'alice redefines alice_def');
for my $other (qw(bob mallory))
{
	($rc, $out, $err) = $coord2->psql('moved',
		"SET ROLE $other; "
		  . "\\set VERBOSITY verbose\n" . define_sql('alice_def', 'forged'));
	like($err, qr/42501.*must be owner of definition "alice_def"/, "$other cannot redefine alice_def (42501)");
}
($rc, $out, $err) = $coord2->psql('moved',
	"SET ROLE mallory; \\set VERBOSITY verbose\nSELECT saga.drop_definition('bob_def')");
like($err, qr/42501/, 'mallory cannot drop bob_def (42501)');
is(as_role($coord2, 'moved', 'bob', define_sql('bob_def', 'bob-v2')), '2', 'bob redefines bob_def');
is( $coord2->safe_psql('moved',
		"SELECT string_agg(name || ' ' || version || ' ' || owner, ', ' ORDER BY name, version) FROM saga.definitions"),
	'alice_def 1 alice, alice_def 2 alice, bob_def 1 bob, bob_def 2 bob', 'the definitions after that');

# --- the participant is back: the unfinished sagas run with their owners' mappings
ok(wait_for_worker($coord2, 'moved'), 'a worker runs for the restored database');
$part->start;
for my $who (qw(alice bob))
{
	is(wait_saga($coord2, "$who-pending", 90, 'moved'), 'succeeded',
		"the unfinished saga of $who completes after the restore")
	  or diag $coord2->safe_psql('moved',
		"SELECT string_agg(step || ' ' || status || ' ' || coalesce(last_sqlstate, '') || ' '
						   || coalesce(last_error, ''), '; ') FROM saga.steps WHERE gid = '$who-pending'");
}
is( $part->safe_psql('bank_a',
		"SELECT string_agg(gid || ' ' || who || ' ' || v, ', ' ORDER BY gid) FROM notes WHERE gid LIKE '%-pending'"),
	'alice-pending alice_r alice-v1 alice-secret, bob-pending bob_r bob-v1 bob-secret',
	'each ran once, as its owner\'s remote role, with its values and version');

# New sagas of the restored definitions run as their starter.
as_role($coord2, 'moved', 'alice', start_sql('alice_def', 'alice-new', 'alice-new'));
is(wait_saga($coord2, 'alice-new', 90, 'moved'), 'succeeded', 'a new saga of alice succeeds');
is($part->safe_psql('bank_a', "SELECT who || ' ' || v FROM notes WHERE gid = 'alice-new'"),
	'alice_r alice-v2 alice-new', 'as alice_r, with version 2');

# --- a restore where an owner's role is missing fails, naming the role --------
# As for the owner of any other object: the DBA creates the roles first
# (pg_dumpall --roles-only) and restores again.  Nothing of the missing
# role's is handed to another one.
$coord2->safe_psql('postgres', 'ALTER ROLE bob RENAME TO bob_away; CREATE DATABASE nobob');
($stdout, $stderr) = ('', '');
$ok = IPC::Run::run([ 'pg_restore', '-d', $coord2->connstr('nobob'), '--no-password', $dump ],
	'>', \$stdout, '2>', \$stderr);
ok(!$ok, 'pg_restore into a cluster without bob fails');
like($stderr, qr/COPY failed for table "gtx": ERROR:  role "bob" does not exist/,
	'it names the missing role where the sagas are restored');
like($stderr, qr/COPY failed for table "definition": ERROR:  role "bob" does not exist/,
	'and where the definitions are');
is( $coord2->safe_psql('nobob',
		"SELECT count(*) FROM (SELECT owner FROM saga.gtx UNION ALL SELECT owner FROM saga.definition
								 UNION ALL SELECT owner FROM saga.barrier_forget) o
		  WHERE owner::text <> 'alice'"),
	'0', 'no saga, definition or barrier record is given to another role');

$coord2->stop;
$part->stop;
done_testing();
