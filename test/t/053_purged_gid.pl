# 053_purged_gid.pl: a gid used again after a purge starts a new saga on
# every participant, and the purged saga's barrier records go.
#
# A transfer saga with gid G succeeds and is purged; a new saga with the
# same gid must run its steps for real (until 1.4 the participants answered
# them "duplicate" from the purged saga's barrier records, and the saga
# "succeeded" with nothing moved).  Each saga's records carry its own
# barrier identity, "<coordinator id>:<saga_key>".
#
# Once a saga is purged, the worker deletes its barrier records on the
# participants it used (saga_participant.forget()), not before
# saga.forget_delay plus its step timeout have passed since it finished.
# A participant that is down when they are due gets them deleted once it is
# back; one set up before 1.5 (no forget(), no run_batch_step()) keeps
# them, logs why, runs its steps one by one, and forgets once
# saga.setup_participant() ran again.  Every wait is on an observable
# count, with a deadline.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
# purged sagas' records are due 1 s after they finished (plus the delay the
# purging session sets)
$coord->append_conf('postgresql.conf', "saga.step_timeout = '1s'\n");
reload_settings($coord);

my $coordinator = $coord->safe_psql('coord', 'SELECT id FROM saga.coordinator');

sub transfer
{
	my ($gid, $amount) = @_;
	return submit_saga(
		$coord,
		gid => $gid,
		steps => [
			{
				target => 'bank_a',
				action => move_sql(1, -$amount),
				compensation => move_sql(1, $amount, 'compensation'),
				expect_rows => 1
			},
			{
				target => 'bank_b',
				action => move_sql(1, $amount),
				compensation => move_sql(1, -$amount, 'compensation'),
				expect_rows => 1
			}
		]);
}

# '' where there is none (before 1.5: the test then fails, but goes on to
# the balances)
sub saga_key
{
	my ($gid) = @_;
	my ($rc, $out) = $coord->psql('coord',
		'SELECT saga_key FROM saga.transactions WHERE gid = ' . quote_literal($gid));
	return $rc == 0 ? $out : '';
}

# "bank_a bank_b": barrier records of a barrier identity on each bank
sub records_of
{
	my ($identity) = @_;
	return join ' ', map {
		$part->safe_psql($_,
			'SELECT count(*) FROM saga_participant.barrier WHERE coordinator = '
			  . quote_literal($identity))
	} qw(bank_a bank_b);
}

sub purge
{
	my ($delay) = @_;
	return $coord->safe_psql('coord',
		"SET saga.forget_delay = '$delay'; SELECT saga.purge('0')");
}

# the saga reload_settings ran goes first
$coord->safe_psql('coord', "SELECT saga.purge('0')");

# --- a gid used again after a purge -----------------------------------------
transfer('transfer-g', 30);
is(wait_saga($coord, 'transfer-g'), 'succeeded', 'the first saga of gid transfer-g succeeded');
my $key1 = saga_key('transfer-g');
like($key1, qr/^\d+$/, 'it has a saga key');
is(records_of("$coordinator:$key1"), '1 1',
	'its barrier records carry "<coordinator id>:<saga key>" on both banks');

# its records stay on the participants for saga.forget_delay (10 minutes by
# default) after it finished: the new saga meets them
is($coord->safe_psql('coord', "SELECT saga.purge('0')"), '1', 'saga.purge deletes it');

transfer('transfer-g', 20);
is(wait_saga($coord, 'transfer-g'), 'succeeded', 'a new saga with the same gid succeeded');
my $key2 = saga_key('transfer-g');
isnt($key2, $key1, 'with a key of its own');
is_deeply(balances($part, 'bank_a'), { 1 => 50, 2 => 100 }, 'bank_a: both debits applied');
is_deeply(balances($part, 'bank_b'), { 1 => 150, 2 => 100 }, 'bank_b: both credits applied');
is(ledger_rows($part, 'bank_b', 'transfer-g'), "2|action|1|30\n2|action|1|20",
	'one ledger row per saga, each with the user\'s gid as saga.gid');
is(barrier_rows($part, 'bank_b', 'transfer-g'), "2|action|action\n2|action|action",
	'bank_b holds one barrier record of each saga');
is(records_of("$coordinator:$key2") . ' / ' . records_of("$coordinator:$key1"), '1 1 / 1 1',
	'each under its own identity: the first saga\'s records are not due yet');
