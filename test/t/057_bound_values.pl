# 057_bound_values.pl: a saga's values ($1 .. $n) bound on the participant.
#
#  - A transfer between two databases with bound amounts and ids, by
#    saga.start and by begin/add_step.
#  - A value holding a quote, a semicolon, $$ and a newline reaches the
#    participant byte for byte and changes nothing else.
#  - A step using $1, $3 beside one using $2, $3.
#  - A missing value is refused at start (22023) with nothing written.
#  - A value of the wrong type fails its step for a business reason, with
#    the participant's SQLSTATE, never retried, and the saga compensates.
#  - expect_rows counts the rows of a bound statement, alone and batched.
#  - A burst of sagas with values in one transaction goes in batches; the
#    values are in no statement text on the participant (log_statement =
#    all), values with colons, quotes, braces, commas, backslashes and
#    newlines arrive byte for byte, and a participant whose objects predate 1.9 gets such steps one
#    by one, with their values as parameters, as does a batch whose values
#    are not in its session (08P01).
#  - A participant whose objects predate bound values: the step fails with
#    a hint to run saga.setup_participant.
#  - The values are shown to the owner only, not to pg_monitor.
#  - CALL saga.run, of steps and of a definition: one statement that
#    answers the final status; refused inside a transaction block.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');
$part->safe_psql($_, 'CREATE TABLE note (id serial PRIMARY KEY, body text, tag text)')
  for qw(bank_a bank_b);

my @transfer = (
	{ target => 'bank_a', action => 'UPDATE account SET balance = balance - $1 WHERE id = $2',
	  compensation => 'UPDATE account SET balance = balance + $1 WHERE id = $2', expect_rows => 1 },
	{ target => 'bank_b', action => 'UPDATE account SET balance = balance + $1 WHERE id = $3',
	  compensation => 'UPDATE account SET balance = balance - $1 WHERE id = $3', expect_rows => 1 });

# a transfer, both ways of submitting
for my $via (qw(start steps))
{
	my $gid = submit_saga($coord, via => $via, steps => \@transfer, args => [ '7.25', '1', '2' ]);
	is(wait_saga($coord, $gid), 'succeeded', "bound transfer ($via) succeeded");
}
is_deeply(balances($part, 'bank_a'), { 1 => 85.5, 2 => 100 }, 'bank_a debited twice 7.25');
is_deeply(balances($part, 'bank_b'), { 1 => 100, 2 => 114.5 }, 'bank_b credited twice 7.25');

# a value that would break spliced SQL arrives byte for byte
my $nasty = "it's; DELETE FROM account; \$\$ \$x\$ --\nnext line \\ done";
my $gid = submit_saga($coord, steps => [
	{ target => 'bank_a', action => 'INSERT INTO note (body, tag) VALUES ($1, $2)',
	  compensation => 'DELETE FROM note WHERE tag = $2' } ],
	args => [ $nasty, 'nasty' ]);
is(wait_saga($coord, $gid), 'succeeded', 'saga with an awkward value succeeded');
is($part->safe_psql('bank_a', "SELECT body FROM note WHERE tag = 'nasty'"), $nasty,
	'the value arrived byte for byte');
is($part->safe_psql('bank_a', 'SELECT count(*) FROM account'), '2', 'nothing else changed');
is($part->safe_psql('bank_a',
	"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%DELETE FROM ' || 'account%'"), '0',
	'the value is in no statement text on the participant');

# $1, $3 beside $2, $3
$gid = submit_saga($coord, steps => [
	{ target => 'bank_a', action => 'INSERT INTO note (body, tag) VALUES ($1, $3)' },
	{ target => 'bank_b', action => 'INSERT INTO note (body, tag) VALUES ($2, $3)', after => [] } ],
	args => [ 'one', 'two', 'pair' ]);
is(wait_saga($coord, $gid), 'succeeded', 'steps using different values succeeded');
is($part->safe_psql('bank_a', "SELECT body FROM note WHERE tag = 'pair'"), 'one', 'step 1 got $1, $3');
is($part->safe_psql('bank_b', "SELECT body FROM note WHERE tag = 'pair'"), 'two', 'step 2 got $2, $3');

