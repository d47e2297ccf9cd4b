# 031_upgrade.pl: ALTER EXTENSION pg_saga UPDATE with sagas in flight.
#
# The coordinator database is created at the previous release,
# CREATE EXTENSION pg_saga VERSION '1.0'.  Sagas are submitted while their
# participant is down, so they sit retrying; the extension is updated under
# them (the worker keeps running); then the participant comes back and every
# saga completes, each step applied exactly once.  The update runs both
# scripts, 1.0--1.1, 1.1--1.2, 1.2--1.3, 1.3--1.4, 1.4--1.5, 1.5--1.6, 1.6--1.7, 1.7--1.8 and 1.8--1.9.  What 1.1 adds (saga.diagram,
# saga.explain, the new saga.stats columns, grants to pg_monitor) works on
# the updated database, so do the checks and cascades 1.2 rewrites and the
# one-statement saga.start of 1.3 and the at_tables argument of 1.4, and
# the saga keys of 1.5: sagas from before the update keep none, and keep
# the barrier records of their calls from before it, the new ones get a
# key and records of their own, and a purged saga's records go, whichever
# it is; and a definition (saga.define) started with values
# (saga.start(definition, args)) runs its version with those values, as
# the role that started it; saga.http of 1.6 makes requests; participant
# objects set up by 1.7 say so and run batches (run_steps); saga.step() of
# 1.8 is a C function, and makes the same rows; participant objects set
# up by 1.9 say so.  A database updated from 1.0 holds the same objects, indexes,
# constraints and triggers as one created at the current version directly.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my $coord = new_coordinator('coord');
my $part = new_participant('part');
create_bank($part, 'bank_a', { 1 => 100, 2 => 100 });
create_bank($part, 'bank_b', { 1 => 100, 2 => 100 });

$coord->safe_psql('postgres', 'CREATE DATABASE coord');
$coord->safe_psql('coord', "CREATE EXTENSION pg_saga VERSION '1.0'");
is( $coord->safe_psql('coord',
		"SELECT extversion FROM pg_extension WHERE extname = 'pg_saga'"),
	'1.0', 'the previous release is installed');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM pg_proc WHERE proname IN ('diagram', 'explain')
		    AND pronamespace = 'saga'::regnamespace"),
	'0', '1.0 has no saga.diagram nor saga.explain');
is( $coord->safe_psql('coord',
		"SELECT path FROM pg_extension_update_paths('pg_saga')
		  WHERE source = '1.0' AND target = '1.1'"),
	'1.0--1.1', 'there is an update path from 1.0 to 1.1');
add_target($coord, 'bank_a', $part, 'bank_a');
add_target($coord, 'bank_b', $part, 'bank_b');
my $worker = wait_for_worker($coord, 'coord');
ok($worker, 'the worker of the 1.0 database runs');

# A saga finished before the update: its history must survive it.
my $done = submit_saga(
	$coord,
	gid => 'before',
	via => 'steps',    # 1.0 has no saga.start
	steps => [ { target => 'bank_a', action => move_sql(2, -5), compensation => move_sql(2, 5, 'compensation') } ]);
is(wait_saga($coord, $done), 'succeeded', 'a saga finished at 1.0');

# --- sagas pending across the update ----------------------------------------
$part->stop;
my @gids;
foreach my $i (1 .. 3)
{
	push @gids, submit_saga(
		$coord,
		gid => "across-$i",
		via => 'steps',
		steps => [
			{
				target => 'bank_a',
				action => move_sql(1, -$i),
				compensation => move_sql(1, $i, 'compensation'),
				max_attempts => 1000
			},
			{
				target => 'bank_b',
				action => move_sql(1, $i),
				compensation => move_sql(1, -$i, 'compensation'),
				max_attempts => 1000
			}
		]);
}
ok( poll_until(
		$coord, 'coord',
		"SELECT bool_and(attempts >= 2) FROM saga.steps WHERE gid LIKE 'across-%' AND step = 1"),
	'the sagas retry while the participant is down');

$coord->safe_psql('coord', 'ALTER EXTENSION pg_saga UPDATE');
is( $coord->safe_psql('coord',
		"SELECT extversion FROM pg_extension WHERE extname = 'pg_saga'"),
	'1.9', 'updated to 1.9');
is( $coord->safe_psql('coord',
		"SELECT saga.http('post', '/charges', '{\"amount\": \"\$1\"}')::text"),
	'{"body": {"amount": "$1"}, "path": "/charges", "method": "POST"}',
	'1.6: saga.http makes a request value');
is( $coord->safe_psql('coord',
		"SELECT string_agg(status, ' ' ORDER BY gid) FROM saga.transactions WHERE gid LIKE 'across-%'"),
	'running running running', 'the sagas are still running after the update');
my $attempts = $coord->safe_psql('coord',
	"SELECT max(attempts) FROM saga.steps WHERE gid = 'across-1' AND step = 1");
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts > $attempts FROM saga.steps WHERE gid = 'across-1' AND step = 1"),
	'the worker keeps retrying them after the update');

