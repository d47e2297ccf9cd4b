# 046_step_statement.pl: the step call statement prepared per connection.
#
# Each worker connection prepares the call statement once and executes it
# for every step call after.  With one connection per target, every call of
# the saga below goes through the same session:
#  - the participant's pg_stat_activity shows the prepared call, not the
#    step's SQL;
#  - a step whose SQL deallocates the statement (as a pooler that does not
#    keep sessions would lose it) does not make the next call fail for
#    good: that call is retried as a connection failure, sent as text, and
#    the saga succeeds with every step applied once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
$coord->safe_psql(
	'coord', q{
ALTER SYSTEM SET saga.max_connections_per_target = 1;
});
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');
reload_settings($coord, 'coord');

# --- what a participant's DBA sees -------------------------------------------
my $gid = submit_saga(
	$coord,
	gid => 'shown',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -1, 'action', sleep => 3),
		  compensation => move_sql(1, 1, 'compensation') } ]);
ok( poll_until(
		$part, 'bank_a',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'pg_saga'
		    AND wait_event = 'PgSleep'
		    AND query LIKE 'SELECT saga_participant.run($1, $2, $3, $4, $5, $6)%'}),
	'the participant shows the prepared call while the step runs');
is(wait_saga($coord, $gid), 'succeeded', 'that saga succeeds');

# --- the statement is lost from the session ----------------------------------
$gid = submit_saga(
	$coord,
	gid => 'lost-statement',
	steps => [
		{ target => 'bank_a', action => 'DEALLOCATE pgsaga_step; ' . move_sql(1, -5),
		  compensation => move_sql(1, 5, 'compensation') },
		{ target => 'bank_a', action => move_sql(2, 5),
		  compensation => move_sql(2, -5, 'compensation') } ]);
is(wait_saga($coord, $gid), 'succeeded', 'the saga succeeds');
like(
	$coord->safe_psql(
		'coord', "SELECT string_agg(detail, ' | ') FROM saga.history
				   WHERE gid = 'lost-statement' AND step = 2 AND event = 'retry_scheduled'"),
	qr/the step statement prepared on this connection is gone/,
	'the call after the loss was retried, saying why');
is(ledger_rows($part, 'bank_a', $gid), "1|action|1|-5\n2|action|2|5",
	'each step applied once');
is_deeply(balances($part, 'bank_a'), { 1 => 94, 2 => 105 }, 'bank_a balances');

$coord->stop;
$part->stop;
done_testing();
