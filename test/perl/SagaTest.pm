
=pod

=head1 NAME

SagaTest - helpers for the multi-cluster TAP tests of pg_saga

=head1 SYNOPSIS

  use SagaTest;

  my ($coord, $part) = SagaTest::standard_setup();   # coordinator db "coord",
                                                     # targets bank_a, bank_b
  my $gid = submit_saga($coord, gid => 'g1', steps => [
      { target => 'bank_a', action => move_sql(1, -30),
        compensation => move_sql(1, 30, 'compensation') },
      { target => 'bank_b', action => move_sql(1, 30),
        compensation => move_sql(1, -30, 'compensation') } ]);
  is(wait_saga($coord, $gid), 'succeeded');

=head1 DESCRIPTION

Built on PostgreSQL::Test::Cluster.  A coordinator node loads pg_saga with the
settings of test/regress.conf (fast retries) and restarts after a backend
crash.  Participant nodes are plain PostgreSQL listening on 127.0.0.1.  A bank
database holds

  account(id int primary key, balance numeric not null check (balance >= 0))
  ledger(seq, gid, step, op, id, delta, at)

and every step written with move_sql() adds one ledger row carrying
current_setting('saga.gid') and current_setting('saga.step'), in the same
statement as its balance change, so a branch applied twice shows up as two
ledger rows.  The ledger has no unique key on purpose: a duplicate must be
visible, not turned into an error.

=cut

package SagaTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(basename dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  new_coordinator new_participant create_coordinator_db create_bank add_target
  standard_setup quote_literal move_sql submit_saga build_saga_sql build_start_sql args_sql
  wait_saga saga_status is_final poll_until
  balances total_balance ledger_rows ledger_duplicates ledger_sum barrier_rows
  at_rows table_image
  worker_pid wait_for_worker step_rows history_rows reload_settings
  psql_as psql_as_ok
);

our $COORD_DB = 'coord';

# A failed check of a lifecycle transition (SAGA_CHECK_STATE in
# src/pg_saga.h, built in by scripts/test.sh) raises an ERROR, which the
# worker survives by restarting, so the test may pass all the same: it
# fails here instead, on that message in a server log of the test's nodes.
END
{
	my $status = $?;
	my $test = basename($0);
	$test =~ s/\.[^.]+$//;
	my @failed;
	foreach my $log (glob("$PostgreSQL::Test::Utils::log_path/${test}_*.log"))
	{
		open(my $fh, '<', $log) or next;
		while (my $line = <$fh>)
		{
			push @failed, $line if $line =~ /pg_saga state check failed/;
		}
		close($fh);
	}
	if (@failed)
	{
		diag("failed state checks in the server logs:\n", @failed);
		$? = 1 if $status == 0;
	}
}
my $regress_conf =
  File::Spec->catfile(dirname(__FILE__), '..', 'regress.conf');

my @final = qw(succeeded aborted failed);

=pod

=head2 Nodes

=over

=item init_params(%init_params)

%init_params with the encoding and locale of every cluster of the tests
added to extra: UTF8 and C.UTF-8 (present on every Debian), whatever the
environment's LANG and LC_* say (PostgreSQL::Test::Utils removes LC_ALL,
and a fresh machine has no LANG: initdb would make a SQL_ASCII cluster).

=cut

our @INITDB_LOCALE = ('--encoding=UTF8', '--locale=C.UTF-8');

