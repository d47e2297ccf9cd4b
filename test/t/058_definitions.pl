# 058_definitions.pl: definitions (saga.define, saga.start(definition,
# args), saga.drop_definition) with real roles, real mappings and sagas in
# flight.
#
#  - alice defines a two-step transfer whose values are $1 (account) and
#    $2 (amount); alice and bob start it, each with values of their own, and
#    each saga runs as the role that started it (its ledger rows are written
#    by that role's remote user, through its user mapping).
#  - alice redefines it (version 2, which charges a fee of 1) while the
#    sagas of version 1 are running (their steps sleep): those finish with
#    version 1's statements, also their second step, which starts after the
#    redefinition; new sagas run version 2.  saga.transactions says which
#    version each ran.
#  - carol has no user mapping for bank_b, a target of the definition:
#    saga.start(definition, ...) raises 42704 and writes nothing.
#  - bob is not the owner: he can neither redefine nor drop it (42501).
#  - alice drops the definition while a saga of it runs: the saga still
#    finishes, with the version it started with; the name is gone.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my %PW = (alice => 'Pw-alice-58', bob => 'Pw-bob-58', carol => 'Pw-carol-58');

# --- the participant: each coordinator role has a remote user of its own,
# which must give its password (scram); the superuser is trusted (set-up)
my $part = new_participant('part');
create_bank($part, $_, { 1 => 100, 2 => 100 }) for qw(bank_a bank_b);
$part->safe_psql('postgres', join('', map { "CREATE ROLE ${_}_r LOGIN PASSWORD '$PW{$_}';\n" } sort keys %PW));
for my $db (qw(bank_a bank_b))
{
	$part->safe_psql($db, q{
ALTER TABLE ledger ADD COLUMN who text NOT NULL DEFAULT current_user;
GRANT SELECT, UPDATE ON account TO alice_r, bob_r, carol_r;
GRANT INSERT, SELECT ON ledger TO alice_r, bob_r, carol_r;
GRANT USAGE ON SEQUENCE ledger_seq_seq TO alice_r, bob_r, carol_r;
});
}
my $hba = $part->data_dir . '/pg_hba.conf';
open(my $fh, '>', $hba) or die "cannot write $hba: $!";
print $fh "local all all trust\n";
print $fh "host all postgres 127.0.0.1/32 trust\n";
print $fh "host all all 127.0.0.1/32 scram-sha-256\n";
close $fh;
$part->reload;

# --- the coordinator: alice and bob map to both banks, carol to bank_a only
my $coord = new_coordinator('coord');
create_coordinator_db($coord, 'coord');
add_target($coord, 'bank_a', $part, 'bank_a');
add_target($coord, 'bank_b', $part, 'bank_b');
$coord->safe_psql('coord', qq{
SET log_statement = 'none';
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN;
GRANT USAGE ON FOREIGN SERVER bank_a, bank_b TO alice, bob, carol;
CREATE USER MAPPING FOR alice SERVER bank_a OPTIONS (user 'alice_r', password '$PW{alice}');
CREATE USER MAPPING FOR alice SERVER bank_b OPTIONS (user 'alice_r', password '$PW{alice}');
CREATE USER MAPPING FOR bob SERVER bank_a OPTIONS (user 'bob_r', password '$PW{bob}');
CREATE USER MAPPING FOR bob SERVER bank_b OPTIONS (user 'bob_r', password '$PW{bob}');
CREATE USER MAPPING FOR carol SERVER bank_a OPTIONS (user 'carol_r', password '$PW{carol}');
});
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');

# Runs $sql as $role on the coordinator; (rc, stdout, stderr), verbose errors.
sub as_role
{
	my ($role, $sql) = @_;
	return psql_as($coord, 'coord', $role, $sql);
}
sub as_role_ok
{
	my ($role, $sql) = @_;
	return psql_as_ok($coord, 'coord', $role, $sql);
}

# saga.define('transfer', ...) of a debit on bank_a and a credit on bank_b,
# tagged $op, the debit being $2 + $fee, each action sleeping $sleep seconds
sub define_sql
{
	my ($op, $fee, $sleep) = @_;
	my $debit = $fee ? "-(\$2::numeric + $fee)" : '-$2::numeric';
	my $refund = $fee ? "\$2::numeric + $fee" : '$2::numeric';
	return 'SELECT saga.define(' . quote_literal('transfer') . ', ARRAY['
	  . 'saga.step(' . join(', ', map { quote_literal($_) } 'bank_a', move_sql('$1', $debit, $op, sleep => $sleep),
		move_sql('$1', $refund, "$op-comp")) . ', name => \'debit\', expect_rows => 1), '
	  . 'saga.step(' . join(', ', map { quote_literal($_) } 'bank_b', move_sql('$1', '$2::numeric', $op, sleep => $sleep),
		move_sql('$1', '-$2::numeric', "$op-comp")) . ', name => \'credit\', expect_rows => 1)])';
}

