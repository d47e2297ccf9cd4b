# test/fault_campaign.pl: the fault campaign of pg_saga, standalone.
#
# Transfer sagas of every mode (saga, tcc, xa, msg, at) between the accounts of
# bank_a and bank_b (on a participant cluster) and bank_c (on the
# coordinator's own cluster), while the worker is killed with kill -9, the
# coordinator is stopped with -m immediate and restarted, the participant
# cluster is stopped and started, and banks turn slow beyond their steps'
# timeout, a participant backend is killed with SIGKILL during a call, the
# participant cluster is stalled (SIGSTOP) and the coordinator restarted
# twice within one saga; a burst of --burst sagas is submitted at once
# halfway through; a fifth of the sagas carry a business failure, a quarter of the
# others a deadline, and saga.abort() is called about once a second on a
# recent saga.  Then it checks the invariants (see test/perl/SagaFaults.pm)
# and prints its figures: sagas run, faults injected of each kind, final
# statuses, invariant violations (must be 0), time to quiesce, and the
# worker's resident memory (total and private) before and after
# --memory-sagas sequential sagas.  Exits non-zero on a violation.
#
#   bash scripts/campaign.sh --duration 300 --sagas 3000
#
# Options: --duration SECONDS of faults (60), --sagas N submitted over them
# (600), --burst N (5000, on top of them), --seed N (random), --gap MIN,MAX
# seconds between faults (1,3), --kinds kill9,coord_immediate,coord_twice,
# part_restart,part_kill9,stall,slow (all), --quiesce-bound
# SECONDS (180), --memory-sagas N (1000; 0 skips the measurement).
# test/t/040_fault_campaign.pl runs the same code with small numbers.
use strict;
use warnings;

use Getopt::Long;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;
use SagaFaults;

my %opt = (
	duration => 60,
	sagas => 600,
	burst => 5000,
	gap => '1,3',
	kinds => join(',', @SagaFaults::FAULT_KINDS),
	'quiesce-bound' => 180,
	'memory-sagas' => 1000);
GetOptions(\%opt, 'duration=i', 'sagas=i', 'burst=i', 'seed=i', 'gap=s', 'kinds=s',
	'quiesce-bound=i', 'memory-sagas=i')
  or die "usage: $0 [--duration S] [--sagas N] [--burst N] [--seed N] [--gap MIN,MAX] [--kinds K,...] [--quiesce-bound S] [--memory-sagas N]\n";

my $c = run_campaign(
	sagas => $opt{sagas},
	burst => $opt{burst},
	duration => $opt{duration},
	seed => $opt{seed},
	gap => [ split /,/, $opt{gap} ],
	kinds => [ grep { $_ ne '' } split /,/, $opt{kinds} ],
	quiesce_bound => $opt{'quiesce-bound'},
	memory_sagas => $opt{'memory-sagas'});
my $report = campaign_report($c);
diag "\n$report";
ok(defined $c->{quiesce}, 'every saga final within the bound');
is(scalar @{ $c->{violations} }, 0, 'no invariant violated');
$_->stop foreach @{ $c->{nodes} };
done_testing();