sub init_params
{
	my (%params) = @_;
	$params{extra} = [ @INITDB_LOCALE, @{ $params{extra} // [] } ];
	return %params;
}

=item new_coordinator($name, %init_params)

Creates and starts a coordinator node: test/regress.conf appended,
restart_after_crash on.  %init_params go to init() (e.g. allows_streaming).
Pass start => 0 to leave it stopped.

=cut

sub new_coordinator
{
	my ($name, %params) = @_;
	my $start = delete $params{start} // 1;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(init_params(%params));
	$node->append_conf('postgresql.conf',
		PostgreSQL::Test::Utils::slurp_file($regress_conf));
	$node->append_conf(
		'postgresql.conf', qq{
# SagaTest coordinator
restart_after_crash = on
max_connections = 50
shared_buffers = 32MB
});
	$node->start if $start;
	return $node;
}

=item new_participant($name, %init_params)

Creates and starts a plain participant node on 127.0.0.1 (and its socket).

=cut

sub new_participant
{
	my ($name, %params) = @_;
	my $start = delete $params{start} // 1;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(init_params(%params));
	$node->append_conf(
		'postgresql.conf', qq{
# SagaTest participant
listen_addresses = '127.0.0.1'
max_connections = 50
max_prepared_transactions = 10
log_min_messages = info
});
	$node->start if $start;
	return $node;
}

=item create_coordinator_db($node, $db)

CREATE DATABASE $db and CREATE EXTENSION pg_saga in it.

=cut

sub create_coordinator_db
{
	my ($node, $db) = @_;
	$db //= $COORD_DB;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION pg_saga');
	return $db;
}

=item create_bank($node, $db, { id => balance, ... })

Creates database $db with tables account and ledger, and the accounts given.

=cut

sub create_bank
{
	my ($node, $db, $accounts) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql(
		$db, q{
CREATE TABLE account (
	id		int PRIMARY KEY,
	balance	numeric NOT NULL CHECK (balance >= 0)
);
CREATE TABLE ledger (
	seq		bigserial PRIMARY KEY,
	gid		text NOT NULL,
	step	int NOT NULL,
	op		text NOT NULL,
	id		int NOT NULL,
	delta	numeric NOT NULL,
	at		timestamptz NOT NULL DEFAULT clock_timestamp()
);
});
	my @rows = map { "($_, $accounts->{$_})" } sort { $a <=> $b } keys %$accounts;
	$node->safe_psql($db,
		'INSERT INTO account VALUES ' . join(', ', @rows))
	  if @rows;
	return;
}

=item add_target($coord, $server, $participant, $remote_db, %opts)

On the coordinator database ($opts{db}, default "coord"): CREATE SERVER
$server (pg_saga wrapper, 127.0.0.1, the participant's port), a user mapping
for the current user to the participant's bootstrap superuser, and
saga.setup_participant($server).

=cut

sub add_target
{
	my ($coord, $server, $part, $remote_db, %opts) = @_;
	my $db = $opts{db} // $COORD_DB;
	my $port = $part->port;
	my $ruser = $part->safe_psql('postgres', 'SELECT current_user');
	$coord->safe_psql(
		$db, qq{
CREATE SERVER $server FOREIGN DATA WRAPPER pg_saga
	OPTIONS (host '127.0.0.1', port '$port', dbname '$remote_db');
CREATE USER MAPPING FOR CURRENT_USER SERVER $server OPTIONS (user '$ruser');
});
	$coord->safe_psql($db, "SELECT saga.setup_participant('$server')")
	  unless $opts{no_setup};
	return;
}

=item standard_setup(%opts)

A coordinator "coord" (database "coord" with pg_saga) and a participant
"part" holding bank_a and bank_b, accounts 1 and 2 with 100 each (or
$opts{accounts}), registered as targets bank_a and bank_b.  Returns
($coord, $part).

=cut

sub standard_setup
{
	my (%opts) = @_;
	my $accounts = $opts{accounts} // { 1 => 100, 2 => 100 };
	my $coord = new_coordinator('coord', %{ $opts{coord_init} // {} });
	my $part = new_participant('part');
	create_bank($part, 'bank_a', $accounts);
	create_bank($part, 'bank_b', $accounts);
	create_coordinator_db($coord, $COORD_DB);
	add_target($coord, 'bank_a', $part, 'bank_a');
	add_target($coord, 'bank_b', $part, 'bank_b');
	return ($coord, $part);
}

=back

=head2 Sagas

=over

=item quote_literal($text)

=cut

sub quote_literal
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	$s =~ s/'/''/g;
	return "'$s'";
}

=item move_sql($id, $delta, $op = 'action', %opts)

One statement that adds $delta to account $id and writes a ledger row
(gid, step, $op, id, delta) from the saga.* settings.  $opts{sleep} seconds
of pg_sleep run first; $opts{also} is one more data-modifying statement run
with it (as a CTE).  The statement reports 1 row when the account exists.
$id and $delta are SQL: in a definition's step, move_sql('$1',
'-$2::numeric', 'action') moves the values the saga is started with.

=cut

sub move_sql
{
	my ($id, $delta, $op, %opts) = @_;
	$op //= 'action';
	my $sleep = $opts{sleep} // 0;
	my $from = $sleep ? " FROM (SELECT pg_sleep($sleep)) AS s" : '';
	my $also = $opts{also} ? "x AS ($opts{also}), " : '';
	return
	    "WITH ${also}l AS (INSERT INTO ledger (gid, step, op, id, delta) VALUES "
	  . "(current_setting('saga.gid'), current_setting('saga.step')::int, '$op', $id, $delta)) "
	  . "UPDATE account SET balance = balance + ($delta)$from WHERE id = $id";
}

=item submit_saga($node, %args)

Builds and submits a saga in one transaction on database $args{db}
(default "coord").  %args: gid, mode, timeout, payload, steps => [ { target,
action, compensation, confirm, name, after (array ref; [] for none),
expect_rows, max_attempts, timeout } ].  Returns the gid.

=cut

my $gid_counter = 0;
my $submit_counter = 0;

sub submit_saga
{
	my ($node, %args) = @_;
	my $db = $args{db} // $COORD_DB;
	my $gid = $args{gid} // sprintf('tap-%d-%d', $$, ++$gid_counter);
	my $via = $args{via} // (++$submit_counter % 2 ? 'steps' : 'start');
	my $sql = $via eq 'start'
	  ? build_start_sql(%args, gid => $gid)
	  : "BEGIN;\n" . build_saga_sql(%args, gid => $gid)
	  . "SELECT saga.submit(" . quote_literal($gid) . ");\nCOMMIT;\n";
	$node->safe_psql($db, $sql);
	return $gid;
}

=item build_start_sql(%args)

The same saga as one saga.start() statement.  submit_saga uses it for every
other saga (or as via => 'start' | 'steps' says), so every test runs both
ways of submitting, which must behave alike.

=cut


# The named arguments of a step after target and action, for add_step and
# saga.step alike.
sub step_options
{
	my ($s) = @_;
	my @a;
	foreach my $k (qw(compensation confirm name))
	{
		push @a, "$k => " . quote_literal($s->{$k}) if defined $s->{$k};
	}
	push @a,
	  'after => ARRAY['
	  . join(', ', map { quote_literal($_) } @{ $s->{after} })
	  . ']::text[]'
	  if defined $s->{after};
	foreach my $k (qw(expect_rows max_attempts))
	{
		push @a, "$k => $s->{$k}" if defined $s->{$k};
	}
	push @a, 'timeout => ' . quote_literal($s->{timeout}) . '::interval'
	  if defined $s->{timeout};
	return @a;
}

sub build_start_sql
{
	my (%args) = @_;
	my @steps;
	foreach my $s (@{ $args{steps} })
	{
		my @a = (quote_literal($s->{target}), quote_literal($s->{action}), step_options($s));
		push @steps, 'saga.step(' . join(', ', @a) . ')';
	}
	my @b = ('ARRAY[' . join(",\n  ", @steps) . ']::saga.step[]',
		'gid => ' . quote_literal($args{gid}));
	push @b, 'mode => ' . quote_literal($args{mode}) if defined $args{mode};
	push @b, 'timeout => ' . quote_literal($args{timeout}) . '::interval'
	  if defined $args{timeout};
	push @b, 'payload => ' . quote_literal($args{payload}) . '::jsonb'
	  if defined $args{payload};
	push @b, 'args => ' . args_sql($args{args}) if defined $args{args};
	return 'SELECT saga.start(' . join(', ', @b) . ");\n";
}

=item args_sql($values)

The values of a saga (args => [...], undef elements NULL) as a text[]
expression.

=cut

sub args_sql
{
	my ($values) = @_;
	return 'ARRAY['
	  . join(', ', map { defined $_ ? quote_literal($_) : 'NULL' } @$values)
	  . ']::text[]';
}

=item build_saga_sql(%args)

The saga.begin and saga.add_step calls of submit_saga, without submit.

=cut

sub build_saga_sql
{
	my (%args) = @_;
	my $gid = $args{gid};
	my @b = ('gid => ' . quote_literal($gid));
	push @b, 'mode => ' . quote_literal($args{mode}) if defined $args{mode};
	push @b, 'timeout => ' . quote_literal($args{timeout}) . '::interval'
	  if defined $args{timeout};
	push @b, 'payload => ' . quote_literal($args{payload}) . '::jsonb'
	  if defined $args{payload};
	push @b, 'args => ' . args_sql($args{args}) if defined $args{args};
	my $sql = 'SELECT saga.begin(' . join(', ', @b) . ");\n";
	foreach my $s (@{ $args{steps} })
	{
		my @a = ('gid => ' . quote_literal($gid));
		push @a, 'target => ' . quote_literal($s->{target});
		push @a, 'action => ' . quote_literal($s->{action}), step_options($s);
		$sql .= 'SELECT saga.add_step(' . join(', ', @a) . ");\n";
	}
	return $sql;
}

=item is_final($status)

=cut

sub is_final
{
	my ($status) = @_;
	return defined $status && grep { $_ eq $status } @final;
}

=item saga_status($node, $gid, $db)

The status in saga.transactions ('' if the saga does not exist).

=cut

sub saga_status
{
	my ($node, $gid, $db) = @_;
	$db //= $COORD_DB;
	return $node->safe_psql($db,
		'SELECT status FROM saga.transactions WHERE gid = ' . quote_literal($gid));
}

=item wait_saga($node, $gid, $timeout = 90, $db)

Waits with saga.wait (falling back to polling saga.status should wait
fail) until the saga is final or $timeout seconds pass; returns the status
then.  Once any wait or poll of the test timed out, every later one (here
and in poll_until and wait_for_worker) waits at most 20 seconds, so that a
broken build fails fast.

=cut

# After one wait timed out, later ones are short: a broken build fails the
# tests quickly instead of waiting out every timeout.
my $timed_out = 0;

sub default_timeout
{
	my ($requested) = @_;
	my $t = $requested // 90;
	return $timed_out && $t > 20 ? 20 : $t;
}

sub wait_saga
{
	my ($node, $gid, $timeout, $db) = @_;
	$timeout = default_timeout($timeout);
	$db //= $COORD_DB;
	my $deadline = time + $timeout;
	my $status = '';
	while (1)
	{
		my $left = $deadline - time;
		last if $left <= 0;
		my $chunk = $left < 10 ? $left : 10;
		my ($rc, $out, $err) = $node->psql($db,
			    'SELECT saga.wait(' . quote_literal($gid)
			  . sprintf(", '%.3f seconds')", $chunk));
		if ($rc == 0)
		{
			$status = $out;
			return $status if is_final($status);
		}
		else
		{
			note "saga.wait failed: $err";
			my ($rc2, $out2) = $node->psql($db,
				'SELECT status FROM saga.transactions WHERE gid = '
				  . quote_literal($gid));
			$status = $out2 if $rc2 == 0;
			return $status if is_final($status);
		}
		usleep(100_000);
	}
	diag "saga $gid not final after ${timeout}s: status '$status'";
	$timed_out = 1;
	return $status;
}

=item poll_until($node, $db, $query, $expected = 't', $timeout = 90)

Like poll_query_until, with a timeout in seconds; connection failures
(a restarting server) are retried.  Returns true on success.

=cut

sub poll_until
{
	my ($node, $db, $query, $expected, $timeout) = @_;
	$expected //= 't';
	$timeout = default_timeout($timeout);
	my $deadline = time + $timeout;
	my ($rc, $out, $err) = (0, '', '');
	while (time < $deadline)
	{
		# psql may end before it read its input (the server restarting after
		# a crash turns it away), and IPC::Run then dies of the broken pipe:
		# one more failed attempt, not the test's end
		($rc, $out, $err) = eval { $node->psql($db, $query) };
		($rc, $out, $err) = (-1, '', $@) if $@;
		return 1 if $rc == 0 && $out eq $expected;
		usleep(100_000);
	}
	diag "poll_until timed out: $query\nexpected: $expected\nlast: $out\nstderr: $err";
	$timed_out = 1;
	return 0;
}

=item psql_as($node, $db, $role, $sql, %opts)

$sql run on database $db of $node by role $role, on a connection of its own
(user=$role), with VERBOSITY verbose so that errors carry their SQLSTATE.
Returns ($rc, $stdout, $stderr).  $opts{errors}: an array ref that gets
every stderr that is not empty (e.g. to check later that no error text
showed a secret).

=cut

sub psql_as
{
	my ($node, $db, $role, $sql, %opts) = @_;
	my ($rc, $out, $err) = $node->psql(
		$db, "\\set VERBOSITY verbose\n$sql",
		connstr => $node->connstr($db) . " user=$role");
	push @{ $opts{errors} }, $err if $opts{errors} && $err;
	return ($rc, $out, $err);
}

=item psql_as_ok($node, $db, $role, $sql, %opts)

psql_as that must succeed: returns $stdout, dies with the error otherwise.

=cut

sub psql_as_ok
{
	my ($node, $db, $role, $sql, %opts) = @_;
	my ($rc, $out, $err) = psql_as($node, $db, $role, $sql, %opts);
	die "as $role: $sql\n$err" if $rc;
	return $out;
}

=back

=head2 Observations

=over

=item balances($node, $db)

Hash ref id => balance (as text, trailing zeros trimmed).

=cut

sub balances
{
	my ($node, $db) = @_;
	my %b = map { split /\|/ } split /\n/,
	  $node->safe_psql($db,
		'SELECT id, trim_scale(balance) FROM account ORDER BY id');
	return \%b;
}

=item total_balance($node, $db)

=cut

sub total_balance
{
	my ($node, $db) = @_;
	return $node->safe_psql($db,
		'SELECT coalesce(trim_scale(sum(balance)), 0) FROM account');
}

=item ledger_rows($node, $db, $gid)

"step|op|id|delta" lines of the saga, ordered.

=cut

sub ledger_rows
{
	my ($node, $db, $gid) = @_;
	return $node->safe_psql($db,
		'SELECT step, op, id, trim_scale(delta) FROM ledger WHERE gid = '
		  . quote_literal($gid)
		  . ' ORDER BY step, op, seq');
}

=item ledger_duplicates($node, $db)

"gid|step|op|count" lines of branches that wrote more than one ledger row.

=cut

sub ledger_duplicates
{
	my ($node, $db) = @_;
	return $node->safe_psql($db,
		'SELECT gid, step, op, count(*) FROM ledger GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY 1, 2, 3'
	);
}

=item ledger_sum($node, $db, $gid)

Net delta the saga left in the bank (0 if compensated).

=cut

sub ledger_sum
{
	my ($node, $db, $gid) = @_;
	return $node->safe_psql($db,
		'SELECT coalesce(trim_scale(sum(delta)), 0) FROM ledger WHERE gid = '
		  . quote_literal($gid));
}

=item barrier_rows($node, $db, $gid)

"step|op|origin" lines of the barrier records of the saga.

=cut

sub barrier_rows
{
	my ($node, $db, $gid) = @_;
	return $node->safe_psql($db,
		'SELECT step, op, origin FROM saga_participant.barrier WHERE gid = '
		  . quote_literal($gid)
		  . ' ORDER BY step, op');
}

=item at_rows($node, $db)

"undo lock": how many at_undo and at_lock rows (at mode) database $db
holds.

=cut

sub at_rows
{
	my ($node, $db) = @_;
	return $node->safe_psql($db,
		'SELECT (SELECT count(*) FROM saga_participant.at_undo) || \' \' || '
		  . '(SELECT count(*) FROM saga_participant.at_lock)');
}

=item table_image($node, $db, $table)

Every row of $table as jsonb text, one per line in a fixed order: for an
exact comparison of a table before and after.

=cut

sub table_image
{
	my ($node, $db, $table) = @_;
	return $node->safe_psql($db,
		"SELECT string_agg(to_jsonb(t)::text, E'\\n' ORDER BY to_jsonb(t)::text) FROM $table t");
}

=item step_rows($node, $gid, $columns = 'step, status', $db, $step)

"|"-separated lines from saga.steps for the saga, ordered by step (only
step $step if given).

=cut

sub step_rows
{
	my ($node, $gid, $columns, $db, $step) = @_;
	$columns //= 'step, status';
	$db //= $COORD_DB;
	return $node->safe_psql($db,
		"SELECT $columns FROM saga.steps WHERE gid = "
		  . quote_literal($gid)
		  . (defined $step ? " AND step = $step" : '')
		  . ' ORDER BY step');
}

=item history_rows($node, $gid, $db)

"step|event|detail" lines of saga.history for the saga, in order.

=cut

sub history_rows
{
	my ($node, $gid, $db) = @_;
	$db //= $COORD_DB;
	return $node->safe_psql($db,
		"SELECT coalesce(step::text, ''), event, coalesce(detail, '') FROM saga.history WHERE gid = "
		  . quote_literal($gid)
		  . ' ORDER BY at');
}

=item worker_pid($node, $db)

Pid of the pg_saga worker of $db ('' when none).

=cut

sub worker_pid
{
	my ($node, $db) = @_;
	$db //= $COORD_DB;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' AND datname = "
		  . quote_literal($db));
}

=item wait_for_worker($node, $db, $old_pid, $timeout = 90)

Waits for a pg_saga worker on $db whose pid is not $old_pid; returns its pid
('' on timeout).

=cut

sub wait_for_worker
{
	my ($node, $db, $old_pid, $timeout) = @_;
	$db //= $COORD_DB;
	$old_pid ||= 0;
	my $q =
	    "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' AND datname = "
	  . quote_literal($db)
	  . " AND pid <> $old_pid";
	return '' unless poll_until($node, 'postgres', $q, 't', $timeout);
	return worker_pid($node, $db);
}

=item reload_settings($node, $db, $target = 'bank_a')

pg_reload_conf(), and returns once the worker of $db has read the new
settings: the postmaster has reloaded (a new backend's pg_conf_load_time()
moved, so the postmaster has signalled its children), then a one-step saga
(SELECT 1 on $target) went through the worker, which reads a pending
reload at the top of its loop, before the work that wakes it.  Dies if
either does not happen within the usual timeout.

=cut

my $sync_counter = 0;

sub reload_settings
{
	my ($node, $db, $target) = @_;
	$db //= $COORD_DB;
	$target //= 'bank_a';
	my $before = $node->safe_psql($db, 'SELECT pg_conf_load_time()');
	$node->safe_psql($db, 'SELECT pg_reload_conf()');
	poll_until($node, $db, 'SELECT pg_conf_load_time() > ' . quote_literal($before) . '::timestamptz')
	  or die 'the postmaster did not reload its configuration';
	my $gid = sprintf('reload-sync-%d-%d', $$, ++$sync_counter);
	submit_saga($node, db => $db, gid => $gid,
		steps => [ { target => $target, action => 'SELECT 1' } ]);
	my $st = wait_saga($node, $gid, undef, $db);
	die "the saga after the reload ended '$st'" unless $st eq 'succeeded';
	return;
}

=back

=cut

1;