# a missing value: refused at start, nothing written
my $before = $coord->safe_psql('coord', 'SELECT count(*) FROM saga.gtx');
my ($rc, $out, $err) = $coord->psql('coord',
	build_start_sql(gid => 'missing', steps => \@transfer, args => [ '1', '1' ]),
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/22023: the action of step "step2" references \$3, but the saga has 2 values/,
	'a missing value is refused with 22023');
is($coord->safe_psql('coord', 'SELECT count(*) FROM saga.gtx'), $before, 'nothing written');

# a value of the wrong type: a business failure, compensated, not retried
$gid = submit_saga($coord, steps => \@transfer, args => [ 'ten', '1', '2' ]);
is(wait_saga($coord, $gid), 'aborted', 'a wrong type aborts the saga');
is($coord->safe_psql('coord',
	"SELECT status || ' ' || attempts || ' ' || last_sqlstate FROM saga.steps WHERE gid = '$gid' AND step = 1"),
	'failed 1 22P02', 'the step failed once with the participant\'s 22P02');
like($coord->safe_psql('coord', "SELECT last_error FROM saga.transactions WHERE gid = '$gid'"),
	qr/invalid input syntax for type numeric: "ten"/, 'the user sees the participant\'s error');
$gid = submit_saga($coord, steps => [
	$transfer[0],
	{ target => 'bank_b', action => 'UPDATE account SET balance = balance - $1 * 1000 WHERE id = $3' } ],
	args => [ '1', '1', '2' ]);
is(wait_saga($coord, $gid), 'aborted', 'a failing second step aborts the saga');
is($coord->safe_psql('coord', "SELECT string_agg(status, ',' ORDER BY step) FROM saga.steps WHERE gid = '$gid'"),
	'compensated,failed', 'the first step was compensated with its bound value');
is_deeply(balances($part, 'bank_a'), { 1 => 85.5, 2 => 100 }, 'bank_a back as it was');

# expect_rows counts the rows of a statement that binds values
$gid = submit_saga($coord, steps => \@transfer, args => [ '1', '99', '2' ]);
is(wait_saga($coord, $gid), 'aborted', 'a bound step that finds no row aborts the saga');
is($coord->safe_psql('coord',
	"SELECT status || ' ' || last_sqlstate FROM saga.steps WHERE gid = '$gid' AND step = 1"),
	'failed 21000', 'its step failed with 21000');

# a burst of sagas with values in one transaction: batched; among them one
# whose first step finds no row (expect_rows counts the rows of a bound
# statement) and one whose value is of the wrong type: each fails alone
my $sql = "BEGIN;\n";
for my $i (1 .. 30)
{
	$sql .= build_start_sql(gid => "burst-$i", steps => \@transfer, args => [ "0.$i", '2', '1' ]);
	$sql .= build_start_sql(gid => 'burst-no-row', steps => \@transfer, args => [ '1', '99', '1' ])
	  if $i == 10;
	$sql .= build_start_sql(gid => 'burst-wrong-type', steps => \@transfer, args => [ 'ten', '2', '1' ])
	  if $i == 20;
}
$sql .= "COMMIT;\n";
$coord->safe_psql('coord', $sql);
is(wait_saga($coord, "burst-$_"), 'succeeded', "burst saga $_ succeeded") for (1, 15, 30);
poll_until($coord, 'coord',
	"SELECT count(*) FROM saga.transactions WHERE gid LIKE 'burst-%' AND status = 'succeeded'", '30');