sub start_sql
{
	my ($gid, $account, $amount) = @_;
	return "SELECT saga.start('transfer', ARRAY['$account', '$amount'], gid => '$gid')";
}

# "step|op|id|delta|who" ledger lines of a saga on $db
sub ledger
{
	my ($db, $gid) = @_;
	return $part->safe_psql($db,
		"SELECT step || '|' || op || '|' || id || '|' || trim_scale(delta) || '|' || who FROM ledger WHERE gid = "
		  . quote_literal($gid) . ' ORDER BY seq');
}

# --- version 1, started by alice and by bob; its actions take 3 s each -------
is(as_role_ok('alice', define_sql('v1', 0, 3)), '1', 'alice defines transfer: version 1');
is($coord->safe_psql('coord',
	"SELECT version || ' ' || owner || ' ' || mode || ' ' || cardinality(steps) FROM saga.definitions WHERE name = 'transfer'"),
	'1 alice saga 2', 'saga.definitions lists it, owned by alice');
is(as_role_ok('alice', start_sql('v1-alice', 1, 10)), 'v1-alice', 'alice starts it with her values');
is(as_role_ok('bob', start_sql('v1-bob', 2, 20)), 'v1-bob', 'bob starts it with his');
ok(poll_until($coord, 'coord',
	"SELECT count(*) > 0 FROM saga.steps WHERE gid LIKE 'v1-%' AND step = 1 AND status = 'running'"),
	'a step of version 1 is running');