$part->start;
foreach my $gid (@gids)
{
	is(wait_saga($coord, $gid), 'succeeded', "$gid succeeded after the update");
}
is_deeply(balances($part, 'bank_a'), { 1 => 94, 2 => 95 }, 'bank_a: each debit once');
is_deeply(balances($part, 'bank_b'), { 1 => 106, 2 => 100 }, 'bank_b: each credit once');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'),
	'', 'no step applied twice');
foreach my $i (1 .. 3)
{
	is(ledger_rows($part, 'bank_a', "across-$i") . ' / ' . ledger_rows($part, 'bank_b', "across-$i"),
		"1|action|1|-$i / 2|action|1|$i", "across-$i: one row per step");
}

# --- what 1.1 adds works on the updated database ----------------------------
my $diagram = $coord->safe_psql('coord', "SELECT saga.diagram('across-1')");
like($diagram, qr/^sequenceDiagram\n/, 'saga.diagram draws');
like($diagram, qr/participant T1 as bank_a\n\s+participant T2 as bank_b/, 'one participant per target');
like($diagram, qr/T1--xC: step 1: retry scheduled: action attempt 1 failed/,
	'the retries before the update are drawn');
like($diagram, qr/Note over C,T2: succeeded after /, 'and the outcome after it');
my $explain = $coord->safe_psql('coord', "SELECT * FROM saga.explain('before')");
like($explain, qr/^before \(saga mode\): succeeded, 1 of 1 steps done\n/, 'saga.explain of a saga finished at 1.0');
like($explain, qr/step 1 on bank_a: action succeeded: applied/, 'with its steps');
is( $coord->safe_psql('coord',
		"SELECT sagas || ' ' || retries_last_5min FROM saga.stats WHERE status = 'succeeded'")
	  =~ /^4 (\d+)$/ && $1 >= 6 ? 'ok' : 'bad',
	'ok', 'saga.stats counts the retries from before the update');
is( $coord->safe_psql('coord',
		"SELECT bool_and(has_table_privilege('pg_monitor', v, 'SELECT'))
		   FROM unnest(ARRAY['saga.transactions', 'saga.steps', 'saga.history', 'saga.stats']) v"),
	't', 'pg_monitor reads the views');

# --- what 1.2 rewrites holds on the updated database ------------------------
my ($rc, $out, $err) = $coord->psql('coord',
	"UPDATE saga.gtx SET status = 'done' WHERE gid = 'before'");
like($err, qr/violates check constraint "gtx_status_check"/,
	'a status pg_saga does not know is refused');
($rc, $out, $err) = $coord->psql('coord',
	"UPDATE saga.gtx_step SET status = 'finished' WHERE gtx_id = (SELECT id FROM saga.gtx WHERE gid = 'before')");
like($err, qr/violates check constraint "gtx_step_status_check"/,
	'so is a step status');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'saga'::regnamespace"),
	'0', 'steps and events carry no foreign key any more');
is( $coord->safe_psql('coord',
		"UPDATE saga.gtx SET finished_at = now() - interval '1 day' WHERE gid = 'before';
		 SELECT saga.purge('1 hour');
		 SELECT (SELECT count(*) FROM saga.gtx_step s WHERE NOT EXISTS (SELECT 1 FROM saga.gtx g WHERE g.id = s.gtx_id))
		     || ' ' || (SELECT count(*) FROM saga.gtx_event e WHERE NOT EXISTS (SELECT 1 FROM saga.gtx g WHERE g.id = e.gtx_id))
		     || ' ' || (SELECT count(*) FROM saga.history WHERE gid = 'before')"),
	"1
0 0 0", 'saga.purge still takes the steps and the history of a purged saga along');

# --- what 1.3 adds works on the updated database ----------------------------
$coord->safe_psql('coord', "SELECT saga.start(ARRAY[
		saga.step('bank_a', \$\$@{[ move_sql(2, -7) ]}\$\$, expect_rows => 1),
		saga.step('bank_b', \$\$@{[ move_sql(2, 7) ]}\$\$, expect_rows => 1)],
	gid => 'started', timeout => '1 hour')");
is(wait_saga($coord, 'started'), 'succeeded', 'a saga from saga.start runs on the updated database');
is(balances($part, 'bank_a')->{2} . ' ' . balances($part, 'bank_b')->{2}, '88 107',
	'its steps moved the money once');
is( $coord->safe_psql('coord',
		"SELECT deadline = submitted_at + interval '1 hour' FROM saga.transactions WHERE gid = 'started'"),
	't', 'its deadline counts from the submitting commit');

# --- what 1.4 adds works on the updated database ----------------------------
# The worker started on a 1.0 schema, without the result columns: it reads
# and writes results once the update added them (from its next turn on).
$coord->safe_psql('coord', "SELECT saga.start(ARRAY[
		saga.step('bank_a', 'SELECT id, balance FROM account WHERE id = 2', name => 'look'),
		saga.step('bank_b', \$\$SELECT current_setting('saga.results')::jsonb->'look' AS seen\$\$)],
	gid => 'results')");
