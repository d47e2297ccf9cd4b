# 047_batched_calls.pl: steps ready at once for one target share a batch.
#
# With two connections per target, sixty two-step transfers submitted in
# one transaction are more steps than connections: the worker sends them in
# batches, each one round trip and one remote transaction on the
# participant (one saga_participant.run_steps call), each step in a
# subtransaction of its own.  Each ledger row records the remote transaction that wrote
# it, so the test sees the sharing.  Every tenth transfer's credit fails
# (the CHECK on bank_b): only its own subtransaction rolls back, barrier
# record included, its saga is compensated and every other saga of the
# same batches succeeds, each step applied once.  With saga.batch_size = 1
# every step is a remote transaction of its own; and against a participant
# whose objects predate run_steps(), steps go one by one and still succeed,
# and so they do, without a batch being tried, against one whose objects
# say (saga_participant.version()) that they predate it.
# Sixty sagas on one hot row, in concurrent batches, all succeed, each once.
# While connections are free, saga.batch_wait decides: 0 sends each step on
# a connection of its own, a generous one lets quick steps share a batch.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my $n = 60;
my %accounts = map { $_ => 100 } 1 .. $n;
my ($coord, $part) = standard_setup(accounts => \%accounts);
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.max_connections_per_target = 2;
SELECT pg_reload_conf();
});
foreach my $db ('bank_a', 'bank_b')
{
	$part->safe_psql($db,
		'ALTER TABLE ledger ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()');
}

# $n transfers of 1 from bank_a to bank_b, account $i each, in one
# transaction; the credit of every tenth one is refused by bank_b's CHECK.
sub submit_transfers
{
	my ($prefix, %opts) = @_;
	my $sql = "BEGIN;\n";
	foreach my $i (1 .. $n)
	{
		my $credit = $opts{failing} && $i % 10 == 0 ? -1000 : 1;
		$sql .= build_start_sql(
			gid => "$prefix-$i",
			steps => [
				{
					target => 'bank_a',
					action => move_sql($i, -1),
					compensation => move_sql($i, 1, 'compensation'),
					expect_rows => 1
				},
				{
					target => 'bank_b',
					action => move_sql($i, $credit),
					compensation => move_sql($i, -$credit, 'compensation'),
					expect_rows => 1
				}
			]);
	}
	$coord->safe_psql('coord', $sql . "COMMIT;\n");
	return map { "$prefix-$_" } 1 .. $n;
}

# Action rows of the sagas of $prefix on $db, and the remote transactions
# that wrote them.
sub sharing
{
	my ($db, $prefix) = @_;
	return $part->safe_psql($db,
		"SELECT count(*) || ' ' || count(DISTINCT xid) FROM ledger
		  WHERE op = 'action' AND gid LIKE '$prefix-%'");
}

# --- batched, with failures inside the batches ------------------------------
my @gids = submit_transfers('b', failing => 1);
my %want = map { ("b-$_" => ($_ % 10 == 0 ? 'aborted' : 'succeeded')) } 1 .. $n;
my %got = map { $_ => wait_saga($coord, $_) } @gids;
is_deeply(\%got, \%want, 'every tenth transfer aborted, every other one succeeded');

my ($rows, $xacts) = split / /, sharing('bank_a', 'b');
is($rows, $n, "bank_a: one debit row per saga");
cmp_ok($xacts, '<', $rows, "bank_a: the debits shared remote transactions ($xacts for $rows)");
($rows, $xacts) = split / /, sharing('bank_b', 'b');
is($rows, $n - 6, 'bank_b: a credit row for each succeeded saga only');
cmp_ok($xacts, '<', $rows, "bank_b: the credits shared remote transactions ($xacts for $rows)");

my %balance_a = map { $_ => ($_ % 10 == 0 ? 100 : 99) } 1 .. $n;
my %balance_b = map { $_ => ($_ % 10 == 0 ? 100 : 101) } 1 .. $n;
is_deeply(balances($part, 'bank_a'), \%balance_a, 'bank_a: debits kept, or compensated for the aborted');
is_deeply(balances($part, 'bank_b'), \%balance_b, 'bank_b: credits of the succeeded only');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no step applied twice');
is(barrier_rows($part, 'bank_b', 'b-10'), '',
	'the refused credit left no barrier record: its subtransaction rolled back');
is(barrier_rows($part, 'bank_b', 'b-9'), '2|action|action',
	'its neighbour in the batch kept its own');
is( $coord->safe_psql('coord',
		"SELECT string_agg(DISTINCT last_sqlstate, ',') FROM saga.steps
		  WHERE gid LIKE 'b-%' AND step = 2 AND status = 'failed'"),
	'23514', 'the refused credits report the CHECK violation');
like( $coord->safe_psql('coord',
		"SELECT last_error FROM saga.steps WHERE gid = 'b-10' AND step = 2"),
	qr/violates check constraint "account_balance_check"\nDETAIL: Failing row contains/,
	'with the DETAIL the participant gave, from inside the batch');

# --- one hot row: concurrent batches over it neither deadlock nor stall ------
# Every saga debits account 1 of bank_a; the batches on the two connections
# would wait on each other's row lock, so a step that would wait gives up
# inside its batch (lock_timeout) and is sent again alone.
my $sql = "BEGIN;\n";
foreach my $i (1 .. $n)
{
	$sql .= build_start_sql(gid => "hot-$i",
		steps => [ { target => 'bank_a', action => move_sql(1, -1), expect_rows => 1 } ]);
}
$coord->safe_psql('coord', $sql . "COMMIT;\n");
my @hot = grep { wait_saga($coord, "hot-$_") ne 'succeeded' } 1 .. $n;
is("@hot", '', 'every saga on the hot row succeeded');
is(balances($part, 'bank_a')->{1}, 99 - $n, 'each debited it once');
is( $coord->safe_psql('coord',
		"SELECT max(attempts) FROM saga.steps WHERE gid LIKE 'hot-%'"),
	'1', 'no attempt was lost to a lock wait');

# --- while connections are free: saga.batch_wait ----------------------------
# Eight connections for six one-step sagas submitted at once: with
# saga.batch_wait = 0 each step takes a free connection of its own; with a
# generous one the pool's steps, timed quick by now, share one batch.
sub submit_quick
{
	my ($prefix) = @_;
	my $sql = "BEGIN;\n";
	$sql .= build_start_sql(gid => "$prefix-$_",
		steps => [ { target => 'bank_a', action => move_sql($_, -1), expect_rows => 1 } ])
	  foreach 1 .. 6;
	$coord->safe_psql('coord', $sql . "COMMIT;\n");
	my @not_ok = grep { wait_saga($coord, "$prefix-$_") ne 'succeeded' } 1 .. 6;
	is("@not_ok", '', "$prefix: the six sagas succeeded");
	return split / /, sharing('bank_a', $prefix);
}
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.max_connections_per_target = 8;
ALTER SYSTEM SET saga.batch_wait = 0;
SELECT pg_reload_conf();
});
ok( poll_until($coord, 'coord', "SELECT current_setting('saga.batch_wait') = '0'"),
	'saga.batch_wait = 0 is read');
