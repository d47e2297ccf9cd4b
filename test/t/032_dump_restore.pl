# 032_dump_restore.pl: pg_dump and pg_restore of a coordinator database.
#
# The sagas are data (pg_extension_config_dump marks the extension's tables),
# the targets are ordinary foreign servers and user mappings, and the
# coordinator id travels in saga.coordinator.  A coordinator database with a
# finished saga and a pending one (its participant is down) is dumped with
# pg_dump -Fc and restored with pg_restore into a new database of a second
# coordinator cluster.  After the restore the servers and user mappings are
# there, the history is whole, the coordinator id is the original one, and
# once the participant is back the pending saga completes on it exactly once.
# The saga keys travel too (the sagas' barrier identities on the
# participants), the key sequence goes on after them, and the queue of
# barrier records to forget is restored with the sagas.  So are the
# definitions, every version of each, and a saga's values: a saga started
# from a definition with values while the participant is down completes
# after the restore with those values and its version, pg_monitor still
# does not see the values, and a redefinition on the restored database
# takes the next version.
#
# Two coordinators holding the same pending saga would both run it: the
# original cluster is stopped before the participant comes back, as an
# operator moving a database must do (stop the old one, or drop its
# database).  Sharing the coordinator id, the barrier would still keep each
# step to one effect, but the two copies of the saga could disagree on its
# outcome.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();

# A saga purged before the dump, whose barrier records are kept an hour.
submit_saga(
	$coord,
	gid => 'purged-1',
	steps => [ { target => 'bank_a', action => move_sql(2, 0) } ]);
is(wait_saga($coord, 'purged-1'), 'succeeded', 'a saga finished');
my $purged_key = $coord->safe_psql('coord', "SELECT saga_key FROM saga.transactions WHERE gid = 'purged-1'");
is($coord->safe_psql('coord', "SET saga.forget_delay = '1h'; SELECT saga.purge('0')"),
	'1', 'and was purged');

my $done = submit_saga(
	$coord,
	gid => 'finished-1',
	payload => '{"order": 1}',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(2, -10),
			compensation => move_sql(2, 10, 'compensation'),
			name => 'debit'
		},
		{
			target => 'bank_b',
			action => move_sql(2, 10),
			compensation => move_sql(2, -10, 'compensation'),
			name => 'credit'
		}
	]);
is(wait_saga($coord, $done), 'succeeded', 'a saga finished before the dump');

# --- definitions, in versions ------------------------------------------------
# saga.define('xfer', ...): a debit of $2 from account $1 on bank_a and its
# credit on bank_b, ledger rows tagged $op
sub define_xfer
{
	my ($op, %opts) = @_;
	my $more = $opts{max_attempts} ? ", max_attempts => $opts{max_attempts}" : '';
	my $timeout = $opts{timeout} ? ', timeout => ' . quote_literal($opts{timeout}) : '';
	return "SELECT saga.define('xfer', ARRAY["
	  . 'saga.step(' . join(', ', map { quote_literal($_) } 'bank_a', move_sql('$1', '-$2::numeric', $op),
		move_sql('$1', '$2::numeric', "$op-comp")) . ", name => 'debit', expect_rows => 1$more), "
	  . 'saga.step(' . join(', ', map { quote_literal($_) } 'bank_b', move_sql('$1', '$2::numeric', $op),
		move_sql('$1', '-$2::numeric', "$op-comp")) . ", name => 'credit', expect_rows => 1$more)]$timeout)";
}
is($coord->safe_psql('coord', define_xfer('x1')), '1', 'xfer defined: version 1');
is($coord->safe_psql('coord', define_xfer('x2', max_attempts => 100000, timeout => '1 day')),
	'2', 'xfer redefined: version 2');
is($coord->safe_psql('coord',
		"SELECT saga.define('ping', ARRAY[saga.step('bank_a', 'SELECT \$1::int')], mode => 'msg')"),
	'1', 'ping defined: version 1');
# an HTTP target, and a definition holding requests (1.6)
$coord->safe_psql('coord', "CREATE SERVER pay FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'http://127.0.0.1:9/v1')");
is($coord->safe_psql('coord',
		q{SELECT saga.define('charge', ARRAY[saga.step('pay', saga.http('POST', '/charges', '{"amount": "$1"}'),
			saga.http('POST', '/charges/{$.step1.id}/refund'))])}),
	'1', 'charge (an HTTP step) defined: version 1');