is(wait_saga($coord, 'results'), 'succeeded', 'a saga with results runs on the updated database');
is($coord->safe_psql('coord', "SELECT saga.result('results')"),
	'{"look": [{"id": 2, "balance": 88}], "step2": [{"seen": [{"id": 2, "balance": 88}]}]}',
	'its results are kept and passed on');

# --- what 1.5 adds works on the updated database ----------------------------
my $coordinator_id = $coord->safe_psql('coord', 'SELECT id FROM saga.coordinator');
is( $coord->safe_psql('coord',
		"SELECT count(*) FROM saga.transactions WHERE gid LIKE 'across-%' AND saga_key IS NULL"),
	'3', 'the sagas from before the update have no saga key');
is( $part->safe_psql('bank_a',
		"SELECT count(*) || ' ' || string_agg(DISTINCT coordinator, ' ')
		   FROM saga_participant.barrier WHERE gid LIKE 'across-%'"),
	"3 $coordinator_id",
	'their barrier records, from before and after the update, carry the coordinator id alone');
my $key = $coord->safe_psql('coord', "SELECT saga_key FROM saga.transactions WHERE gid = 'started'");
like($key, qr/^\d+$/, 'a saga started after the update has a key');
is( $part->safe_psql('bank_b',
		"SELECT string_agg(coordinator, ' ') FROM saga_participant.barrier WHERE gid = 'started'"),
	"$coordinator_id:$key", 'and its barrier records carry it');
# 'before' was purged above (a saga of 1.0): its records are forgotten by gid
ok( poll_until(
		$part, 'bank_a',
		"SELECT count(*) FROM saga_participant.barrier WHERE gid = 'before'", '0'),
	'the worker forgot the barrier records of the saga from 1.0 it purged');
ok( poll_until($coord, 'coord', 'SELECT count(*) FROM saga.barrier_forget', '0'),
	'and its queue is empty');
is( $part->safe_psql('bank_a',
		"SELECT count(*) FROM saga_participant.barrier WHERE gid LIKE 'across-%'"),
	'3', 'the records of sagas not purged stay');
$coord->safe_psql('coord', "SELECT saga.start(ARRAY[
		saga.step('bank_a', \$\$@{[ move_sql(2, -1) ]}\$\$, expect_rows => 1)], gid => 'before')");
is(wait_saga($coord, 'before'), 'succeeded', 'its gid can be used again');
is(ledger_rows($part, 'bank_a', 'before'), "1|action|2|-5\n1|action|2|-1",
	'and the new saga really ran');

# definitions and bound values: a transfer of $2 from account $1, defined
# twice (version 2 writes its own tag), started with values
sub define_upgraded
{
	my ($op) = @_;
	return "SELECT saga.define('upgraded', ARRAY["
	  . 'saga.step(' . join(', ', map { quote_literal($_) } 'bank_a', move_sql('$1', '-$2::numeric', $op),
		move_sql('$1', '$2::numeric', "$op-comp")) . ', expect_rows => 1), '
	  . 'saga.step(' . join(', ', map { quote_literal($_) } 'bank_b', move_sql('$1', '$2::numeric', $op),
		move_sql('$1', '-$2::numeric', "$op-comp")) . ', expect_rows => 1)])';
}
is($coord->safe_psql('coord', define_upgraded('u1')), '1', 'saga.define on the updated database: version 1');
is($coord->safe_psql('coord', define_upgraded('u2')), '2', 'and a redefinition: version 2');
my $a_before = balances($part, 'bank_a');
my $b_before = balances($part, 'bank_b');
is($coord->safe_psql('coord', "SELECT saga.start('upgraded', ARRAY['1', '2.5'], gid => 'defined')"),
	'defined', 'saga.start(definition, args) on the updated database');
