# 042_load.pl: load and resources.
#
#  - 2,000 sagas submitted in one transaction: while they drain, the worker
#    never holds more connections to a target than
#    saga.max_connections_per_target (4 here).  Counted, not sampled: a
#    trigger on each bank's ledger writes down, for every step, how many
#    connections of pg_saga (application_name 'pg_saga') the participant
#    has then, its own included; a connection beyond the fourth is opened
#    to run a step, and that step writes down five.  Every step must have
#    written its number.  They all succeed, in submission order (the first
#    100 all finished before any of the last 100), each applied once;
#  - a participant that accepts TCP connections but never answers (a Perl
#    listener that accepts and sleeps) cannot stall the other sagas: those
#    on a healthy target complete meanwhile, and the saga on the silent one
#    fails after saga.connect_timeout per attempt (SQLSTATE 08001) and rolls
#    back;
#  - a younger xa saga whose prepared step holds a row lock is not starved of
#    connections by older sagas that wait on that lock: with 24 older msg
#    sagas (retried without limit) blocked on the row and 4 connections to
#    the target, the xa saga still gets a connection for its next step,
#    commits, and then every saga completes.
use strict;
use warnings;

use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use SagaTest;

my $N = 2000;
my ($coord, $part) = standard_setup(accounts => { 1 => 1000000, 2 => 1000000 });
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.max_connections_per_target = 4;
ALTER SYSTEM SET saga.connect_timeout = '4s';
});
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');
reload_settings($coord, 'coord');

# every ledger row (one per step) notes how many pg_saga connections its
# database has then
foreach my $db ('bank_a', 'bank_b')
{
	$part->safe_psql($db, q{
CREATE TABLE connections_seen (gid text NOT NULL, n int NOT NULL);
CREATE FUNCTION note_connections() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO connections_seen
	SELECT NEW.gid, count(*) FROM pg_stat_activity
	 WHERE application_name = 'pg_saga' AND datname = current_database();
	RETURN NULL;
END $$;
CREATE TRIGGER note_connections AFTER INSERT ON ledger
	FOR EACH ROW EXECUTE FUNCTION note_connections();
});
}

# --- 2,000 sagas at once ------------------------------------------------------
my $debit = quote_literal(move_sql(1, -1));
my $undo_debit = quote_literal(move_sql(1, 1, 'compensation'));
my $credit = quote_literal(move_sql(2, 1));
my $undo_credit = quote_literal(move_sql(2, -1, 'compensation'));
my $gid = q{'load-' || lpad(i::text, 5, '0')};
$coord->safe_psql(
	'coord', qq{
BEGIN;
SELECT count(saga.begin($gid)) FROM generate_series(1, $N) i;
SELECT count(saga.add_step($gid, 'bank_a', $debit, $undo_debit, expect_rows => 1)) FROM generate_series(1, $N) i;
SELECT count(saga.add_step($gid, 'bank_b', $credit, $undo_credit, expect_rows => 1)) FROM generate_series(1, $N) i;
SELECT count(saga.submit($gid)) FROM generate_series(1, $N) i;
COMMIT;
});

ok(poll_until($coord, 'coord',
		"SELECT count(*) = 0 FROM saga.gtx WHERE status NOT IN ('succeeded', 'aborted', 'failed')", 't', 300),
	"all $N sagas drained");
foreach my $db ('bank_a', 'bank_b')
{
	my ($steps, $most) = split /\|/, $part->safe_psql($db,
		"SELECT count(DISTINCT gid), max(n) FROM connections_seen WHERE gid LIKE 'load-%'");
	note "$db: most pg_saga connections seen by a step: $most";
	is($steps, $N, "$db: every step wrote down the connections it saw");
	cmp_ok($most, '<=', 4, "$db: never more than 4 connections from pg_saga (most: $most)");
}
is( $coord->safe_psql('coord',
		"SELECT status, count(*) FROM saga.transactions WHERE gid LIKE 'load-%' GROUP BY status"),
	"succeeded|$N",
	'every saga succeeded');
is( $coord->safe_psql(
		'coord', q{
SELECT (SELECT max(finished_at) FROM (SELECT finished_at FROM saga.gtx WHERE gid LIKE 'load-%' ORDER BY id LIMIT 100) f)
     < (SELECT min(finished_at) FROM (SELECT finished_at FROM saga.gtx WHERE gid LIKE 'load-%' ORDER BY id DESC LIMIT 100) l)}),
	't',
	'drained in submission order: the first 100 finished before the last 100');
note 'finished_at of the first and last sagas: '
  . $coord->safe_psql('coord',
	"SELECT min(finished_at) || ' .. ' || max(finished_at) FROM saga.gtx WHERE gid LIKE 'load-%'");
is_deeply(balances($part, 'bank_a'), { 1 => 1000000 - $N, 2 => 1000000 }, 'bank_a debited once per saga');
is_deeply(balances($part, 'bank_b'), { 1 => 1000000, 2 => 1000000 + $N }, 'bank_b credited once per saga');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'), '',
	'no branch applied twice');

# --- a participant that accepts and never answers -------------------------------
my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Proto => 'tcp',
	Listen => 16,
	ReuseAddr => 1) or die "cannot listen: $!";
my $silent_port = $listener->sockport;
my $child = fork();
die "fork: $!" unless defined $child;
if ($child == 0)
{
	# accept every connection, read nothing, answer nothing
	my @held;
	while (my $s = $listener->accept)
	{
		push @held, $s;
	}
	exit 0;
}
close $listener;

