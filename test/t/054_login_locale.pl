# 054_login_locale.pl: a refused login is told by its SQLSTATE, not by the
# language of the participant's messages.
#
# The participant's server runs with lc_messages = 'de_DE.UTF-8', a locale
# made here with Debian's localedef (package locales: its sources in
# /usr/share/i18n) into a private directory that LOCPATH names in that
# server's environment only; the German messages are PostgreSQL's own
# translation shipped in postgresql-NN (postgres-NN.mo).  The test first
# proves that the participant really speaks German, then:
#
#  - a wrong password in the user mapping: the step fails at once (one
#    attempt, not retried) with SQLSTATE 28P01 in saga.steps.last_sqlstate,
#    its error the participant's German text without libpq's LOCATION line;
#    the step before it is compensated and the saga ends aborted;
#  - a database that does not exist: 3D000, not retried either;
#  - a participant that does not answer at all (no SQLSTATE: libpq's own
#    failure) is still a transient 08001, retried;
#  - the other errors once recognised by their English text: an xa step on a
#    participant with max_prepared_transactions = 0 names the setting, and a
#    participant whose objects predate run_step() gets the hint to run
#    saga.setup_participant (but a step's own call of a missing function
#    does not).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my $PW = 'Pw-loc-4711';

# --- a German locale in a private directory ---------------------------------
my $locpath = PostgreSQL::Test::Utils::tempdir('locales');
my ($stdout, $stderr);
IPC::Run::run([ 'localedef', '-i', 'de_DE', '-f', 'UTF-8', "$locpath/de_DE.UTF-8" ],
	'>', \$stdout, '2>', \$stderr);
die "localedef could not make de_DE.UTF-8 (is Debian's package locales installed?): $stderr"
  unless -e "$locpath/de_DE.UTF-8/LC_MESSAGES";

my $coord = new_coordinator('coord');
create_coordinator_db($coord);

my $part = new_participant('part_de', start => 0);
$part->append_conf('postgresql.conf', "lc_messages = 'de_DE.UTF-8'\n");
{
	# only this server finds the locale
	local $ENV{LOCPATH} = $locpath;
	$part->start;
}
create_bank($part, 'bank_a', { 1 => 100 });
create_bank($part, 'bank_b', { 1 => 100 });
$part->safe_psql('postgres', qq{
SET log_statement = 'none';
CREATE ROLE loc_r LOGIN PASSWORD '$PW';
});
$part->safe_psql('bank_b', q{
GRANT SELECT, UPDATE ON account TO loc_r;
GRANT INSERT, SELECT ON ledger TO loc_r;
GRANT USAGE ON SEQUENCE ledger_seq_seq TO loc_r;
});
# loc_r logs in with its password over TCP; everyone else as before (trust)
my $hba = $part->data_dir . '/pg_hba.conf';
my $hba_text = PostgreSQL::Test::Utils::slurp_file($hba);
open(my $fh, '>', $hba) or die "cannot write $hba: $!";
print $fh "host all loc_r 127.0.0.1/32 scram-sha-256\n$hba_text";
close($fh);
$part->reload;

# the participant speaks German, to clients and in its log
my ($rc, $out, $err) = $part->psql('postgres', 'SELECT 1/0');
like($err, qr/Division durch null/i, 'the participant reports its errors in German');
unlike($err, qr/division by zero/, 'and not in English');

add_target($coord, 'bank_a', $part, 'bank_a');
add_target($coord, 'bank_b', $part, 'bank_b');
my $port = $part->port;
$coord->safe_psql('coord', qq{
SET log_statement = 'none';
CREATE SERVER bank_b_badpw FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$port', dbname 'bank_b');
CREATE USER MAPPING FOR CURRENT_USER SERVER bank_b_badpw OPTIONS (user 'loc_r', password 'wrong-$PW');
CREATE SERVER bank_b_ok FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$port', dbname 'bank_b');
CREATE USER MAPPING FOR CURRENT_USER SERVER bank_b_ok OPTIONS (user 'loc_r', password '$PW');
CREATE SERVER bank_nodb FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$port', dbname 'no_such_bank');
CREATE USER MAPPING FOR CURRENT_USER SERVER bank_nodb;
});

# a transfer: bank_a first, then the target under test
sub transfer
{
	my ($gid, $second, %opts) = @_;
	return submit_saga(
		$coord,
		gid => $gid,
		steps => [
			{
				target => 'bank_a',
				action => move_sql(1, -10),
				compensation => move_sql(1, 10, 'compensation'),
				expect_rows => 1
			},
			{
				target => $second,
				action => move_sql(1, 10),
				compensation => move_sql(1, -10, 'compensation'),
				expect_rows => 1,
				%opts
			}
		]);
}

# --- the right password works: the set-up is sound ---------------------------
my $gid = transfer('loc-ok', 'bank_b_ok');
is(wait_saga($coord, $gid), 'succeeded', 'with the right password the transfer succeeds');
is_deeply(balances($part, 'bank_b'), { 1 => 110 }, 'bank_b credited');

