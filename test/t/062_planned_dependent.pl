# 062_planned_dependent.pl: a rollback decided while a later step's action
# is planned but not yet sent waits for that action before it compensates
# the steps before it.
#
# Step 1 runs; steps 2 and 3 come after it.  When step 1 is done, the
# worker plans step 2's action, then finds step 3's target unusable (its
# user mapping was dropped meanwhile: 42704, not retried), so step 3 fails
# and the rollback is decided in the same turn, before step 2's action is
# sent.  Step 2's action is in flight then (planned, see StepCallState in
# src/model.h): step 1 is compensated only after step 2's action ended and
# step 2 was compensated, in reverse order, never alongside step 2's action.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
add_target($coord, 'bank_x', $part, 'bank_b', no_setup => 1);

my $gid = submit_saga(
	$coord,
	gid => 'planned-dependent',
	steps => [
		{
			name => 'first',
			target => 'bank_a',
			action => move_sql(1, -10, 'action', sleep => 2),
			compensation => move_sql(1, 10, 'compensation')
		},
		{
			name => 'second',
			target => 'bank_a',
			after => ['first'],
			action => move_sql(2, 10),
			compensation => move_sql(2, -10, 'compensation')
		},
		{
			name => 'third',
			target => 'bank_x',
			after => ['first'],
			action => move_sql(1, 5),
			compensation => move_sql(1, -5, 'compensation')
		}
	]);
# while step 1 sleeps: step 3's target becomes unusable
$coord->safe_psql('coord', 'DROP USER MAPPING FOR CURRENT_USER SERVER bank_x');

is(wait_saga($coord, $gid), 'aborted', 'the saga is rolled back');
is( step_rows($coord, $gid, 'step, status, last_sqlstate'),
	"1|compensated|\n2|compensated|\n3|failed|42704",
	'steps 1 and 2 compensated, step 3 failed on its target');

# the history, as "step|event" in order
my @events = map { join('|', (split /\|/)[ 0, 1 ]) }
  split /\n/, history_rows($coord, $gid);
my %at;
for my $i (0 .. $#events)
{
	$at{ $events[$i] } //= $i;
}
ok(defined $at{'2|action_started'} && defined $at{'3|action_failed'},
	'step 2 started, step 3 failed')
  or diag(join("\n", @events));
ok(defined $at{'|rollback_decided'} && $at{'2|action_started'} < $at{'|rollback_decided'},
	'step 2 was planned before the rollback was decided')
  or diag(join("\n", @events));
ok($at{'1|compensation_started'} > $at{'2|action_succeeded'},
	'step 1 is compensated after step 2\'s action ended')
  or diag(join("\n", @events));
ok($at{'1|compensation_started'} > $at{'2|compensation_done'},
	'step 1 is compensated after step 2 was')
  or diag(join("\n", @events));

# each branch applied once, and undone once
is( $part->safe_psql('bank_a',
		"SELECT step, op, trim_scale(delta) FROM ledger WHERE gid = '$gid' ORDER BY seq"),
	"1|action|-10\n2|action|10\n2|compensation|-10\n1|compensation|10",
	'bank_a: actions, then compensations in reverse order');
is($part->safe_psql('bank_b', "SELECT count(*) FROM ledger WHERE gid = '$gid'"),
	'0', 'step 3 never ran');

done_testing();