for my $case ([ 'burst-no-row', '21000' ], [ 'burst-wrong-type', '22P02' ])
{
	my ($failed_gid, $sqlstate) = @$case;
	is(wait_saga($coord, $failed_gid), 'aborted', "$failed_gid aborted");
	is($coord->safe_psql('coord',
		"SELECT string_agg(status || ' ' || coalesce(last_sqlstate, '-'), ', ' ORDER BY step)
		   FROM saga.steps WHERE gid = '$failed_gid'"),
		"failed $sqlstate, skipped -", "$failed_gid: its first step failed with $sqlstate, the second was skipped");
}
my $burst = 0;
$burst += "0.$_" for 1 .. 30;
is_deeply(balances($part, 'bank_a'), { 1 => 85.5, 2 => 100 - $burst }, 'bank_a: every burst amount debited');
is_deeply(balances($part, 'bank_b'), { 1 => 100 + $burst, 2 => 114.5 }, 'bank_b: every burst amount credited');
ok($part->safe_psql('bank_a',
	"SELECT count(*) FROM saga_participant.barrier WHERE gid LIKE 'burst-%'") == 30,
	'every burst step behind the barrier once');

# a batch's values travel apart from its SQL text (SPEC, "Bound values"):
# with every statement logged on the participant (bind parameters not, as
# log_parameter_max_length = 0 says), a burst of sagas goes in batches and
# no statement text holds one of its values
$part->safe_psql('bank_a', 'ALTER TABLE note ADD COLUMN xact xid8 DEFAULT pg_current_xact_id()');
# and what a step finds of a batch's values in its session: nothing, be
# the batch run, refused or cut (its values are another saga's)
$part->safe_psql('bank_a',
	"ALTER TABLE note ADD COLUMN seen text DEFAULT current_setting('saga_participant.batch_values', true)");
$part->append_conf('postgresql.conf', "log_statement = 'all'\nlog_parameter_max_length = 0");
# a reload, not a restart: a batch sent on a connection the restart broke
# is lost, and its steps then go alone (a step's fate never depends on
# its batch-mates), which would leave nothing here to share
$part->reload;
poll_until($part, 'bank_a', "SELECT current_setting('log_statement')", 'all');
my $log_from = -s $part->logfile;
sub note_burst
{
	my ($prefix, $n, $slow) = @_;
	my $burst_sql = "BEGIN;\n";
	$burst_sql .= build_start_sql(gid => "$prefix-$_", steps => [
		{ target => 'bank_a', action => 'INSERT INTO note (body, tag) SELECT $1, $2 FROM pg_sleep($3::float8)' } ],
		args => [ "$prefix-value-$_", $prefix, ($slow // 0) == $_ ? '0.5' : '0' ]) for 1 .. $n;
	$coord->safe_psql('coord', $burst_sql . "COMMIT;\n");
	ok(poll_until($coord, 'coord',
		"SELECT count(*) FROM saga.transactions WHERE gid LIKE '$prefix-%' AND status = 'succeeded'", "$n"),
		"$prefix: every saga succeeded");
	# (the query names no value: the log must hold none)
	is($part->safe_psql('bank_a', "SELECT string_agg(body, ',' ORDER BY length(body), body) FROM note WHERE tag = '$prefix'"),
		join(',', map { "$prefix-value-$_" } 1 .. $n), "$prefix: every value arrived");
	return split / /, $part->safe_psql('bank_a',
		"SELECT count(*) || ' ' || count(DISTINCT xact) FROM note WHERE tag = '$prefix'");
}
my ($notes, $note_xacts) = note_burst('apart', 20);
cmp_ok($note_xacts, '<', $notes, "the sagas shared remote transactions ($note_xacts for $notes)");
# a slow step: its round is cut by the allowance, and the steps after it
# go again in a round of their own, with their values apart again
($notes, $note_xacts) = note_burst('slow', 8, 3);
cmp_ok($note_xacts, '<', $notes, "those too shared remote transactions ($note_xacts for $notes)");
# values that a batch's values must carry intact: the colon after the
# round's token, and the quotes, braces, commas, backslashes and newlines
# of a text[] literal
my @odd = map { "odd-$_: it's {\"a,b\"} \\ \$\$\n:$_," } 1 .. 12;
my $odd_sql = "BEGIN;\n";
$odd_sql .= build_start_sql(gid => "odd-$_", steps => [
	{ target => 'bank_a', action => 'INSERT INTO note (body, tag) VALUES ($1, $2)' } ],
	args => [ $odd[ $_ - 1 ], 'odd' ]) for 1 .. 12;
$coord->safe_psql('coord', $odd_sql . "COMMIT;\n");
ok(poll_until($coord, 'coord',
	"SELECT count(*) FROM saga.transactions WHERE gid LIKE 'odd-%' AND status = 'succeeded'", '12'),
	'odd: every saga succeeded');
is($part->safe_psql('bank_a', "SELECT string_agg(body, '|' ORDER BY body COLLATE \"C\") FROM note WHERE tag = 'odd'"),
	join('|', sort @odd), 'odd: every value arrived byte for byte');
cmp_ok($part->safe_psql('bank_a', "SELECT count(DISTINCT xact) FROM note WHERE tag = 'odd'"), '<', 12,
	'odd: in shared remote transactions');
my $log = slurp_file($part->logfile, $log_from);
like($log, qr/saga_participant\.run_steps\(/, 'the batches were logged');
unlike($log, qr/(apart|slow)-value|odd-\d+: it/, 'and no statement text on the participant holds a value');

# a participant whose objects say 1.8 (which took a batch's values in its
# text) gets such steps one by one, each with its values as parameters
$part->safe_psql('bank_a',
	q{CREATE OR REPLACE FUNCTION saga_participant.version() RETURNS text LANGUAGE sql AS $$ SELECT '1.8'::text $$});
$part->restart;		# the worker reads version() once per connection
$log_from = -s $part->logfile;
($notes, $note_xacts) = note_burst('older', 10);
is($note_xacts, $notes, 'each in a remote transaction of its own');
unlike(slurp_file($part->logfile, $log_from), qr/older-value/, 'no statement text holds a value there either');

# objects that say 1.9 but lack run_steps() with its values apart (changed
# under a connection that read version() before): the batch is refused
# (42883), never run without its values, and its steps go one by one
$coord->safe_psql('coord', "SELECT saga.setup_participant('bank_a')");
$part->restart;
$coord->restart;	# a worker whose pools never saw a refusal
wait_for_worker($coord, 'coord');
$part->safe_psql('bank_a',
	'DROP FUNCTION saga_participant.run_steps(text[], text[], text[], text[], text[], text[], text[], text[],
											  text[], text[], text[], text[], text[], text)');
$log_from = -s $part->logfile;
($notes, $note_xacts) = note_burst('stale', 10);
is($note_xacts, $notes, 'each in a remote transaction of its own');
like(slurp_file($part->logfile, $log_from), qr/function saga_participant\.run_steps\(.*\) does not exist/,
	'after the batch was tried and refused');
$coord->safe_psql('coord', "SELECT saga.setup_participant('bank_a')");

# a batch whose values are not in its session (as behind a pooler that
# moves statements between sessions): take_batch_values() refuses it
# (08P01) before any step runs, and its steps go one by one, each with its
# values as parameters; every saga succeeds, its step applied once
$part->safe_psql('bank_a', q{
	CREATE OR REPLACE FUNCTION saga_participant.take_batch_values(values_token text)
	RETURNS text[] LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'the values of this batch are not in the session' USING ERRCODE = '08P01';
	END $$});
$coord->restart;	# a worker whose pools never saw a refusal (stale, above)
wait_for_worker($coord, 'coord');
$log_from = -s $part->logfile;
($notes, $note_xacts) = note_burst('lost', 10);
is($note_xacts, $notes, 'lost: each in a remote transaction of its own');
like(slurp_file($part->logfile, $log_from), qr/the values of this batch are not in the session/,
	'lost: after the batch was refused without its values');
is($part->safe_psql('bank_a',
	"SELECT count(*) || ' ' || count(DISTINCT gid) FROM saga_participant.barrier WHERE gid LIKE 'lost-%'"),
	'10 10', 'lost: each step behind the barrier once');
unlike(slurp_file($part->logfile, $log_from), qr/lost-value/, 'lost: no statement text holds a value');
$coord->safe_psql('coord', "SELECT saga.setup_participant('bank_a')");
is($part->safe_psql('bank_a',
	"SELECT count(*) FILTER (WHERE seen <> '') || ' of ' || count(*) FROM note WHERE tag IN ('apart', 'slow', 'odd', 'older', 'stale', 'lost')"),
	'0 of 70', "no step found a batch's values in its session, its own round's or another's");
$part->append_conf('postgresql.conf', "log_statement = 'none'");
$part->reload;

# the values are the owner's
$coord->safe_psql('coord', 'CREATE ROLE watcher IN ROLE pg_monitor');
is($coord->safe_psql('coord',
	"SET ROLE watcher; SELECT count(*) || ' ' || count(args) FROM saga.transactions WHERE gid LIKE 'burst-%'"),
	'32 0', 'pg_monitor sees the sagas, not their values');
is($coord->safe_psql('coord', "SELECT args FROM saga.transactions WHERE gid = 'burst-2'"),
	'{0.2,2,1}', 'the owner sees them');

# CALL saga.run: start, commit and wait in one statement
my $steps_sql = q{ARRAY[
	saga.step('bank_a', 'UPDATE account SET balance = balance - $1 WHERE id = $2',
			  'UPDATE account SET balance = balance + $1 WHERE id = $2', expect_rows => 1),
	saga.step('bank_b', 'UPDATE account SET balance = balance + $1 WHERE id = $3',
			  'UPDATE account SET balance = balance - $1 WHERE id = $3', expect_rows => 1)]::saga.step[]};
my $a_before = balances($part, 'bank_a')->{1};
my $b_before = balances($part, 'bank_b')->{2};
is($coord->safe_psql('coord',
	"CALL saga.run($steps_sql, gid => 'run-1', args => ARRAY['3', '1', '2'])"),
	'run-1|succeeded', 'saga.run returns the gid and the final status');
$coord->safe_psql('coord', "SELECT saga.define('xfer', $steps_sql)");
is($coord->safe_psql('coord', "CALL saga.run('xfer', ARRAY['4', '1', '2'], gid => 'run-2')"),
	'run-2|succeeded', 'saga.run of a definition returns its final status too');
is(balances($part, 'bank_a')->{1}, $a_before - 7, 'both runs debited bank_a');
is(balances($part, 'bank_b')->{2}, $b_before + 7, 'and credited bank_b');
my (undef, undef, $run_err) = $coord->psql('coord',
	"BEGIN; CALL saga.run($steps_sql, gid => 'run-3', args => ARRAY['5', '1', '2']); COMMIT;",
	on_error_stop => 1, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($run_err, qr/2D000/, 'saga.run inside a transaction block is refused (2D000)');
is($coord->safe_psql('coord', "SELECT count(*) FROM saga.transactions WHERE gid = 'run-3'"), '0',
	'and nothing of it was written');

my (undef, undef, $null_err) = $coord->psql('coord',
	"CALL saga.run('xfer', ARRAY['5', '1', '2'], gid => 'run-4', wait => NULL)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($null_err, qr/22004/, 'saga.run with a NULL wait is refused (22004)');
is($coord->safe_psql('coord', "SELECT count(*) FROM saga.transactions WHERE gid = 'run-4'"), '0',
	'before anything is written');

# a participant set up before bound values (and before version())
$part->safe_psql('bank_b', q{
	DROP FUNCTION saga_participant.version();
	DROP FUNCTION saga_participant.run_batch_step(text, text, int, text, text, bigint, text, text, int, text, text[], text[], text[]) CASCADE;
	DROP FUNCTION saga_participant.run_step(text, text, int, text, text, bigint, text, text, int, text, text[], text[], text[]) CASCADE});
# the worker reads what its objects say once per connection: new ones
$part->restart;
$gid = submit_saga($coord, steps => \@transfer, args => [ '1', '1', '2' ]);
is(wait_saga($coord, $gid), 'aborted', 'a bound step on an old participant fails');
like($coord->safe_psql('coord', "SELECT last_error FROM saga.steps WHERE gid = '$gid' AND step = 2"),
	qr/predate bound values \(pg_saga 1\.5\): run saga\.setup_participant\('bank_b'\)/,
	'with a hint to set the participant up again');
$coord->safe_psql('coord', "SELECT saga.setup_participant('bank_b')");
$gid = submit_saga($coord, steps => \@transfer, args => [ '1', '1', '2' ]);
is(wait_saga($coord, $gid), 'succeeded', 'after set-up, bound steps run there');

done_testing();