my $definitions_image = q{
	SELECT string_agg(name || ' ' || version || ' ' || owner || ' ' || mode || ' '
					  || coalesce(timeout::text, '-') || ' ' || created_at || ' ' || steps::text,
					  E'\n' ORDER BY name, version) FROM saga.definitions};
my $definitions_before = $coord->safe_psql('coord', $definitions_image);

# --- a saga pending while its participant is down -----------------------------
$part->stop;
my $gid = submit_saga(
	$coord,
	gid => 'moving-1',
	payload => '{"order": 2}',
	steps => [
		{
			target => 'bank_a',
			action => move_sql(1, -25),
			compensation => move_sql(1, 25, 'compensation'),
			max_attempts => 100000
		},
		{
			target => 'bank_b',
			action => move_sql(1, 25),
			compensation => move_sql(1, -25, 'compensation'),
			max_attempts => 100000
		}
	]);
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts >= 2 FROM saga.steps WHERE gid = 'moving-1' AND step = 1"),
	'the saga retries while the participant is down');
is($coord->safe_psql('coord', "SELECT saga.start('xfer', ARRAY['2', '4'], gid => 'def-moving')"),
	'def-moving', 'a saga of xfer with values is started while the participant is down');
ok( poll_until(
		$coord, 'coord',
		"SELECT attempts >= 2 FROM saga.steps WHERE gid = 'def-moving' AND step = 1"),
	'it retries too');

my $coordinator_id = $coord->safe_psql('coord', 'SELECT id FROM saga.coordinator');
my $keys_before = $coord->safe_psql('coord',
	"SELECT string_agg(gid || ' ' || saga_key, ', ' ORDER BY gid) FROM saga.transactions");
my $history_before = $coord->safe_psql('coord',
	"SELECT count(*) FROM saga.history WHERE gid = 'finished-1'");

# --- dump, stop the original, restore elsewhere -------------------------------
my $dump = $PostgreSQL::Test::Utils::tmp_check . '/coord.dump';
$coord->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', 'coord' ],
	'pg_dump -Fc of the coordinator database');
$coord->stop;

my $coord2 = new_coordinator('coord2');
$coord2->safe_psql('postgres', 'CREATE DATABASE moved');
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run(
	[
		'pg_restore', '-d', $coord2->connstr('moved'), '--no-password', $dump
	],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'pg_restore succeeded') or diag $stderr;
is($stderr, '', 'pg_restore reported nothing');

is( $coord2->safe_psql('moved',
		"SELECT extversion FROM pg_extension WHERE extname = 'pg_saga'"),
	'1.9', 'the extension is restored at the current version');