is( $coord->safe_psql('coord',
		"SELECT string_agg(target || ' ' || barrier || ' ' || coalesce(gid, '-'), ', ' ORDER BY target)
		   FROM saga.barrier_forget WHERE barrier LIKE '%:$key1'"),
	"bank_a $coordinator:$key1 -, bank_b $coordinator:$key1 -",
	'they are queued to be forgotten on both banks, by barrier identity');

# --- the worker forgets a purged saga's records ------------------------------
is(purge('0'), '1', 'the second saga is purged with no extra delay');
ok( poll_until(
		$part, 'bank_a',
		'SELECT count(*) FROM saga_participant.barrier WHERE coordinator = '
		  . quote_literal("$coordinator:$key2"),
		'0'),
	'the worker deleted its records on bank_a');
ok( poll_until(
		$part, 'bank_b',
		'SELECT count(*) FROM saga_participant.barrier WHERE coordinator = '
		  . quote_literal("$coordinator:$key2"),
		'0'),
	'and on bank_b');
ok( poll_until(
		$coord, 'coord',
		"SELECT count(*) FROM saga.barrier_forget WHERE barrier = '$coordinator:$key2'", '0'),
	'and its queue rows are gone once the participants committed');
is(records_of("$coordinator:$key1"), '1 1', 'the first saga\'s records wait for their delay');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.barrier_forget WHERE barrier = '$coordinator:$key1'"),
	'2', 'still queued');

# --- a participant that is down when the records are due ----------------------
transfer('while-down', 5);
is(wait_saga($coord, 'while-down'), 'succeeded', 'a saga succeeded');
my $key3 = saga_key('while-down');
$part->stop;
my $log_offset = -s $coord->logfile;
is(purge('0'), '1', 'and was purged while its participant is down');
ok( $coord->wait_for_log(
		qr/could not forget the barrier records of purged sagas on target "bank_[ab]"; trying again later/,
		$log_offset),
	'the worker tried, failed and said it will try again');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.barrier_forget WHERE barrier = '$coordinator:$key3'"),
	'2', 'the rows stay queued while the participant is down');
$part->start;
ok( poll_until(
		$coord, 'coord',
		"SELECT count(*) FROM saga.barrier_forget WHERE barrier = '$coordinator:$key3'", '0'),
	'once the participant is back, the worker forgets them');
is(records_of("$coordinator:$key3"), '0 0', 'its records are gone from both banks');
is_deeply(balances($part, 'bank_b'), { 1 => 155, 2 => 100 }, 'and its transfer stays');

# --- a participant set up before 1.5 -----------------------------------------
# without forget(), run_batch_step() and version()
$part->safe_psql('bank_b', q{
DROP FUNCTION saga_participant.version();
DROP FUNCTION saga_participant.forget(text[], text[]);
DROP FUNCTION saga_participant.run_batch_step(text, text, int, text, text, bigint,
											  text, text, int, text);
});
# as after an update of the coordinator: its connections are new
$part->restart;
# several sagas in one transaction, whose steps would share batches
my $burst = 'BEGIN;';
foreach my $i (1 .. 4)
{
	$burst .= build_saga_sql(
		gid => "old-part-$i",
		steps => [ { target => 'bank_b', action => move_sql(2, $i), expect_rows => 1 } ]);
	$burst .= "SELECT saga.submit('old-part-$i');";
}
$coord->safe_psql('coord', "$burst COMMIT;");
foreach my $i (1 .. 4)
{
	is(wait_saga($coord, "old-part-$i"), 'succeeded', "old-part-$i succeeded on it");
}
is(balances($part, 'bank_b')->{2}, '110', 'each step applied once');
is( $part->safe_psql('bank_b', "SELECT count(*) FROM ledger WHERE gid LIKE 'old-part-%'"),
	'4', 'none twice');

$log_offset = -s $coord->logfile;
is(purge('0'), '4', 'the sagas are purged');
ok( $coord->wait_for_log(
		qr/target "bank_b" cannot forget the barrier records of purged sagas/, $log_offset),
	'the worker logs that the participant cannot forget');
like(
	slurp_file($coord->logfile, $log_offset),
	qr/HINT:  Its objects were set up by an earlier pg_saga: run saga.setup_participant\('bank_b'\) again/,
	'and how to fix it');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.barrier_forget WHERE target = 'bank_b' AND barrier <> '$coordinator:$key1'"),
	'4', 'its rows stay queued');
$coord->safe_psql('coord', "SELECT saga.setup_participant('bank_b')");
# the worker tries again every saga.max_retry_interval (1 s here)
ok( poll_until(
		$coord, 'coord',
		"SELECT count(*) FROM saga.barrier_forget WHERE target = 'bank_b' AND barrier <> '$coordinator:$key1'",
		'0'),
	'once set up again, it forgets them');
is( $part->safe_psql('bank_b',
		"SELECT count(*) FROM saga_participant.barrier WHERE gid LIKE 'old-part-%'"),
	'0', 'their records are gone');

$coord->stop;
$part->stop;
done_testing();
