# 005_immediate_shutdown.pl: the coordinator stops with sagas in flight.
#
# Twenty transfers from bank_a accounts to bank_b accounts are submitted; some
# of them overdraw their account and must roll back.  While they run the
# coordinator is stopped in immediate mode (a crash) and started again.
# Every saga reaches a final status, money is conserved, no branch takes
# effect twice, and each saga's outcome matches the ledger: a succeeded
# saga's effect is there, an aborted saga left nothing.  Then a final
# status reported with synchronous_commit off survives a crash.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my %initial = map { $_ => 100 } 1 .. 4;
my ($coord, $part) = standard_setup(accounts => \%initial);
my $n = 20;

# saga i: credit bank_b account to (step 1), then debit bank_a account from
# (step 2, slow, may violate the CHECK); each account sees five sagas whose
# amounts add up to more than its balance.
my %saga;
foreach my $i (1 .. $n)
{
	my $from = ($i % 4) + 1;
	my $to = (($i + 1) % 4) + 1;
	my $amount = 10 + ($i % 5) * 15;
	$saga{"imm-$i"} = { from => $from, to => $to, amount => $amount };
}
my $sql = '';
foreach my $i (1 .. $n)
{
	my $gid = "imm-$i";
	my $s = $saga{$gid};
	$sql .= build_saga_sql(
		gid => $gid,
		steps => [
			{
				target => 'bank_b',
				action => move_sql($s->{to}, $s->{amount}, 'action', sleep => 0.3),
				compensation =>
				  move_sql($s->{to}, -$s->{amount}, 'compensation'),
				max_attempts => 1000
			},
			{
				target => 'bank_a',
				action => move_sql($s->{from}, -$s->{amount}, 'action', sleep => 0.3),
				compensation =>
				  move_sql($s->{from}, $s->{amount}, 'compensation'),
				max_attempts => 1000
			}
		]) . "SELECT saga.submit('$gid');\n";
}
# one transaction per saga (psql autocommits each statement, and a saga
# can be built across transactions)
$coord->safe_psql('coord', $sql);

ok( poll_until(
		$coord, 'coord',
		"SELECT count(*) >= 3 FROM saga.steps WHERE status <> 'pending' AND gid LIKE 'imm-%'"
	),
	'sagas are in flight');
my $before = $coord->safe_psql('coord',
	"SELECT string_agg(status, ',' ORDER BY status) FROM saga.transactions WHERE gid LIKE 'imm-%'"
);
note "statuses before the crash: $before";

$coord->stop('immediate');
$coord->start;

poll_until(
	$coord, 'coord',
	"SELECT count(*) FROM saga.transactions WHERE gid LIKE 'imm-%'
	    AND status IN ('succeeded', 'aborted', 'failed')",
	$n, 180);
my %status = map { split /\|/ } split /\n/,
  $coord->safe_psql('coord',
	"SELECT gid, status FROM saga.transactions WHERE gid LIKE 'imm-%'");
$status{$_} //= '' foreach keys %saga;
is(scalar(grep { is_final($status{$_}) } keys %status),
	$n, 'every saga reached a final status')
  or diag explain \%status;
is(scalar(grep { $status{$_} eq 'failed' } keys %status),
	0, 'none failed');
my $succeeded = grep { $status{$_} eq 'succeeded' } keys %status;
my $aborted = grep { $status{$_} eq 'aborted' } keys %status;
note "$succeeded succeeded, $aborted aborted";
ok($succeeded > 0, 'some sagas succeeded');

is(total_balance($part, 'bank_a') + total_balance($part, 'bank_b'),
	800, 'money conserved');
is(ledger_duplicates($part, 'bank_a'), '', 'bank_a: no branch applied twice');
is(ledger_duplicates($part, 'bank_b'), '', 'bank_b: no branch applied twice');

# balances agree with the ledger, account by account
foreach my $db ('bank_a', 'bank_b')
{
	is( $part->safe_psql(
			$db, q{
SELECT count(*) FROM account a
 WHERE a.balance <> 100 + coalesce((SELECT sum(delta) FROM ledger l WHERE l.id = a.id), 0)}
		),
		'0',
		"$db balances match the ledger");
}

my $bad = 0;
foreach my $gid (sort keys %saga)
{
	my $s = $saga{$gid};
	my $a = ledger_rows($part, 'bank_a', $gid);
	my $b = ledger_rows($part, 'bank_b', $gid);
	if ($status{$gid} eq 'succeeded')
	{
		my $ok =
		     $b eq "1|action|$s->{to}|$s->{amount}"
		  && $a eq "2|action|$s->{from}|-$s->{amount}";
		$bad++, diag "$gid succeeded but ledger is:\n$b\n$a" unless $ok;
	}
	elsif ($status{$gid} eq 'aborted')
	{
		# step 1 applied then compensated (or never applied); step 2 never
		# took effect (a CHECK violation rolls it back) or was compensated
		my $ok =
		     ledger_sum($part, 'bank_a', $gid) == 0
		  && ledger_sum($part, 'bank_b', $gid) == 0
		  && $b =~ /^(1\|action\|\S+\n1\|compensation\|\S+)?$/
		  && $a =~ /^(2\|action\|\S+\n2\|compensation\|\S+)?$/;
		$bad++, diag "$gid aborted but ledger is:\n$b\n$a" unless $ok;
	}
}
is($bad, 0, 'each saga\'s ledger matches its final status');

is( $coord->safe_psql(
		'coord',
		"SELECT count(*) FROM saga.steps WHERE gid LIKE 'imm-%'
		   AND status NOT IN ('succeeded', 'compensated', 'failed', 'skipped')"
	),
	'0',
	'no step left in a non-final status');

# A final status saga.wait() reported survives an immediate shutdown,
# even where the server runs with synchronous_commit off (SPEC, "What is
# durable"): the worker flushes it before it tells the waiter.  The WAL
# writer, every 10 s here, would not have written it yet: a status taken
# back would come again from running the saga again, with a new finish.
$coord->append_conf('postgresql.conf', "synchronous_commit = off\nwal_writer_delay = '10s'");
$coord->restart;
wait_for_worker($coord, 'coord');
my $gid = submit_saga($coord, steps => [
	{ target => 'bank_a', action => 'UPDATE account SET balance = balance WHERE id = 1' } ]);
is(wait_saga($coord, $gid), 'succeeded', 'a saga succeeded with synchronous_commit off');
my $finished = $coord->safe_psql('coord', "SELECT finished_at FROM saga.transactions WHERE gid = '$gid'");
$coord->stop('immediate');
$coord->start;
is($coord->safe_psql('coord', "SELECT status || ' ' || finished_at FROM saga.transactions WHERE gid = '$gid'"),
	"succeeded $finished", 'its final status and finish came back from the WAL');

$coord->stop;
$part->stop;
done_testing();