is( $coord2->safe_psql('moved',
		"SELECT string_agg(srvname || ' ' || fdw.fdwname, ', ' ORDER BY srvname)
		   FROM pg_foreign_server s JOIN pg_foreign_data_wrapper fdw ON fdw.oid = s.srvfdw"),
	'bank_a pg_saga, bank_b pg_saga, pay pg_saga', 'the targets are restored');
my $port = $part->port;
is( $coord2->safe_psql('moved',
		"SELECT string_agg(o, ' ' ORDER BY o) FROM pg_foreign_server, unnest(srvoptions) o
		  WHERE srvname = 'bank_a'"),
	"dbname=bank_a host=127.0.0.1 port=$port", 'with their options');
is( $coord2->safe_psql('moved',
		"SELECT string_agg(srvname || ' ' || usename, ', ' ORDER BY srvname) FROM pg_user_mappings"),
	'bank_a postgres, bank_b postgres', 'and their user mappings');
is($coord2->safe_psql('moved', 'SELECT id FROM saga.coordinator'),
	$coordinator_id, 'the coordinator id is the original one');
is( $coord2->safe_psql('moved',
		"SELECT string_agg(gid || ' ' || status || ' ' || coalesce(payload::text, '-'), ', ' ORDER BY gid)
		   FROM saga.transactions"),
	'def-moving running -, finished-1 succeeded {"order": 1}, moving-1 running {"order": 2}',
	'the sagas are restored');
is($coord2->safe_psql('moved', $definitions_image), $definitions_before,
	'the definitions are restored, every version as it was');
is( $coord2->safe_psql('moved',
		"SELECT string_agg(name || ' ' || version || ' ' || owner, ', ' ORDER BY name, version) FROM saga.definitions"),
	'charge 1 postgres, ping 1 postgres, xfer 1 postgres, xfer 2 postgres', 'both of xfer and the ones of ping and charge');
is( $coord2->safe_psql('moved',
		"SELECT args::text || ' ' || definition || ' ' || definition_version FROM saga.transactions WHERE gid = 'def-moving'"),
	'{2,4} xfer 2', 'the saga of xfer keeps its values and its version');
$coord2->safe_psql('moved', 'CREATE ROLE watcher IN ROLE pg_monitor');
is( $coord2->safe_psql('moved',
		"SET ROLE watcher; SELECT count(*) || ' ' || count(args) FROM saga.transactions"),
	'3 0', 'pg_monitor sees the restored sagas, not their values');
is($coord2->safe_psql('moved', 'SET ROLE watcher; SELECT count(*) FROM saga.gtx_args'),
	'0', 'nor the table of values');
is( $coord2->safe_psql('moved',
		"SELECT count(*) FROM saga.history WHERE gid = 'finished-1'"),
	$history_before, 'with their history');
is( $coord2->safe_psql('moved',
		"SELECT string_agg(gid || ' ' || saga_key, ', ' ORDER BY gid) FROM saga.transactions"),
	$keys_before, 'and their saga keys');
is( $coord2->safe_psql('moved',
		"SELECT string_agg(target || ' ' || barrier, ', ') FROM saga.barrier_forget"),
	"bank_a $coordinator_id:$purged_key", 'the barrier records to forget are restored');
is(step_rows($coord2, 'finished-1', 'step, name, status', 'moved'),
	"1|debit|succeeded\n2|credit|succeeded", 'and their steps');

ok(wait_for_worker($coord2, 'moved'), 'a worker runs for the restored database');

# --- the participant comes back: the restored coordinator finishes the saga ---
$part->start;
is(wait_saga($coord2, $gid, 90, 'moved'), 'succeeded',
	'the pending saga completes after the restore');
is(step_rows($coord2, $gid, 'step, status', 'moved'), "1|succeeded\n2|succeeded",
	'both steps succeeded');
is(wait_saga($coord2, 'def-moving', 90, 'moved'), 'succeeded',
	'the pending saga of xfer completes after the restore');
is_deeply(balances($part, 'bank_a'), { 1 => 75, 2 => 86 }, 'bank_a debited once');
is_deeply(balances($part, 'bank_b'), { 1 => 125, 2 => 114 }, 'bank_b credited once');
is(ledger_rows($part, 'bank_a', $gid), '1|action|1|-25', 'bank_a: one ledger row');
is(ledger_rows($part, 'bank_b', $gid), '2|action|1|25', 'bank_b: one ledger row');
is(ledger_rows($part, 'bank_a', 'def-moving') . ' / ' . ledger_rows($part, 'bank_b', 'def-moving'),
	'1|x2|2|-4 / 2|x2|2|4', 'the saga of xfer ran version 2 with its restored values, once');
my $moving_key = $coord2->safe_psql('moved', "SELECT saga_key FROM saga.transactions WHERE gid = 'moving-1'");
is( $part->safe_psql('bank_a',
		"SELECT string_agg(DISTINCT coordinator, ' ') FROM saga_participant.barrier WHERE gid = 'moving-1'"),
	"$coordinator_id:$moving_key",
	'the barrier records carry the original coordinator id and the saga\'s key');

# New sagas keep working: ids continue after the restored ones.
my $new = submit_saga(
	$coord2,
	db => 'moved',
	gid => 'after-restore',
	steps => [ { target => 'bank_a', action => move_sql(2, -1) } ]);
is(wait_saga($coord2, $new, 90, 'moved'), 'succeeded', 'a new saga runs on the restored database');
is( $coord2->safe_psql('moved',
		"SELECT saga_key > (SELECT max(saga_key) FROM saga.transactions WHERE gid <> 'after-restore')
		   FROM saga.transactions WHERE gid = 'after-restore'"),
	't', 'with a key after every restored one');
is($coord2->safe_psql('moved', define_xfer('x3')), '3',
	'a redefinition on the restored database is version 3');
is($coord2->safe_psql('moved', "SELECT saga.start('xfer', ARRAY['1', '2'], gid => 'def-after')"),
	'def-after', 'and starts');
is(wait_saga($coord2, 'def-after', 90, 'moved'), 'succeeded', 'and succeeds');
is( $coord2->safe_psql('moved',
		"SELECT definition_version FROM saga.transactions WHERE gid = 'def-after'")
	  . ' ' . ledger_rows($part, 'bank_a', 'def-after'),
	'3 1|x3|1|-2', 'with version 3');
my $diagram = $coord2->safe_psql('moved', "SELECT saga.diagram('moving-1')");
like($diagram, qr/retry scheduled.*succeeded after/s, 'its diagram spans the move');

$coord2->stop;
$part->stop;
done_testing();
