# 040_fault_campaign.pl: the fault campaign, short (test/fault_campaign.pl
# runs it long).  About 150 transfer sagas of the five modes between three
# bank databases on two clusters, plus a burst of 500 at once, while the
# worker is killed (kill -9), the coordinator stopped with -m immediate and
# restarted (once, and twice within one saga), the participant cluster
# stopped and started, a participant backend killed with SIGKILL during a
# call, the participant stalled (SIGSTOP: it accepts connections and never
# answers), and banks made slower than their steps' timeout; a fifth of
# the sagas fail for a business reason, some have a deadline and some are
# aborted with saga.abort().  Once the faults stop, every saga must be
# final and the invariants of SagaFaults hold: every saga in a status
# derived from what was injected into it, rolled back only for a reason it
# was given, its steps and ledger rows as its outcome demands; money
# conserved, every account at its start plus the sagas that succeeded, no
# ledger row written twice, no prepared transaction left, no barrier record
# without its saga; at sagas (on accounts of their own) never failed and no
# undo record or reservation left; every succeeded saga whose credit read
# its debit's result saw what the debit did.  A fifth of the burst's saga
# and tcc sagas carry a culprit, a step that shares batches with the other
# sagas' steps and fails every time (57014 raised by itself, or a deferred
# foreign key violated at commit): its saga ends rolled back for it (or
# for what came first), and no other saga is touched by it.  The
# campaign's figures go to the log (diag).
#
# SAGA_CAMPAIGN_DURATION (seconds of faults, 25) and SAGA_CAMPAIGN_SAGAS
# (150) make it longer, e.g. in a Debian root, where scripts/campaign.sh
# does not run:
#   SAGA_CAMPAIGN_DURATION=180 SAGA_CAMPAIGN_SAGAS=1200 \
#     bash scripts/debian-root.sh bookworm t/040_fault_campaign.pl
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;
use SagaFaults;

my $c = run_campaign(
	sagas => $ENV{SAGA_CAMPAIGN_SAGAS} // 150,
	duration => $ENV{SAGA_CAMPAIGN_DURATION} // 25,
	seed => $ENV{SAGA_CAMPAIGN_SEED},
	gap => [ 1, 2.5 ],
	burst => 500,
	quiesce_bound => 90,
	prepared_bound => 30);
diag "\n" . campaign_report($c);

my @gids = $c->submitted_gids;
cmp_ok(scalar @gids, '>=', 100, 'most sagas were submitted');
foreach my $kind (@SagaFaults::FAULT_KINDS)
{
	cmp_ok($c->{faults}{$kind}, '>=', 1, "fault injected: $kind");
}
ok(defined $c->{quiesce}, 'every saga final once the faults stopped');
ok(defined $c->{prepared_clear}, 'no prepared transaction left');
my $bs = $c->{counts}{by_status};
foreach my $mode (@SagaFaults::MODES)
{
	cmp_ok($c->{counts}{by_mode_status}{$mode}{succeeded} // 0, '>', 0, "some $mode sagas succeeded");
}
cmp_ok($bs->{aborted} // 0, '>', 0, 'some sagas were rolled back');
cmp_ok($c->{counts}{by_mode_status}{at}{aborted} // 0, '>', 0, 'some at sagas were rolled back');
cmp_ok($c->{results_checked} // 0, '>', 0, "some succeeded sagas passed the debit's result to the credit");
cmp_ok($c->{http_checked} // 0, '>', 0, 'some sagas ended with an HTTP step, checked against the service');
# counted on the coordinator, not taken from the campaign's own argument
my @burst = @{ $c->{burst_gids} // [] };
is( @burst
	? $c->{coord}->safe_psql($c->{db},
		"SELECT count(*) FROM saga.transactions WHERE status IN ('succeeded', 'aborted', 'failed') AND gid = ANY (ARRAY["
		  . join(', ', map { quote_literal($_) } @burst) . ']::text[])')
	: 0,
	500, 'the burst\'s 500 sagas are on the coordinator, each final');
# culprits among the burst's saga and tcc sagas: each kind present, and
# rolled back for its own failure at least once (a deadline, an abort or a
# business failure of the transfer may decide first)
foreach my $kind (qw(57014 fk))
{
	cmp_ok(scalar(grep { (($c->{intents}{$_}{culprit} // {})->{kind} // '') eq $kind } @burst),
		'>=', 1, "the burst carried $kind culprits");
	cmp_ok(($c->{counts}{culprit_fate}{$kind}{'its culprit'} // 0), '>=', 1,
		"some sagas were rolled back for their $kind culprit");
}
is($c->{culprit_error_elsewhere}, 0, "no culprit's error reached another step");
is(scalar @{ $c->{violations} }, 0, 'no invariant violated');

$_->stop foreach @{ $c->{nodes} };
done_testing();