($rows, $xacts) = submit_quick('w0');
is("$rows $xacts", '6 6', 'with saga.batch_wait = 0 each step took a free connection of its own');
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.batch_wait = '1s';
SELECT pg_reload_conf();
});
ok( poll_until($coord, 'coord', "SELECT current_setting('saga.batch_wait') = '1s'"),
	'saga.batch_wait = 1s is read');
($rows, $xacts) = submit_quick('w1');
is($rows, 6, 'one debit row per saga');
cmp_ok($xacts, '<', $rows, "quick steps shared a batch although connections were free ($xacts for $rows)");
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM RESET saga.batch_wait;
ALTER SYSTEM SET saga.max_connections_per_target = 2;
SELECT pg_reload_conf();
});
ok( poll_until($coord, 'coord', "SELECT current_setting('saga.batch_wait') = '10ms'"),
	'saga.batch_wait back to its default');

# --- saga.batch_size = 1: every step alone ----------------------------------
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.batch_size = 1;
SELECT pg_reload_conf();
});
ok( poll_until($coord, 'coord', "SELECT current_setting('saga.batch_size') = '1'"),
	'the setting is read');
@gids = submit_transfers('s');
is(wait_saga($coord, $_), 'succeeded', "$_ succeeded") foreach ($gids[0], $gids[-1]);
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.transactions WHERE gid LIKE 's-%' AND status = 'succeeded'"),
	$n, 'all of them succeeded');
($rows, $xacts) = split / /, sharing('bank_a', 's');
is("$rows $xacts", "$n $n", 'with saga.batch_size = 1 each step is a remote transaction of its own');

# --- a participant without run_steps() (set up before 1.7): steps go alone
# (its objects lose version() too, as objects of 1.5 have none; the open
# connections still know it as 1.7: the batch statement fails there, and
# that is enough)
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM RESET saga.batch_size;
SELECT pg_reload_conf();
});
ok( poll_until($coord, 'coord', "SELECT current_setting('saga.batch_size') = '32'"),
	'batches again');
$part->safe_psql('bank_b', q{
DROP FUNCTION saga_participant.run_steps(text[], text[], text[], text[], text[], text[], text[],
										text[], text[], text[], text[], text[], text[], text[]);
DROP FUNCTION saga_participant.version();
});
@gids = submit_transfers('o');
my @not_ok = grep { wait_saga($coord, $_) ne 'succeeded' } @gids;
is("@not_ok", '', 'with an old participant, every saga still succeeds');
($rows, $xacts) = split / /, sharing('bank_b', 'o');
is("$rows $xacts", "$n $n", 'its steps went one by one');
($rows, $xacts) = split / /, sharing('bank_a', 'o');
cmp_ok($xacts, '<', $rows, 'while the other target still takes batches');
is( $coord->safe_psql('coord',
		"SELECT max(attempts) FROM saga.steps WHERE gid LIKE 'o-%'"),
	'1', 'the batch the old participant could not take cost no attempt');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no step applied twice');

# --- a participant whose objects say they predate run_steps() ---------
# What its objects say (saga_participant.version(), read once per
# connection) decides what the worker sends: bank_a has run_steps(),
# and took batches above, but says 1.6, so its steps go one by one without
# a batch being tried.
$part->safe_psql('bank_a', q{
CREATE OR REPLACE FUNCTION saga_participant.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '1.6'::text $$;
});
# connections made from now on read it
$part->restart;
@gids = submit_transfers('v');
@not_ok = grep { wait_saga($coord, $_) ne 'succeeded' } @gids;
is("@not_ok", '', 'with a participant that says 1.6, every saga still succeeds');
($rows, $xacts) = split / /, sharing('bank_a', 'v');
is("$rows $xacts", "$n $n", 'its steps went one by one, though it has run_steps()');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'none applied twice');

$coord->stop;
$part->stop;
done_testing();