$coord->safe_psql(
	'coord', qq{
CREATE SERVER silent FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$silent_port', dbname 'silent');
CREATE USER MAPPING FOR CURRENT_USER SERVER silent OPTIONS (user 'postgres');
});
my $hung = submit_saga(
	$coord,
	gid => 'silent-1',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -5), compensation => move_sql(1, 5, 'compensation') },
		{ target => 'silent', action => 'SELECT 1', max_attempts => 2 } ]);
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts >= 1 FROM saga.steps WHERE gid = 'silent-1' AND step = 2"),
	'the step on the silent target is trying to connect');

my @healthy;
for my $i (1 .. 20)
{
	push @healthy, submit_saga(
		$coord,
		gid => "healthy-$i",
		steps => [
			{ target => 'bank_a', action => move_sql(2, -1), compensation => move_sql(2, 1, 'compensation') },
			{ target => 'bank_b', action => move_sql(2, 1), compensation => move_sql(2, -1, 'compensation') } ]);
}
my @st = map { wait_saga($coord, $_) } @healthy;
is(join(',', grep { $_ ne 'succeeded' } @st), '', 'the 20 sagas on healthy targets succeeded');
like(saga_status($coord, $hung), qr/^(running|compensating)$/,
	'meanwhile the saga on the silent target is still waiting for it');

is(wait_saga($coord, $hung), 'aborted', 'the saga on the silent target rolls back');
is( step_rows($coord, $hung, 'step, status, last_sqlstate'),
	"1|compensated|\n2|failed|08001",
	'its step failed with 08001 after its two attempts; step 1 compensated');
is($coord->safe_psql('coord', "SELECT attempts FROM saga.steps WHERE gid = 'silent-1' AND step = 2"),
	'2', 'two attempts on the silent target');
like(step_rows($coord, $hung, 'last_error') , qr/timeout expired while connecting/,
	'the error says the connection timed out');
is(ledger_rows($part, 'bank_a', $hung), "1|action|1|-5\n1|compensation|1|5",
	'step 1 applied and compensated once');

# --- no starvation behind a prepared transaction's lock ------------------------
# gate_check(n) raises a transient error (40001) while gate n is closed
$part->safe_psql('bank_b', q{
CREATE TABLE gate (n int PRIMARY KEY, closed bool NOT NULL);
INSERT INTO gate VALUES (1, true), (2, true);
CREATE FUNCTION gate_check(g int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT closed FROM gate WHERE n = g) THEN
		RAISE EXCEPTION 'gate % closed', g USING ERRCODE = '40001';
	END IF;
	RETURN 0;
END
$$;});
sub gated
{
	my ($id, $delta, $gate) = @_;
	return "WITH l AS (INSERT INTO ledger (gid, step, op, id, delta) VALUES "
	  . "(current_setting('saga.gid'), current_setting('saga.step')::int, 'action', $id, $delta)) "
	  . "UPDATE account SET balance = balance + ($delta) + gate_check($gate) WHERE id = $id";
}
# 24 older msg sagas on account 1 of bank_b, retried while gate 1 is closed
my @blockers = map {
	submit_saga($coord, gid => "blocker-$_", mode => 'msg',
		steps => [ { target => 'bank_b', action => gated(1, 1, 1), timeout => '1 s', expect_rows => 1 } ])
} 1 .. 24;
ok( poll_until(
		$coord, 'coord',
		"SELECT bool_and(attempts >= 1) FROM saga.steps WHERE gid LIKE 'blocker-%'"),
	'24 msg sagas retry on bank_b');
# the xa saga prepares step 1 on account 1 (holding its row lock); its step 2
# waits for gate 2
my $xa = submit_saga($coord, gid => 'xa-holder', mode => 'xa', steps => [
	{ target => 'bank_b', action => move_sql(1, -5), expect_rows => 1 },
	{ target => 'bank_b', action => gated(2, 5, 2), expect_rows => 1, max_attempts => 1000,
	  timeout => '1 s' } ]);
ok( poll_until(
		$coord, 'coord',
		"SELECT status = 'prepared' FROM saga.steps WHERE gid = 'xa-holder' AND step = 1"),
	'the xa saga holds a prepared transaction on account 1');
# now the blockers wait on the prepared transaction's lock, 1 s per attempt,
# and the xa saga's step 2 can go on
$part->safe_psql('bank_b', 'UPDATE gate SET closed = false');
is(wait_saga($coord, $xa, 45), 'succeeded',
	'the xa saga gets a connection for its step 2 and commits')
  or diag 'xa-holder: '
  . step_rows($coord, $xa, 'step, status, attempts, next_attempt_at')
  . "\nlast events:\n"
  . $coord->safe_psql('coord',
	"SELECT string_agg(x, E'\\n') FROM (SELECT at || ' ' || coalesce(step::text, '') || ' ' || event || ' ' || coalesce(detail, '') AS x FROM saga.history WHERE gid = 'xa-holder' ORDER BY at DESC LIMIT 5) l");
ok( poll_until(
		$coord, 'coord',
		"SELECT count(*) FROM saga.gtx WHERE gid LIKE 'blocker-%' AND status = 'succeeded'",
		'24', 45),
	'then the 24 msg sagas succeed');
is($part->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'no prepared transaction left');

kill 'KILL', $child;
waitpid($child, 0);
$coord->stop;
$part->stop;
done_testing();