# --- version 2 while they run: a fee of 1 on the debit -----------------------
is(as_role_ok('alice', define_sql('v2', 1, 0)), '2', 'alice redefines it: version 2');
is($coord->safe_psql('coord',
	"SELECT string_agg(CASE WHEN status IN ('pending', 'running') THEN 'in flight' ELSE status END, ', ' ORDER BY gid)
	   FROM saga.transactions WHERE gid LIKE 'v1-%'"),
	'in flight, in flight', 'the sagas of version 1 were still in flight at the redefinition');
is(as_role_ok('alice', start_sql('v2-alice', 1, 5)), 'v2-alice', 'alice starts version 2');
is(as_role_ok('bob', start_sql('v2-bob', 2, 7)), 'v2-bob', 'bob starts version 2');

is(wait_saga($coord, $_), 'succeeded', "$_ succeeded") for qw(v1-alice v1-bob v2-alice v2-bob);
is($coord->safe_psql('coord',
	"SELECT string_agg(gid || ' ' || owner || ' ' || definition || ' ' || definition_version, ', ' ORDER BY gid)
	   FROM saga.transactions WHERE gid LIKE 'v_-%'"),
	'v1-alice alice transfer 1, v1-bob bob transfer 1, v2-alice alice transfer 2, v2-bob bob transfer 2',
	'saga.transactions: each saga\'s owner and the version it started with');
is($coord->safe_psql('coord',
	"SELECT bool_and(s.started_at > d.created_at) FROM saga.steps s, saga.definition d
	  WHERE s.gid LIKE 'v1-%' AND s.step = 2 AND d.name = 'transfer' AND d.version = 2"),
	't', 'the second steps of version 1 started after the redefinition');
is(ledger('bank_a', 'v1-alice') . ' / ' . ledger('bank_b', 'v1-alice'),
	'1|v1|1|-10|alice_r / 2|v1|1|10|alice_r', 'v1-alice ran version 1\'s statements, as alice_r');
is(ledger('bank_a', 'v1-bob') . ' / ' . ledger('bank_b', 'v1-bob'),
	'1|v1|2|-20|bob_r / 2|v1|2|20|bob_r', 'v1-bob ran version 1\'s statements, as bob_r');
is(ledger('bank_a', 'v2-alice') . ' / ' . ledger('bank_b', 'v2-alice'),
	'1|v2|1|-6|alice_r / 2|v2|1|5|alice_r', 'v2-alice ran version 2\'s (with the fee)');
is(ledger('bank_a', 'v2-bob') . ' / ' . ledger('bank_b', 'v2-bob'),
	'1|v2|2|-8|bob_r / 2|v2|2|7|bob_r', 'v2-bob ran version 2\'s');
is_deeply(balances($part, 'bank_a'), { 1 => 84, 2 => 72 }, 'bank_a: 10 + 5 + 1 and 20 + 7 + 1 debited');
is_deeply(balances($part, 'bank_b'), { 1 => 115, 2 => 127 }, 'bank_b: 10 + 5 and 20 + 7 credited');
is(as_role_ok('bob', "SELECT string_agg(gid || ' ' || args::text, ', ' ORDER BY gid) FROM saga.transactions"),
	'v1-bob {2,20}, v2-bob {2,7}', 'bob sees his own sagas and their values only');

# --- carol has no user mapping for bank_b ------------------------------------
my $gtx_before = $coord->safe_psql('coord',
	'SELECT (SELECT count(*) FROM saga.gtx) || \' \' || (SELECT count(*) FROM saga.gtx_step) || \' \' || (SELECT count(*) FROM saga.gtx_args)');
my ($rc, $out, $err) = as_role('carol', start_sql('carol-1', 1, 1));
isnt($rc, 0, 'carol cannot start the definition');
like($err, qr/ERROR:\s+42704: user mapping not found for user "carol", server "bank_b"/,
	'42704: no user mapping for bank_b');
is($coord->safe_psql('coord',
	'SELECT (SELECT count(*) FROM saga.gtx) || \' \' || (SELECT count(*) FROM saga.gtx_step) || \' \' || (SELECT count(*) FROM saga.gtx_args)'),
	$gtx_before, 'nothing written: no saga, step or value');
is($part->safe_psql('bank_a', "SELECT count(*) FROM ledger WHERE who = 'carol_r'"), '0',
	'nothing ran on bank_a, where carol has a mapping');

# --- bob is not the owner ----------------------------------------------------
($rc, $out, $err) = as_role('bob', "SELECT saga.define('transfer', ARRAY[saga.step('bank_a', 'SELECT 1')])");
like($err, qr/ERROR:\s+42501: must be owner of definition "transfer"/, 'bob cannot redefine it: 42501');
($rc, $out, $err) = as_role('bob', "SELECT saga.drop_definition('transfer')");
like($err, qr/ERROR:\s+42501: must be owner of definition "transfer"/, 'bob cannot drop it: 42501');
is($coord->safe_psql('coord',
	"SELECT string_agg(version || ' ' || owner, ', ' ORDER BY version) FROM saga.definitions WHERE name = 'transfer'"),
	'1 alice, 2 alice', 'both versions are still there, alice\'s');

# --- dropped while a saga of it runs -----------------------------------------
is(as_role_ok('alice', define_sql('v3', 0, 3)), '3', 'alice redefines it: version 3, slow again');
is(as_role_ok('bob', start_sql('v3-bob', 1, 3)), 'v3-bob', 'bob starts version 3');
ok(poll_until($coord, 'coord',
	"SELECT status = 'running' FROM saga.steps WHERE gid = 'v3-bob' AND step = 1"),
	'its first step is running');
as_role_ok('alice', "SELECT saga.drop_definition('transfer')");
is($coord->safe_psql('coord', "SELECT status FROM saga.transactions WHERE gid = 'v3-bob'"),
	'running', 'alice dropped the definition while the saga ran');
is($coord->safe_psql('coord', "SELECT count(*) FROM saga.definitions WHERE name = 'transfer'"),
	'0', 'every version is gone');
is(wait_saga($coord, 'v3-bob'), 'succeeded', 'the saga still finishes');
is(ledger('bank_a', 'v3-bob') . ' / ' . ledger('bank_b', 'v3-bob'),
	'1|v3|1|-3|bob_r / 2|v3|1|3|bob_r', 'with the statements of its version, as bob_r');
is($coord->safe_psql('coord',
	"SELECT definition || ' ' || definition_version FROM saga.transactions WHERE gid = 'v3-bob'"),
	'transfer 3', 'and still says which version it ran');
is_deeply(balances($part, 'bank_a'), { 1 => 81, 2 => 72 }, 'bank_a: 3 more debited');
is_deeply(balances($part, 'bank_b'), { 1 => 118, 2 => 127 }, 'bank_b: 3 more credited');
($rc, $out, $err) = as_role('bob', start_sql('v3-again', 1, 1));
like($err, qr/ERROR:\s+42704: saga definition "transfer" does not exist/,
	'starting it again: 42704');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'), '',
	'no step applied twice');

$coord->stop;
$part->stop;
done_testing();
