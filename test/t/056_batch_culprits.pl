# 056_batch_culprits.pl: a step's fate never depends on its batch-mates.
#
# With one connection per target, bursts of sagas submitted in one
# transaction share batches on bank_a.  Among innocent transfers stand
# culprits of every kind that once escaped a step's subtransaction or
# reached the steps after it: ASSERT (P0004), RAISE with SQLSTATE 57014, a
# step that cancels its own statement, a deferred foreign key checked only
# at commit, SET CONSTRAINTS ALL DEFERRED followed by a violation, a step
# that relies on an immediate check after a batch-mate deferred every
# constraint, a step slower than saga.step_timeout, a slow step with a
# timeout of its own, a slow step that finishes within its timeout, and a
# step that makes the transaction read-only.  Apart, a burst in which a
# step kills its session, and so its batch's connection: the innocents of
# the lost batch are charged nothing and succeed.
# Every saga must end exactly as it would alone: innocents succeed with one
# attempt and no error, each culprit with its own SQLSTATE and the attempts
# it would have alone.  Then the same in the compensation phase: every
# saga's credit fails, so the debits are compensated in batches, among
# compensations that refuse (P0001), assert, raise 57014 once, or violate a
# deferred foreign key; innocent sagas end aborted, never failed.
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
ALTER SYSTEM SET saga.max_connections_per_target = 1;
ALTER SYSTEM SET saga.step_timeout = '2s';
SELECT pg_reload_conf();
});
$part->safe_psql(
	'bank_a', q{
ALTER TABLE ledger ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child_late (id int PRIMARY KEY,
	parent int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE child_now (id int PRIMARY KEY,
	parent int REFERENCES parent DEFERRABLE INITIALLY IMMEDIATE);
});

# The forward culprits, by $i % 15; every other $i is an innocent transfer.
# Each: its action, its own options, and how it ends alone.
my %culprit = (
	1 => {
		action => q{DO $$BEGIN ASSERT false, 'culprit assert'; END$$},
		status => 'aborted',
		sqlstate => 'P0004'
	},
	2 => {
		action =>
		  q{DO $$BEGIN RAISE EXCEPTION 'culprit raise' USING ERRCODE = '57014'; END$$},
		status => 'aborted',
		sqlstate => '57014'
	},
	3 => {
		action =>
		  q{DO $$BEGIN PERFORM pg_cancel_backend(pg_backend_pid()); PERFORM pg_sleep(5); END$$},
		status => 'aborted',
		sqlstate => '57014'
	},
	4 => {
		action => 'INSERT INTO child_late VALUES (%d, -1)',
		status => 'aborted',
		sqlstate => '23503'
	},
	5 => {
		action => 'SET CONSTRAINTS ALL DEFERRED; INSERT INTO child_now VALUES (%d, -1)',
		status => 'aborted',
		sqlstate => '23503'
	},
	6 => {
		# alone, the immediate check refuses the child before its parent
		action => 'INSERT INTO child_now VALUES (%d, %d); INSERT INTO parent VALUES (%d)',
		status => 'aborted',
		sqlstate => '23503'
	},
	7 => {
		action => 'SELECT pg_sleep(4)',
		status => 'aborted',
		sqlstate => '57014'
	},
	8 => {
		action => 'SELECT pg_sleep(4)',
		timeout => '1s',
		status => 'aborted',
		sqlstate => '57014'
	},
	9 => {
		action => 'SELECT pg_sleep(0.3)',
		status => 'succeeded',
		sqlstate => ''
	},
	10 => {
		# alone, a read-only transaction that writes nothing commits
		action => 'SET TRANSACTION READ ONLY; SELECT 1 WHERE false',
		status => 'succeeded',
		sqlstate => ''
	},);

sub forward_saga
{
	my ($i) = @_;
	my $c = $culprit{ $i % 15 };
	my $step = { target => 'bank_a', max_attempts => 1 };
	if ($c)
	{
		$step->{action} = sprintf($c->{action}, $i, $i, $i);
		$step->{timeout} = $c->{timeout} if $c->{timeout};
	}
	else
	{
		$step->{action} = move_sql($i, -1);
		$step->{expect_rows} = 1;
	}
	return build_start_sql(gid => "f-$i", steps => [$step]);
}

# What each saga of a burst must end as: status, SQLSTATE and attempts of
# its step ('' for none), as one line per saga.
sub outcomes
{
	my ($prefix, $step) = @_;
	return $coord->safe_psql(
		'coord', qq{
SELECT string_agg(format('%s %s %s %s', t.gid, t.status, coalesce(s.last_sqlstate, ''), s.attempts),
				  E'\n' ORDER BY split_part(t.gid, '-', 2)::int)
  FROM saga.transactions t JOIN saga.steps s ON s.gid = t.gid AND s.step = $step
 WHERE t.gid LIKE '$prefix-%'});
}

# Action rows of the innocents of $prefix on bank_a, and the remote
# transactions that wrote them.
sub sharing
{
	my ($prefix, $op) = @_;
	return $part->safe_psql('bank_a',
		"SELECT count(*) || ' ' || count(DISTINCT xid) FROM ledger
		  WHERE op = '$op' AND gid LIKE '$prefix-%'");
}

# --- forward phase ------------------------------------------------------------
$coord->safe_psql('coord',
	"BEGIN;\n" . join('', map { forward_saga($_) } 1 .. $n) . "COMMIT;\n");
wait_saga($coord, "f-$_") foreach 1 .. $n;

my @want;
my $innocents = 0;
foreach my $i (1 .. $n)
{
	my $c = $culprit{ $i % 15 };
	if ($c)
	{
		push @want, "f-$i $c->{status} $c->{sqlstate} 1";
	}
	else
	{
		push @want, "f-$i succeeded  1";
		$innocents++;
	}
}
is(outcomes('f', 1), join("\n", @want),
	'every saga of the burst ends as it would alone, with the attempts it would have alone');

my ($rows, $xacts) = split / /, sharing('f', 'action');
is($rows, $innocents, 'one debit per innocent transfer');
cmp_ok($xacts, '<', $rows, "the innocents shared remote transactions ($xacts for $rows)");
my %want_balance =
  map { $_ => ($culprit{ $_ % 15 } ? 100 : 99) } 1 .. $n;
is_deeply(balances($part, 'bank_a'), \%want_balance, 'each innocent debited once');
is( $part->safe_psql('bank_a',
		'SELECT (SELECT count(*) FROM child_late) + (SELECT count(*) FROM child_now)
		      + (SELECT count(*) FROM parent)'),
	'0',
	'no culprit left a row: neither a deferred violation nor a child before its parent');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.steps WHERE gid LIKE 'f-%' AND status = 'succeeded'
		    AND last_error IS NOT NULL"),
	'0',
	'no innocent carries an error');

# --- a batch lost under its steps ------------------------------------------------
# Every tenth step kills its own session.  The batch's outcome is unknown
# to all its steps: each goes again alone, uncharged; the barrier answers
# a step whose batch had committed.  Alone, the culprit's call is lost
# again, now its own: given up on (max_attempts 1), its saga rolled back
# (a step whose outcome is unknown is compensated: here, no compensation,
# so the count of the step's attempts starts again at 0).
my $m = 30;
$coord->safe_psql(
	'coord',
	"BEGIN;\n"
	  . join(
		'',
		map {
			build_start_sql(
				gid => "k-$_",
				steps => [
					$_ % 10 == 5
					? {
						target => 'bank_a',
						action => 'SELECT pg_terminate_backend(pg_backend_pid())',
						max_attempts => 1
					  }
					: {
						target => 'bank_a',
						action => move_sql($_, 1),
						expect_rows => 1,
						max_attempts => 1
					  }
				])
		} 1 .. $m)
	  . "COMMIT;\n");
wait_saga($coord, "k-$_") foreach 1 .. $m;
is( outcomes('k', 1),
	join("\n",
		map { $_ % 10 == 5 ? "k-$_ aborted 08006 0" : "k-$_ succeeded  1" } 1 .. $m),
	'the innocents of a lost batch succeed with one attempt; the culprit ends as alone');
%want_balance = map { $_ => $want_balance{$_} + ($_ <= $m && $_ % 10 != 5 ? 1 : 0) } 1 .. $n;
is_deeply(balances($part, 'bank_a'), \%want_balance, 'each innocent credited once');
is(ledger_duplicates($part, 'bank_a'), '', 'no step applied twice');

# --- compensation phase -------------------------------------------------------
# Every saga debits bank_a, then its credit on bank_b finds no account
# (expect_rows), so every debit is compensated, in batches on bank_a.
$part->safe_psql('bank_a',
	join('', map { "CREATE SEQUENCE refund_try_$_;" } grep { $_ % 10 == 3 } 1 .. $n));
# A step whose compensation failed keeps its action's status, with the
# compensation's error; its saga is failed.
my %refund_culprit = (
	1 => {
		compensation =>
		  q{DO $$BEGIN RAISE EXCEPTION 'refund blocked'; END$$},
		status => 'failed',
		line => 'succeeded P0001 1'
	},
	2 => {
		compensation => q{DO $$BEGIN ASSERT false, 'refund assert'; END$$},
		status => 'failed',
		line => 'succeeded P0004 1'
	},
	3 => {
		# refused once with 57014, a transient error: retried, then done
		compensation =>
		  q{DO $$BEGIN IF nextval('refund_try_%d') = 1 THEN RAISE EXCEPTION 'refund later' USING ERRCODE = '57014'; END IF; END$$},
		status => 'aborted',
		line => 'compensated 57014 2'
	},
	4 => {
		compensation => 'INSERT INTO child_late VALUES (%d, -1)',
		status => 'failed',
		line => 'succeeded 23503 1'
	},);

sub refund_saga
{
	my ($i) = @_;
	my $c = $refund_culprit{ $i % 10 };
	return build_start_sql(
		gid => "c-$i",
		steps => [
			{
				target => 'bank_a',
				action => move_sql($i, -1),
				compensation => $c
				? sprintf($c->{compensation}, $i % 10 == 3 ? $i : 1000 + $i)
				: move_sql($i, 1, 'compensation'),
				expect_rows => 1
			},
			{
				target => 'bank_b',
				action => move_sql(1000 + $i, 1),
				expect_rows => 1,
				max_attempts => 1
			}
		]);
}

$coord->safe_psql('coord',
	"BEGIN;\n" . join('', map { refund_saga($_) } 1 .. $n) . "COMMIT;\n");
wait_saga($coord, "c-$_") foreach 1 .. $n;

my (@want_status, @want_step);
my $refunds = 0;
foreach my $i (1 .. $n)
{
	my $c = $refund_culprit{ $i % 10 };
	push @want_status, "c-$i " . ($c ? $c->{status} : 'aborted');
	push @want_step, "c-$i " . ($c ? $c->{line} : 'compensated  1');
	$refunds++ unless $c;
}
is( $coord->safe_psql(
		'coord', q{
SELECT string_agg(gid || ' ' || status, E'\n' ORDER BY split_part(gid, '-', 2)::int)
  FROM saga.transactions WHERE gid LIKE 'c-%'}),
	join("\n", @want_status),
	'innocent sagas end aborted, never failed; each culprit as it would alone');
is( $coord->safe_psql(
		'coord', q{
SELECT string_agg(format('%s %s %s %s', gid, status, coalesce(last_sqlstate, ''), attempts),
				  E'\n' ORDER BY split_part(gid, '-', 2)::int)
  FROM saga.steps WHERE gid LIKE 'c-%' AND step = 1}),
	join("\n", @want_step),
	'each compensation with its own error and the attempts it would have alone');
($rows, $xacts) = split / /, sharing('c', 'compensation');
is($rows, $refunds, 'one refund per innocent saga');
cmp_ok($xacts, '<', $rows, "the refunds shared remote transactions ($xacts for $rows)");
my %want_refund = map {
	my $c = $refund_culprit{ $_ % 10 };
	$_ => $want_balance{$_} + ($c ? -1 : 0)
} 1 .. $n;
is_deeply(balances($part, 'bank_a'), \%want_refund,
	'every innocent debit refunded once; the culprits\' refunds moved nothing');

done_testing();