# --- a wrong password: refused, not retried ------------------------------------
$gid = transfer('loc-badpw', 'bank_b_badpw', max_attempts => 1000);
is(wait_saga($coord, $gid, 30), 'aborted',
	'a wrong password on a German participant: the saga rolls back (not retried without end)');
is(step_rows($coord, $gid, 'status, last_sqlstate, attempts', undef, 2), 'failed|28P01|1',
	'the login is refused with 28P01 in one attempt');
is(step_rows($coord, $gid, 'status', undef, 1), 'compensated', 'step 1 is compensated');
my $last_error = step_rows($coord, $gid, 'last_error', undef, 2);
like($last_error, qr/Passwort-Authentifizierung/, 'the error is the participant\'s own (German) text');
unlike($last_error, qr/28P01|auth\.c/, 'without the SQLSTATE or the LOCATION line libpq adds for it');
unlike($last_error, qr/\Q$PW\E/, 'and without the password');
is_deeply(balances($part, 'bank_a'), { 1 => 90 }, 'bank_a: only the first transfer');
is_deeply(balances($part, 'bank_b'), { 1 => 110 }, 'bank_b: only the first transfer');

# --- a database that does not exist: 3D000, not retried --------------------------
$gid = transfer('loc-nodb', 'bank_nodb', max_attempts => 1000);
is(wait_saga($coord, $gid, 30), 'aborted', 'a missing database: the saga rolls back');
is(step_rows($coord, $gid, 'status, last_sqlstate, attempts', undef, 2), 'failed|3D000|1',
	'refused with 3D000 in one attempt');

# --- no server at all: libpq's own failure, retried as 08001 ---------------------
my $free_port = PostgreSQL::Test::Cluster::get_free_port();
$coord->safe_psql('coord', qq{
CREATE SERVER bank_gone FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$free_port', dbname 'bank_b');
CREATE USER MAPPING FOR CURRENT_USER SERVER bank_gone;
});
$gid = transfer('loc-gone', 'bank_gone', max_attempts => 3);
is(wait_saga($coord, $gid, 60), 'aborted', 'no server: the saga rolls back after its attempts');
is(step_rows($coord, $gid, 'status, last_sqlstate, attempts', undef, 2), 'failed|08001|3',
	'a connection that libpq could not make is 08001, retried up to max_attempts');

# --- what else used to be told by English words ----------------------------------

# an xa step on a German participant that does not accept prepared transactions
my $noprep = new_participant('part_de_noprep', start => 0);
$noprep->append_conf('postgresql.conf', "lc_messages = 'de_DE.UTF-8'\nmax_prepared_transactions = 0\n");
{
	local $ENV{LOCPATH} = $locpath;
	$noprep->start;
}
create_bank($noprep, 'bank_c', { 1 => 100 });
add_target($coord, 'bank_c', $noprep, 'bank_c');
$gid = submit_saga(
	$coord,
	gid => 'loc-xa-noprep',
	mode => 'xa',
	steps => [ { target => 'bank_c', action => move_sql(1, 10), expect_rows => 1 } ]);
is(wait_saga($coord, $gid, 30), 'aborted', 'xa on a German participant without prepared transactions: aborted');
is(step_rows($coord, $gid, 'status, last_sqlstate, last_error'),
	"failed|55000|target \"bank_c\" does not accept prepared transactions: "
	  . 'set max_prepared_transactions above zero there',
	'the error names the target and the setting, whatever the participant\'s language');
is_deeply(balances($noprep, 'bank_c'), { 1 => 100 }, 'bank_c unchanged');

# a German participant whose objects predate run_step() (pg_saga before 1.4)
$part->safe_psql('postgres', 'CREATE DATABASE bank_old');
$part->safe_psql('bank_old', 'CREATE TABLE t (v int)');
add_target($coord, 'bank_old', $part, 'bank_old');
$part->safe_psql('bank_old', q{
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT oid::regprocedure FROM pg_proc
			 WHERE pronamespace = 'saga_participant'::regnamespace
			   AND proname IN ('run_step', 'run_batch', 'run_batch_step', 'version')
	LOOP
		EXECUTE 'DROP FUNCTION ' || f || ' CASCADE';
	END LOOP;
END $$;
});
$gid = submit_saga($coord, gid => 'loc-old-rows',
	steps => [ { target => 'bank_old', action => 'INSERT INTO t VALUES (3) RETURNING v' } ]);
is(wait_saga($coord, $gid, 30), 'aborted', 'a step that returns rows on an old German participant: aborted');
like(step_rows($coord, $gid, 'last_error'),
	qr/saga_participant\.run_step.*HINT: The participant objects on target "bank_old" predate step results.*setup_participant\('bank_old'\)/s,
	'the error says what to do, whatever the participant\'s language');
# and a missing function called by the step's own SQL is not taken for that
$gid = submit_saga($coord, gid => 'loc-user-fn',
	steps => [ { target => 'bank_b', action => 'SELECT no_such_function()' } ]);
is(wait_saga($coord, $gid, 30), 'aborted', 'a step calling a missing function of its own: aborted');
is(step_rows($coord, $gid, 'last_sqlstate'), '42883', 'with 42883');
unlike(step_rows($coord, $gid, 'last_error'), qr/predate/, 'and no hint about old participant objects');

done_testing();