is(wait_saga($coord, 'defined'), 'succeeded', 'the saga of the definition succeeds');
is( $coord->safe_psql('coord',
		"SELECT args::text || ' ' || definition || ' ' || definition_version || ' ' || (saga_key IS NOT NULL)
		   FROM saga.transactions WHERE gid = 'defined'"),
	'{1,2.5} upgraded 2 true', 'it keeps its values, its version and a saga key');
is(ledger_rows($part, 'bank_a', 'defined') . ' / ' . ledger_rows($part, 'bank_b', 'defined'),
	'1|u2|1|-2.5 / 2|u2|1|2.5', 'its steps ran version 2 with the values bound');
is_deeply([ balances($part, 'bank_a')->{1}, balances($part, 'bank_b')->{1} ],
	[ $a_before->{1} - 2.5, $b_before->{1} + 2.5 ], 'and moved 2.5 once');

# --- the same objects as a fresh database ---------------------------------
$coord->safe_psql('postgres', 'CREATE DATABASE fresh');
$coord->safe_psql('fresh', 'CREATE EXTENSION pg_saga');
my $objects = q{
SELECT string_agg(d, E'\n' ORDER BY d) FROM (
	SELECT pg_describe_object(classid, objid, 0)
		   || coalesce(' ' || (SELECT md5(pg_get_functiondef(objid)) FROM pg_proc p
							   WHERE classid = 'pg_proc'::regclass AND p.oid = objid AND p.prokind = 'f'), '')
		   || coalesce(' ' || (SELECT md5(pg_get_viewdef(objid)) FROM pg_class c
							   WHERE classid = 'pg_class'::regclass AND c.oid = objid AND c.relkind = 'v'), '')
		   || coalesce(' ' || (SELECT c.relacl::text FROM pg_class c
							   WHERE classid = 'pg_class'::regclass AND c.oid = objid), '') AS d
	  FROM pg_depend
	 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_saga')) x};
my $updated = $coord->safe_psql('coord', $objects);
my $created = $coord->safe_psql('fresh', $objects);
is($updated, $created, 'an updated database has the objects of a fresh one');
my $tables = q{
SELECT string_agg(d, E'\n' ORDER BY d) FROM (
	SELECT 'index ' || indexdef AS d FROM pg_indexes WHERE schemaname = 'saga'
	UNION ALL
	SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
	  FROM pg_constraint WHERE connamespace = 'saga'::regnamespace
	UNION ALL
	SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger
	 WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'saga'::regnamespace)
	   AND NOT tgisinternal
	UNION ALL
	SELECT 'options ' || relname || ' ' || array_to_string(reloptions, ',') FROM pg_class
	 WHERE relnamespace = 'saga'::regnamespace AND reloptions IS NOT NULL) x};
is($coord->safe_psql('coord', $tables), $coord->safe_psql('fresh', $tables),
	'and the same indexes, constraints, triggers and storage options');
like($created, qr/function saga\.diagram\(text\)/, 'which include saga.diagram');

# --- what 1.7 adds: participant objects that run a batch as one statement ---
is( $part->safe_psql('bank_a',
		"SELECT saga_participant.version() || ' ' || count(*) FROM pg_proc
		  WHERE proname = 'run_steps' AND pronamespace = 'saga_participant'::regnamespace"),
	'1.9 2', 'the participant objects set up by 1.9 have run_steps() (1.7) and its form with values apart (1.9)');

# --- what 1.8 changes: saga.step() in C, with the same rows ---
is( $coord->safe_psql('coord',
		"SELECT string_agg(l.lanname || ' ' || coalesce(array_to_string(p.proconfig, ','), 'no settings'),
						   ', ' ORDER BY p.oid)
		   FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
		  WHERE p.proname = 'step' AND p.pronamespace = 'saga'::regnamespace"),
	'c no settings, c no settings', 'both saga.step() variants are C functions of 1.8');
is( $coord->safe_psql('coord',
		"SELECT saga.step('bank_a', 'UPDATE account SET balance = 1', name => 'one',
						  after => '{zero}', expect_rows => 1, timeout => '2 s')::text
		 || ' ' || saga.step('http', saga.http('post', '/charges', '{\"amount\": 1}'),
							 compensation => saga.http('delete', '/charges'))::text"),
	'(bank_a,"UPDATE account SET balance = 1",,,one,{zero},1,,00:00:02) '
	  . '(http,"{""body"": {""amount"": 1}, ""path"": ""/charges"", ""method"": ""POST""}",'
	  . '"{""path"": ""/charges"", ""method"": ""DELETE""}",,,,,,)',
	'1.8: saga.step() makes the rows it made as an SQL function');

# The worker of the fresh database runs too.
ok(wait_for_worker($coord, 'fresh'), 'a worker runs for the fresh database');

$coord->stop;
$part->stop;
done_testing();
