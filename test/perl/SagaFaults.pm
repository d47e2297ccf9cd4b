
=pod

=head1 NAME

SagaFaults - a fault campaign for pg_saga: transfer sagas of every mode
under crashes, restarts and slow participants, with invariants checked at
the end

=head1 SYNOPSIS

  use SagaTest;
  use SagaFaults;

  my $r = run_campaign(sagas => 200, duration => 30, seed => 42);
  print campaign_report($r);
  is(scalar @{ $r->{violations} }, 0, 'no invariant violated');

  # or by hand, on nodes of your own
  my $c = SagaFaults->new(coord => $coord, banks => { bank_a => $p1, bank_b => $p1 });
  $c->setup;                       # bank databases, targets
  $c->submit_batch(20);            # 20 random transfers of random modes
  my $q = $c->wait_quiesce(120);   # seconds until every saga is final
  my @v = $c->check_invariants;    # what went wrong, if anything

=head1 DESCRIPTION

Builds on SagaTest (read it first).  A campaign moves money between the
accounts of several bank databases with sagas of the five modes: saga (debit
and credit, each with a compensation), tcc (the debit moves money to frozen,
the credit announces it in incoming; confirm settles, cancel undoes), xa
(debit and credit left prepared, then committed), msg (debit, then credit,
delivered until done) and at (debit and credit with no compensation: the
banks' account and ledger tables are enabled for at mode, and a rollback
restores their row images).  At sagas move money between accounts of their
own (ids accounts + 1 .. accounts + at_accounts, in every bank), which no
other mode writes: a write from outside at mode to a row an at saga changed
would make its rollback dirty (the saga failed, as it should), so with
separate accounts an at saga never ends failed.  Concurrent at sagas on one
account meet write isolation: the later step fails with 40001 and is
retried.

Half of the sagas whose two steps run in sequence (results_rate) pass data:
the debit ends with UPDATE ... RETURNING id and delta, and the credit takes
its amount from current_setting('saga.results') and writes the debit's
result, as it read it, into its ledger row (column got).

About a fifth of the sagas carry a business failure: a debit beyond the
balance (CHECK violation, 23514), or a credit to an account that does not
exist (expect_rows, 21000); in msg mode the failure is always in the first
step, so that a failed msg saga applied nothing.

A quarter of the saga, tcc and xa sagas have a deadline (saga.begin
timeout, 3 to 20 seconds), and about once a second the campaign calls
saga.abort() on a recent one (msg sagas excepted); either may roll a saga
back, which the invariants accept: an account must hold its start plus the
sagas that ended succeeded, whatever ended the others.

Every step statement writes one ledger row (gid, step, op, id, delta) with its
balance change, and sleeps as many seconds as the bank's knob table says: a
"slow participant" fault sets the knob beyond the steps' timeout (add_step
timeout => '1.5 s'), so attempts time out on the participant and are retried.

While sagas are submitted, faults are injected at random moments:

  kill9            the coordinator's pg_saga worker killed with SIGKILL
                   (the postmaster reinitializes, which also restarts any
                   bank database on the coordinator's cluster)
  coord_immediate  the coordinator stopped with -m immediate and restarted
  coord_twice      a saga whose steps take over a second each is submitted,
                   and the coordinator is stopped with -m immediate and
                   started twice while it runs (counted only if the saga
                   was still not final at the second stop)
  part_restart     a participant cluster stopped (fast or immediate) and
                   started again one to three seconds later
  part_kill9       a participant backend serving the worker killed with
                   SIGKILL, while it runs a call if one runs (a COMMIT
                   PREPARED when one is in flight): the participant
                   reinitializes
  stall            every process of a participant cluster stopped with
                   SIGSTOP for two to four seconds: it accepts connections
                   (the kernel does) but never answers, like a stalled
                   network, then SIGCONT
  slow             a bank's knob set to 2.5 s for two to four seconds
  http_down        the HTTP service (below) stopped for one to two and a
                   half seconds, then started again on its port

Each round of faults injects every kind once, in random order, so a short
campaign still sees them all (a kind that cannot be injected at that moment
is tried again later in the round).  With burst => N, N sagas are
submitted at once, by a psql running in the background while the faults go
on, halfway through.  A saga whose submitting transaction was cut by a
fault is looked up afterwards: it either exists (and counts) or never
existed.

Culprits: a fifth (culprit_rate) of the burst's saga and tcc sagas, the
modes whose steps share batches (xa and at steps go alone; msg, which
retries transient failures without limit, gets none), carry a third step
independent of the transfer, on a bank neither of its siblings starts on,
so that it shares a batch with other sagas' steps.  It writes a ledger row
and moves a unit, then fails every time: either it raises SQLSTATE 57014
itself (transient: retried up to culprit_attempts, 3, then given up on)
or it inserts a row that violates a DEFERRABLE INITIALLY DEFERRED foreign
key (culprit_child, checked at what would be the step's commit: 23503, a
business failure).  Its saga can only end aborted; the other sagas, the
innocents, must end exactly as they would without it.

HTTP steps: a quarter (http_rate) of the saga and tcc sagas end with a
step on the HTTP target svc, a small idempotent service the campaign runs
(SagaHttp.pm): a charge whose refund (its compensation) and capture (its
tcc confirm) name the charge by the id the action answered.

Once the faults stop, every saga must become final, and then:

  - every saga ended in a status the campaign allows it, derived from what
    it injected into it (see allowed_outcome): a business failure, a
    deadline, an accepted saga.abort(), and for running out of attempts on
    transient failures, the faults that overlapped it; and the reason
    the coordinator recorded for a rollback (saga.history) is one of those
    causes: an abort that was requested, a deadline that had passed, the
    step that carried the business failure, or a step that really used up
    its attempts;
  - every step ended in a status its saga's outcome allows (no step
    succeeded, confirmed or prepared in an aborted saga; every step
    succeeded, or confirmed in tcc, in a succeeded one; in a failed msg
    saga, the failed step failed and the later ones pending, to run on
    saga.retry), and the ledger
    shows each operation of each step as that outcome demands (tcc: a
    confirm exactly for the steps of a succeeded saga, a cancel for every
    try of an aborted one; xa: no row at all for an aborted saga);
  - money is conserved, and every account equals its start plus the
    transfers of the sagas that succeeded (tracked per gid by the script);
    frozen and incoming are back to zero;
  - no branch wrote its ledger row twice (count per gid, step and op), and
    each saga's ledger rows add up to its transfer if it succeeded, to zero
    otherwise;
  - no prepared transaction is left on any cluster;
  - at mode: no undo record or reservation (saga_participant.at_undo,
    at_lock) is left on any bank, and an aborted at saga left no ledger row
    (the restore deleted what its actions inserted);
  - results: for every succeeded saga that passed data, saga.steps.result
    of its debit is what the debit's own ledger row says it did (account
    and delta, also what the campaign asked), and its credit's ledger row
    holds exactly that result;
  - no barrier record or ledger row belongs to a saga the coordinator does
    not know;
  - culprits: a saga with a culprit ended aborted, rolled back for its
    culprit (a 57014 one given up on after exactly its max_attempts, each
    retry in its history, with SQLSTATE 57014 unless a fault's error came
    last; a deferred-FK one with 23503, after one attempt unless faults
    overlapped it) or for a cause that decided first; an innocent rolled
    back for a business failure carries the SQLSTATE of the one the
    campaign put in that step (23514 or 21000), and no innocent step ever
    failed or was retried with a culprit's error, whose text shows
    nowhere but in the culprit's own step and its saga's rollback; nothing
    a culprit wrote stayed (no ledger row of a culprit step, no row in
    culprit_child, the balances as the transfers alone make them), and a
    culprit's compensation, when an unknown outcome called for one, found
    its action never applied.
  - HTTP steps, from the service's own record: every key (one per saga
    key, step and operation) took effect at most once; the charge of a
    succeeded saga was made, never refunded, and in tcc captured; the
    charge of an aborted saga was never made, or made and refunded.

=cut

package SagaFaults;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use List::Util qw(shuffle sum0 max min);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use JSON::PP;
use SagaTest;
use SagaHttp;

our @EXPORT = qw(
  run_campaign campaign_report try_psql prepared_total worker_rss
  start_node restart_until_up
);

my @final = qw(succeeded aborted failed);
my %is_final = map { $_ => 1 } @final;
my $http_json = JSON::PP->new->canonical;

our @FAULT_KINDS = qw(kill9 coord_immediate coord_twice part_restart part_kill9 stall slow http_down);
our @MODES = qw(saga tcc xa msg at);

=pod

=head2 Helpers

=over

=item try_psql($node, $db, $sql, $timeout = 60)

Runs $sql; returns ($ok, $stdout, $stderr) and never dies: a server that is
down or restarting is an answer, not an error.

=cut

sub try_psql
{
	my ($node, $db, $sql, $timeout) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	my $rc = eval {
		$node->psql(
			$db, $sql,
			stdout => \$out,
			stderr => \$err,
			timeout => $timeout // 60,
			timed_out => \$timed_out);
	};
	if (!defined $rc)
	{
		$err .= "psql died: $@";
		$rc = 1;
	}
	$err .= 'psql timed out' if $timed_out;
	return ($rc == 0 && !$timed_out, $out, $err);
}

=item start_node($node)

Starts $node if the test framework thinks it is stopped, retrying a few
times; dies if it cannot.

=cut

sub start_node
{
	my ($node) = @_;
	return 1 if defined $node->{_pid};
	for my $try (1 .. 10)
	{
		return 1 if $node->start(fail_ok => 1);
		sleep 1;
		return 1 if defined $node->{_pid};
	}
	die 'cannot start node ' . $node->name;
}

=item restart_until_up($node, $db, $timeout = 60)

Waits until $db on $node answers (after a crash the postmaster
reinitializes by itself).

=cut

sub restart_until_up
{
	my ($node, $db, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	while (time < $deadline)
	{
		my ($ok) = try_psql($node, $db, 'SELECT 1', 10);
		return 1 if $ok;
		usleep(100_000);
	}
	return 0;
}

=item prepared_total(@nodes)

How many prepared transactions the nodes hold together (each node counted
once); undef if one cannot be asked.

=cut

sub prepared_total
{
	my (@nodes) = @_;
	my %seen;
	my $n = 0;
	foreach my $node (grep { !$seen{ $_->name }++ } @nodes)
	{
		my ($ok, $out) =
		  try_psql($node, 'postgres', 'SELECT count(*) FROM pg_prepared_xacts', 20);
		return undef unless $ok;
		$n += $out;
	}
	return $n;
}

=item worker_rss($node, $db)

(pid, resident set size in kB, its private part in kB: RssAnon) of the
pg_saga worker of $db, from /proc.  The resident set also counts the pages
of shared memory (shared_buffers) the worker touched, which grow until all
are touched: the private part is the one a leak would make grow.

=cut

sub worker_rss
{
	my ($node, $db) = @_;
	my ($ok, $pid) = try_psql($node, 'postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_saga worker' AND datname = "
		  . quote_literal($db));
	return (undef, undef, undef) unless $ok && $pid =~ /^\d+$/;
	open(my $fh, '<', "/proc/$pid/status") or return ($pid, undef, undef);
	my ($rss, $anon);
	while (<$fh>)
	{
		$rss = $1 if /^VmRSS:\s+(\d+)\s+kB/;
		$anon = $1 if /^RssAnon:\s+(\d+)\s+kB/;
	}
	close $fh;
	return ($pid, $rss, $anon);
}

=back

=head2 The campaign object

=over

=item SagaFaults->new(%opts)

coord (node), db (coordinator database, "coord"), banks (hash ref bank
name => node; the database and the target are both called by the bank's
name), participants (nodes that part_restart may stop; default every bank
node that is not the coordinator), accounts per bank (16), start balance
(100000), fail_rate (0.2), modes (array ref), step_timeout (.1.5 s.), slow
(knob value of a slow participant in seconds, 2.5), deadline_rate (0.25:
the share of saga, tcc and xa sagas given a timeout of 3 to 20 seconds),
max_attempts of the steps (20; xa_max_attempts 8 for xa steps, whose
prepared branches can deadlock on row locks until attempts run out; msg
steps 2), at_accounts (16: accounts per bank kept for at sagas, after the
others), results_rate (0.5: the share of sequential sagas whose credit
reads the debit's result), culprit_rate (0.2: the share of the burst's saga
and tcc sagas that carry a culprit), culprit_attempts (3: max_attempts of
a 57014 culprit), http_rate (0.25: the share of saga and tcc sagas that
end with a step on the HTTP target svc, an idempotent service the
campaign runs, see SagaHttp.pm; 0: no service).

=cut

sub new
{
	my ($class, %o) = @_;
	my $self = bless {
		coord => $o{coord},
		db => $o{db} // 'coord',
		banks => $o{banks},
		accounts => $o{accounts} // 16,
		start => $o{start} // 100000,
		fail_rate => $o{fail_rate} // 0.2,
		modes => $o{modes} // [@MODES],
		step_timeout => $o{step_timeout} // '1.5 s',
		slow => $o{slow} // 2.5,
		max_attempts => $o{max_attempts} // 20,
		xa_max_attempts => $o{xa_max_attempts} // 8,
		at_accounts => $o{at_accounts} // 16,
		results_rate => $o{results_rate} // 0.5,
		deadline_rate => $o{deadline_rate} // 0.25,
		culprit_rate => $o{culprit_rate} // 0.2,
		culprit_attempts => $o{culprit_attempts} // 3,
		http_rate => $o{http_rate} // 0.25,
		prefix => $o{prefix} // 'fc',
		intents => {},
		order => [],
		seq => 0,
		faults => { map { $_ => 0 } @FAULT_KINDS },
		log => [],
	}, $class;
	$self->{participants} = $o{participants}
	  // [ grep { $_->name ne $self->{coord}->name } $self->bank_nodes ];
	return $self;
}

sub bank_names { my ($self) = @_; return sort keys %{ $self->{banks} }; }

# distinct nodes holding banks
sub bank_nodes
{
	my ($self) = @_;
	my %seen;
	return grep { !$seen{ $_->name }++ } map { $self->{banks}{$_} } $self->bank_names;
}

sub note_event
{
	my ($self, $msg) = @_;
	push @{ $self->{log} }, sprintf('%.1f %s', time - ($self->{t0} // time), $msg);
	note $msg;
}

=item $c->setup

Creates every bank database (SagaTest::create_bank plus the tcc columns
frozen and incoming, and the knob table), the targets on the coordinator
(SagaTest::add_target) and, if missing, the coordinator database.

=cut

sub setup
{
	my ($self, %o) = @_;
	my %accounts = map { $_ => $self->{start} } 1 .. $self->{accounts} + $self->{at_accounts};
	foreach my $bank ($self->bank_names)
	{
		my $node = $self->{banks}{$bank};
		create_bank($node, $bank, \%accounts);
		$node->safe_psql(
			$bank, q{
ALTER TABLE account
	ADD COLUMN frozen numeric NOT NULL DEFAULT 0 CHECK (frozen >= 0),
	ADD COLUMN incoming numeric NOT NULL DEFAULT 0 CHECK (incoming >= 0);
-- a credit that reads the debit's result writes here what it read
ALTER TABLE ledger ADD COLUMN got jsonb;
-- the remote transaction that wrote the row: how much the steps shared
ALTER TABLE ledger ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE TABLE knob (slow float8 NOT NULL);
INSERT INTO knob VALUES (0);
-- culprits (see gen_saga): a parent table that stays empty, and a child
-- whose foreign key is checked only at commit, so that every child row
-- violates it then (23503)
CREATE TABLE culprit_parent (id int PRIMARY KEY);
CREATE TABLE culprit_child (
	id bigserial PRIMARY KEY,
	gid text NOT NULL,
	parent int NOT NULL REFERENCES culprit_parent DEFERRABLE INITIALLY DEFERRED);
});
	}
	create_coordinator_db($self->{coord}, $self->{db}) unless $o{no_coordinator_db};
	if ($self->{http_rate} > 0)
	{
		# the HTTP target: a service on 127.0.0.1 that keeps its own keys
		$self->{http} = SagaHttp->new(PostgreSQL::Test::Utils::tempdir() . '/svc');
		$self->{http}->start;
		my $url = $self->{http}->url;
		$self->{coord}->safe_psql($self->{db},
			"CREATE SERVER svc FOREIGN DATA WRAPPER pg_saga OPTIONS (url '$url')");
	}
	foreach my $bank ($self->bank_names)
	{
		add_target($self->{coord}, $bank, $self->{banks}{$bank}, $bank,
			db => $self->{db});
		# at steps change account and ledger (both keyed: id, seq); at_enable
		# refuses a table without a primary key, so this also checks them
		$self->{coord}->safe_psql($self->{db},
			"SELECT saga.setup_participant('$bank', at_tables => '{account, ledger}')");
	}
	return;
}

=item $c->total_start

The money in all accounts at the start.

=cut

sub total_start
{
	my ($self) = @_;
	my @banks = $self->bank_names;
	return $self->{start} * ($self->{accounts} + $self->{at_accounts}) * scalar(@banks);
}

# --- the step statements -----------------------------------------------------

# One statement: ledger row + balance change (+ frozen, incoming), after
# sleeping as long as the bank's knob says.  The changes are numbers or SQL
# expressions.  With returning => 1 the step answers its account and balance
# change as its result ([{"id": ..., "delta": ...}]), from a second
# statement that reads the ledger row back (the result is the last
# statement's rows).  With got => EXPR the ledger row keeps
# EXPR (what the step read of an earlier step's result) in its got column.
sub step_sql
{
	my ($id, $op, $dbal, $dfrozen, $dinc, $sleep, %r) = @_;
	my $extra = $sleep ? " + $sleep" : '';
	my @set = ("balance = balance + ($dbal)");
	push @set, "frozen = frozen + ($dfrozen)" if $dfrozen;
	push @set, "incoming = incoming + ($dinc)" if $dinc;
	my $got = $r{got} // 'NULL';
	my $ledger = 'INSERT INTO ledger (gid, step, op, id, delta, got) VALUES '
	  . "(current_setting('saga.gid'), current_setting('saga.step')::int, '$op', $id, $dbal, $got)";
	my $update = 'UPDATE account SET '
	  . join(', ', @set)
	  . " FROM (SELECT pg_sleep(slow$extra) FROM knob) AS s WHERE id = $id";
	return "$ledger; $update RETURNING id, ($dbal)::numeric AS delta" if $r{returning};
	return "WITH l AS ($ledger) $update";
}

# what a credit reads of its debit's result: the amount (the opposite of the
# debit's delta), and the whole result, written into its ledger row
my $credit_from_debit = q{(-(current_setting('saga.results')::jsonb #>> '{debit,0,delta}')::numeric)};
my $debit_result_read = q{current_setting('saga.results')::jsonb -> 'debit'};

# the result a debit of $delta on account $id answers, as jsonb prints it
sub debit_result_text
{
	my ($id, $delta) = @_;
	return qq([{"id": $id, "delta": $delta}]);
}

=item $c->gen_saga

A random transfer: { gid, mode, fail ('' or a description), fail_step,
fail_sqlstate, culprit (undef or { kind, step, bank, id, max_attempts }),
steps (for SagaTest::build_saga_sql), deltas ([bank, id, delta] applied if
it succeeds) }.  Options: mode, fail (true or false instead of at random),
deadline (false: none), sleep (seconds every saga-mode step sleeps),
culprits (true: a saga or tcc saga carries a culprit with probability
culprit_rate).

=cut

# The culprit of a burst saga: a third step, independent of the others (it
# starts with the debit, so that it shares a batch with other sagas' steps)
# on a bank its siblings do not start on, which writes a ledger row and
# moves a unit on an account of the transfers (rows that innocent steps
# lock too), and then fails, every time, in one of two ways:
#
#   57014  RAISE ... USING ERRCODE = '57014' (a statement cancelled, by the
#          step itself): transient, retried up to culprit_attempts
#          attempts, then given up on ("gave up after retries"), which
#          rolls the saga back
#   fk     a row of culprit_child, whose DEFERRABLE INITIALLY DEFERRED
#          foreign key finds no parent when it is checked, at what would be
#          the step's commit: a business failure (23503) at the first
#          attempt, which rolls the saga back
#
# Both messages name the table culprit_child or say "campaign culprit", so
# that check_invariants finds them wherever they land.  Its compensation
# (and tcc confirm) writes nothing: the culprit's writes never commit, so
# there is nothing to undo, and none of them may ever show in the ledger
# or the balances.
sub culprit_step
{
	my ($mode, $c, $timeout) = @_;
	my $writes =
	    'INSERT INTO ledger (gid, step, op, id, delta) VALUES '
	  . "(current_setting('saga.gid'), current_setting('saga.step')::int, 'action', $c->{id}, 1); "
	  . "UPDATE account SET balance = balance + 1 WHERE id = $c->{id}; ";
	my $fails =
	  $c->{kind} eq '57014'
	  ? q{DO $$BEGIN RAISE EXCEPTION 'campaign culprit of %: 57014 raised by the step itself', }
	  . q{current_setting('saga.gid') USING ERRCODE = '57014'; END$$}
	  : q{INSERT INTO culprit_child (gid, parent) VALUES (current_setting('saga.gid'), -1)};
	return {
		target => $c->{bank},
		name => 'culprit',
		after => [],
		timeout => $timeout,
		max_attempts => $c->{max_attempts},
		action => $writes . $fails,
		compensation => 'SELECT 1 WHERE false',
		($mode eq 'tcc' ? (confirm => 'SELECT 1 WHERE false') : ()),
	};
}

sub gen_saga
{
	my ($self, %o) = @_;
	my @banks = $self->bank_names;
	my $mode = $o{mode} // $self->{modes}[ int(rand(@{ $self->{modes} })) ];
	# at sagas have accounts of their own: a write of another mode (a
	# compensation, say) to a row an at saga changed would make its rollback
	# dirty, rightly, and the saga failed; with no such write an at saga
	# never ends failed, which the oracle can then demand
	my ($first, $n) = $mode eq 'at' ? ($self->{accounts} + 1, $self->{at_accounts}) : (1, $self->{accounts});
	my ($sb, $si, $db, $di);
	do
	{
		$sb = $banks[ int(rand(@banks)) ];
		$db = $banks[ int(rand(@banks)) ];
		$si = $first + int(rand($n));
		$di = $first + int(rand($n));
	} while ($sb eq $db && $si == $di);
	my $m = 1 + int(rand(50));
	my $fail = '';
	if (!defined $o{fail} ? rand() < $self->{fail_rate} : $o{fail})
	{
		$fail = ($mode eq 'msg' || rand() < 0.5) ? 'first' : 'last';
	}
	my $gid = sprintf('%s-%05d-%s', $self->{prefix}, ++$self->{seq}, $mode);

	# the failing variants: a debit beyond any balance (CHECK violation), a
	# debit or credit of an account that does not exist (expect_rows)
	my $debit_id = $si;
	my $debit = $m;
	my $credit_id = $di;
	if ($fail eq 'first')
	{
		if ($mode eq 'msg') { $debit_id = 999; $fail = 'first: no such account (21000)'; }
		else { $debit = 1_000_000_000; $fail = 'first: beyond the balance (23514)'; }
	}
	elsif ($fail eq 'last')
	{
		$credit_id = 999;
		$fail = 'last: no such account (21000)';
	}
	my $parallel = $mode ne 'msg' && ($o{parallel} // 1) && rand() < 0.5;
	# a credit reads the results of the steps it runs after: only in sequence
	my $results = !$parallel && ($o{results} // rand() < $self->{results_rate});
	my %dr = $results ? (returning => 1) : ();
	my %cr = $results ? (got => $debit_result_read) : ();
	my $credit = $results ? $credit_from_debit : $m;
	my %common = (
		expect_rows => 1,
		timeout => $self->{step_timeout},
		# xa: prepared branches of two sagas can wait on each other's row
		# locks, which only running out of attempts ends
		# at: a row another at saga holds is a transient 40001, retried like
		# the other transient failures (20 attempts); two at sagas that each
		# hold a row the other wants both retry until one runs out
		max_attempts => $mode eq 'msg' ? 2 : $mode eq 'xa' ? $self->{xa_max_attempts} : $self->{max_attempts});
	my @steps;
	my $sl = $o{sleep};
	if ($mode eq 'saga')
	{
		@steps = (
			{
				target => $sb, name => 'debit', %common,
				action => step_sql($debit_id, 'action', -$debit, 0, 0, $sl, %dr),
				compensation => step_sql($debit_id, 'compensation', $debit)
			},
			{
				target => $db, name => 'credit', %common,
				action => step_sql($credit_id, 'action', $credit, 0, 0, $sl, %cr),
				compensation => step_sql($credit_id, 'compensation', -$m)
			});
	}
	elsif ($mode eq 'tcc')
	{
		@steps = (
			{
				target => $sb, name => 'debit', %common,
				action => step_sql($debit_id, 'action', -$debit, $debit, 0, undef, %dr),
				confirm => step_sql($debit_id, 'confirm', 0, -$debit, 0),
				compensation => step_sql($debit_id, 'compensation', $debit, -$debit, 0)
			},
			{
				target => $db, name => 'credit', %common,
				action => step_sql($credit_id, 'action', 0, 0, $credit, undef, %cr),
				confirm => step_sql($credit_id, 'confirm', $m, 0, -$m),
				compensation => step_sql($credit_id, 'compensation', 0, 0, -$m)
			});
	}
	else    # xa, msg, at: actions only
	{
		@steps = (
			{
				target => $sb, name => 'debit', %common,
				action => step_sql($debit_id, 'action', -$debit, 0, 0, undef, %dr)
			},
			{
				target => $db, name => 'credit', %common,
				action => step_sql($credit_id, 'action', $credit, 0, 0, undef, %cr)
			});
	}
	$steps[1]{after} = [] if $parallel;

	# a step on the HTTP target (saga, tcc): a charge, refunded (cancelled)
	# by the id its action answered, or captured (tcc confirm); requests as
	# their JSON text, which saga.step takes for an HTTP target
	my $http;
	if ($self->{http} && ($mode eq 'saga' || $mode eq 'tcc') && rand() < $self->{http_rate})
	{
		my $req = sub {
			my ($method, $path, $body) = @_;
			return $http_json->encode({ method => $method, path => $path, (defined $body ? (body => $body) : ()) });
		};
		$http = { step => scalar(@steps) + 1 };
		push @steps, {
			target => 'svc', name => 'charge', timeout => $self->{step_timeout},
			max_attempts => $self->{max_attempts},
			action => $req->('POST', '/charges', { gid => $gid, amount => "$m" }),
			compensation => $req->('POST', '/charges/{$.charge.id}/refund'),
			($mode eq 'tcc' ? (confirm => $req->('POST', '/charges/{$.charge.id}/capture')) : ()),
		};
	}

	# a culprit (burst sagas of the batched modes, see culprit_step)
	my $culprit;
	if ($o{culprits} && ($mode eq 'saga' || $mode eq 'tcc') && rand() < $self->{culprit_rate})
	{
		# not on the debit's bank (nor on the credit's when it runs at once
		# too): a sibling starting on the same target goes alone, and the
		# culprit is to share a batch with other sagas' steps
		my %busy = map { $_ => 1 } $sb, ($parallel ? $db : ());
		my @free = grep { !$busy{$_} } @banks;
		@free = @banks unless @free;
		$culprit = {
			kind => rand() < 0.5 ? '57014' : 'fk',
			step => scalar(@steps) + 1,
			bank => $free[ int(rand(@free)) ],
			id => 1 + int(rand($self->{accounts})),
		};
		$culprit->{max_attempts} =
		  $culprit->{kind} eq '57014' ? $self->{culprit_attempts} : $common{max_attempts};
		push @steps, culprit_step($mode, $culprit, $self->{step_timeout});
	}
	my $timeout;
	$timeout = sprintf('%d seconds', 3 + int(rand(18)))
	  if $mode ne 'msg' && ($o{deadline} // 1) && rand() < $self->{deadline_rate};
	return {
		gid => $gid,
		mode => $mode,
		timeout => $timeout,
		fail => $fail,
		fail_step => $fail =~ /^first/ ? 1 : $fail =~ /^last/ ? 2 : undef,
		fail_sqlstate => $fail =~ /\((\w{5})\)$/ ? $1 : undef,
		culprit => $culprit,
		http => $http,
		steps => \@steps,
		deltas => $fail ? [] : [ [ $sb, $si, -$m ], [ $db, $di, $m ] ],
		# what the debit answers and the credit reads, if it succeeds
		result => $results ? debit_result_text($si, -$m) : undef,
	};
}

=item $c->submit_batch($n, %gen_opts)

Generates $n sagas and submits each in its own transaction, all in one psql
call.  Returns true if psql succeeded; otherwise the sagas stay "maybe"
until resolve_maybe looks them up.

=cut

# $n new sagas, recorded as "maybe": (SQL submitting each in its own
# transaction, their gids)
sub batch_sql
{
	my ($self, $n, %gen) = @_;
	my $sql = '';
	my @gids;
	for (1 .. $n)
	{
		my $s = $self->gen_saga(%gen);
		$self->{intents}{ $s->{gid} } = { %$s, state => 'maybe' };
		push @{ $self->{order} }, $s->{gid};
		push @gids, $s->{gid};
		$sql .=
		    "BEGIN;\n"
		  . build_saga_sql(gid => $s->{gid}, mode => $s->{mode}, timeout => $s->{timeout},
			steps => $s->{steps})
		  . 'SELECT saga.submit(' . quote_literal($s->{gid}) . ");\nCOMMIT;\n";
	}
	return ($sql, @gids);
}

sub submit_batch
{
	my ($self, $n, %gen) = @_;
	my ($sql, @gids) = $self->batch_sql($n, %gen);
	my ($ok, $out, $err) = try_psql($self->{coord}, $self->{db}, $sql, 60);
	if ($ok)
	{
		$self->{intents}{$_}{state} = 'yes' foreach @gids;
	}
	else
	{
		$self->{submit_errors}++;
		note "submission cut: $err";
	}
	return $ok;
}

=item $c->resolve_maybe

Looks up the sagas whose submitting psql failed: each exists (it committed)
or never existed.  Returns false if the coordinator cannot be asked.

=cut

sub resolve_maybe
{
	my ($self) = @_;
	my @maybe = grep { $self->{intents}{$_}{state} eq 'maybe' } @{ $self->{order} };
	return 1 unless @maybe;
	my ($ok, $out) = try_psql($self->{coord}, $self->{db},
		'SELECT gid FROM saga.gtx WHERE gid = ANY (ARRAY['
		  . join(', ', map { quote_literal($_) } @maybe)
		  . ']::text[])');
	return 0 unless $ok;
	my %exists = map { $_ => 1 } split /\n/, $out;
	$self->{intents}{$_}{state} = $exists{$_} ? 'yes' : 'gone' foreach @maybe;
	return 1;
}

sub submitted_gids
{
	my ($self) = @_;
	return grep { $self->{intents}{$_}{state} eq 'yes' } @{ $self->{order} };
}

# --- faults ------------------------------------------------------------------

=item $c->random_abort

Calls saga.abort() on a random recent saga (not msg); counts it as accepted,
refused (past its decision) or unknown (the coordinator could not answer),
and records the answer in the saga's intent (abort_calls).  Whether an
abort took effect is read back from saga.history at the end.

=cut

sub random_abort
{
	my ($self) = @_;
	my @recent = grep { $self->{intents}{$_}{state} eq 'yes' && $self->{intents}{$_}{mode} ne 'msg' }
	  @{ $self->{order} }[ max(0, $#{ $self->{order} } - 30) .. $#{ $self->{order} } ];
	return unless @recent;
	my $gid = $recent[ int(rand(@recent)) ];
	my ($ok, $out, $err) = try_psql($self->{coord}, $self->{db},
		'SELECT saga.abort(' . quote_literal($gid) . ", 'campaign')", 20);
	my $answer =
	    $ok ? 'accepted'
	  : $err =~ /past its decision/ ? 'refused'
	  : 'unknown';
	$self->{aborts}{$answer}++;
	push @{ $self->{intents}{$gid}{abort_calls} }, $answer;
	return;
}

# a stalled node answers nothing: leave it alone
sub node_stalled
{
	my ($self, $node) = @_;
	return $self->{stalled}{ $node->name };
}

sub set_knob
{
	my ($self, $bank, $value) = @_;
	return 0 if $self->node_stalled($self->{banks}{$bank});
	my ($ok) = try_psql($self->{banks}{$bank}, $bank, "UPDATE knob SET slow = $value", 20);
	return $ok;
}

# the pids of a node's postmaster and of its children, from /proc
sub node_pids
{
	my ($node) = @_;
	my $pm = $node->{_pid};
	return () unless defined $pm;
	my @pids = ($pm);
	foreach my $stat (glob '/proc/[0-9]*/stat')
	{
		open(my $fh, '<', $stat) or next;
		my $line = <$fh>;
		close $fh;
		next unless defined $line && $line =~ /^(\d+) \(.*\) \S+ (\d+) /s;
		push @pids, $1 if $2 == $pm;
	}
	return @pids;
}

# a fault's time window: from now until its repair (or a few seconds for
# the instant ones), for the oracle's "which faults overlapped a saga"
sub open_window
{
	my ($self, $kind, $seconds) = @_;
	my $w = { kind => $kind, from => time, to => defined $seconds ? time + $seconds : undef };
	push @{ $self->{windows} }, $w;
	return $w;
}

# the coordinator down with -m immediate, then up again
sub coord_bounce
{
	my ($self) = @_;
	my $coord = $self->{coord};
	$coord->stop('immediate', fail_ok => 1);
	usleep(int(200_000 + rand(800_000)));
	start_node($coord);
}

=item $c->inject($kind)

Injects one fault now; returns true if it was injected.  part_restart,
stall and slow leave a pending repair in $c->{repairs}, done by
repair_due.  Every fault opens a time window in $c->{windows}.

=cut

sub inject
{
	my ($self, $kind) = @_;
	my $coord = $self->{coord};
	if ($kind eq 'kill9')
	{
		my ($pid) = worker_rss($coord, $self->{db});
		return 0 unless defined $pid;
		return 0 unless kill('KILL', $pid);
		$self->open_window($kind, 3);
		$self->note_event("fault: kill -9 worker $pid");
	}
	elsif ($kind eq 'coord_immediate')
	{
		my $w = $self->open_window($kind);
		$self->note_event('fault: coordinator stopped with -m immediate');
		$self->coord_bounce;
		$w->{to} = time + 3;
		$self->note_event('coordinator started again');
	}
	elsif ($kind eq 'coord_twice')
	{
		# one saga, live across both restarts: two sequential steps of over
		# a second each, no failure, no deadline
		my $w = $self->open_window($kind);
		return 0 unless $self->submit_batch(1, mode => 'saga', fail => 0, deadline => 0, parallel => 0, sleep => 1.2);
		my $gid = $self->{order}[-1];
		$self->note_event("fault: coordinator restarted twice within $gid");
		$self->coord_bounce;
		restart_until_up($coord, $self->{db}, 60);
		wait_for_worker($coord, $self->{db}, 0, 30);
		my ($ok, $st) = try_psql($coord, $self->{db},
			'SELECT status FROM saga.gtx WHERE gid = ' . quote_literal($gid), 20);
		$self->coord_bounce;
		$w->{to} = time + 3;
		if (!$ok || $is_final{$st})
		{
			$self->note_event("$gid was final (" . ($st // '?') . ') before the second restart');
			return 0;
		}
		$self->{intents}{$gid}{restarted_within} = 2;
		$self->note_event('coordinator started again (twice)');
	}
	elsif ($kind eq 'part_restart')
	{
		my @up = grep { defined $_->{_pid} && !$self->node_stalled($_) } @{ $self->{participants} };
		return 0 unless @up;
		my $node = $up[ int(rand(@up)) ];
		my $mode = rand() < 0.5 ? 'immediate' : 'fast';
		my $w = $self->open_window($kind);
		$self->note_event('fault: participant ' . $node->name . " stopped ($mode)");
		$node->stop($mode, fail_ok => 1);
		push @{ $self->{repairs} }, {
			at => time + 1 + rand(2),
			what => 'start ' . $node->name,
			fn => sub {
				start_node($node);
				$w->{to} = time + 3;
				$self->note_event('participant ' . $node->name . ' started');
				1;
			},
		};
	}
	elsif ($kind eq 'part_kill9')
	{
		my @up = grep { defined $_->{_pid} && !$self->node_stalled($_) } @{ $self->{participants} };
		return 0 unless @up;
		my $node = $up[ int(rand(@up)) ];
		# a COMMIT PREPARED in flight, looked for during two seconds, else any
		# call in flight (a call commits at its end), else an idle connection
		# of the worker (batched calls are few and short)
		my ($pid, $what);
		my $until = time + 2;
		while (time < $until)
		{
			my ($ok, $out) = try_psql($node, 'postgres', q{
SELECT pid, state || ': ' || left(query, 40) FROM pg_stat_activity
WHERE application_name = 'pg_saga'
ORDER BY query ILIKE 'COMMIT PREPARED%' AND state = 'active' DESC, state = 'active' DESC LIMIT 1}, 10);
			($pid, $what) = split /\|/, $out, 2 if $ok && $out =~ /^\d+\|/;
			last if defined $pid && ($what =~ /^active: COMMIT PREPARED/i
				|| ($what =~ /^active/ && time >= $until - 1) || time >= $until - 0.1);
			usleep(10_000);
		}
		return 0 unless defined $pid && kill('KILL', $pid);
		$self->open_window($kind, 4);
		$self->{commit_kills}++ if $what =~ /^active: COMMIT PREPARED/i;
		$self->note_event('fault: participant ' . $node->name . " backend $pid killed with SIGKILL during: $what");
	}
	elsif ($kind eq 'stall')
	{
		my @up = grep { defined $_->{_pid} && !$self->node_stalled($_) } @{ $self->{participants} };
		return 0 unless @up;
		my $node = $up[ int(rand(@up)) ];
		my @pids = node_pids($node);
		return 0 unless @pids;
		my $w = $self->open_window($kind);
		# the postmaster first (it forks no more), then its children
		kill('STOP', $pids[0]);
		my @children = grep { $_ != $pids[0] } node_pids($node);
		kill('STOP', @children) if @children;
		$self->{stalled}{ $node->name } = 1;
		$self->note_event('fault: participant ' . $node->name . ' stalled (SIGSTOP, ' . scalar(@children) . ' backends)');
		push @{ $self->{repairs} }, {
			at => time + 2 + rand(2),
			what => 'resume ' . $node->name,
			fn => sub {
				kill('CONT', @children) if @children;
				kill('CONT', $pids[0]);
				delete $self->{stalled}{ $node->name };
				$w->{to} = time + 3;
				$self->note_event('participant ' . $node->name . ' resumed (SIGCONT)');
				1;
			},
		};
	}
	elsif ($kind eq 'http_down')
	{
		# the service stops for a second or two: its steps retry (58000)
		my $svc = $self->{http};
		return 0 unless $svc && !$self->{http_down};
		$svc->stop;
		$self->{http_down} = 1;
		my $w = $self->open_window($kind);
		$self->note_event('fault: the HTTP service is down');
		push @{ $self->{repairs} }, {
			at => time + 1 + rand(1.5),
			what => 'start the HTTP service',
			fn => sub {
				$svc->start;
				delete $self->{http_down};
				$w->{to} = time + 3;
				$self->note_event('the HTTP service is up again');
				return 1;
			},
		};
	}
		elsif ($kind eq 'slow')
	{
		my @banks = grep { !$self->{slow_banks}{$_} && !$self->node_stalled($self->{banks}{$_}) }
		  $self->bank_names;
		return 0 unless @banks;
		my $bank = $banks[ int(rand(@banks)) ];
		return 0 unless $self->set_knob($bank, $self->{slow});
		$self->{slow_banks}{$bank} = 1;
		my $w = $self->open_window($kind);
		$self->note_event("fault: $bank slow ($self->{slow} s per step)");
		push @{ $self->{repairs} }, {
			at => time + 2 + rand(2),
			what => "$bank fast again",
			fn => sub {
				return 0 unless $self->set_knob($bank, 0);
				delete $self->{slow_banks}{$bank};
				$w->{to} = time + 3;
				$self->note_event("$bank fast again");
				return 1;
			},
		};
	}
	else
	{
		die "unknown fault kind $kind";
	}
	$self->{faults}{$kind}++;
	$self->{last_fault_at} = time;
	return 1;
}

=item $c->repair_due($all)

Runs the repairs whose time came (every one with $all, retrying until
done).

=cut

sub repair_due
{
	my ($self, $all) = @_;
	my $deadline = time + 120;
	do
	{
		my @left;
		foreach my $r (@{ $self->{repairs} // [] })
		{
			if (($all || $r->{at} <= time) && $r->{fn}->())
			{
				next;
			}
			push @left, $r;
		}
		$self->{repairs} = \@left;
		usleep(200_000) if $all && @left;
	} while ($all && @{ $self->{repairs} } && time < $deadline);
	die 'repairs not done: ' . join(', ', map { $_->{what} } @{ $self->{repairs} })
	  if $all && @{ $self->{repairs} };
	return;
}

=item $c->start_burst($n)

Submits $n sagas at once, each in its own transaction, from a psql running
in the background (the faults go on meanwhile).  pump_burst, called from
the campaign's loop, notices when that psql ends; if a fault cut it, the
sagas that do not exist yet are submitted again by a new psql, until every
one is in.  finish_burst waits for that.

=cut

sub start_burst
{
	my ($self, $n) = @_;
	my @gids;
	my %sql;
	for (1 .. $n)
	{
		my ($sql, $gid) = $self->batch_sql(1, culprits => 1);
		$sql{$gid} = $sql;
		push @gids, $gid;
	}
	$self->{burst} = { pending => \@gids, sql => \%sql, t0 => time, cuts => 0 };
	$self->{burst_size} = $n;
	$self->{burst_gids} = [@gids];
	$self->burst_psql;
	$self->note_event("burst of $n sagas submitted in the background");
	return;
}

# a background psql submitting the burst's pending sagas
sub burst_psql
{
	my ($self) = @_;
	my $b = $self->{burst};
	my $file = PostgreSQL::Test::Utils::tempdir() . '/burst.sql';
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh $b->{sql}{$_} foreach @{ $b->{pending} };
	close $fh;
	$b->{err} = '';
	$b->{h} = IPC::Run::start(
		[ 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', $file,
		  '-d', $self->{coord}->connstr($self->{db}) ],
		'>', \my $out, '2>', \$b->{err});
	return;
}

=item $c->pump_burst

Returns true once the burst is in (or there is none).

=cut

sub pump_burst
{
	my ($self) = @_;
	my $b = $self->{burst} or return 1;
	if ($b->{h})
	{
		eval { $b->{h}->pump_nb };
		return 0 if $b->{h}->pumpable;
		my $ok = eval { $b->{h}->finish; 1 } && $b->{h}->result(0) == 0;
		delete $b->{h};
		if ($ok)
		{
			$self->{intents}{$_}{state} = 'yes' foreach @{ $b->{pending} };
			$b->{pending} = [];
		}
		else
		{
			$b->{cuts}++;
			note "burst cut: $b->{err}";
		}
	}
	if (@{ $b->{pending} })
	{
		my ($ok, $out) = try_psql($self->{coord}, $self->{db},
			'SELECT gid FROM saga.gtx WHERE gid = ANY (ARRAY['
			  . join(', ', map { quote_literal($_) } @{ $b->{pending} })
			  . ']::text[])', 30);
		return 0 unless $ok;
		my %exists = map { $_ => 1 } split /\n/, $out;
		$self->{intents}{$_}{state} = 'yes' foreach grep { $exists{$_} } @{ $b->{pending} };
		$b->{pending} = [ grep { !$exists{$_} } @{ $b->{pending} } ];
		if (@{ $b->{pending} })
		{
			$self->burst_psql;
			return 0;
		}
	}
	$self->{burst_seconds} = time - $b->{t0};
	$self->{burst_cuts} = $b->{cuts};
	$self->note_event(sprintf('burst in after %.1f s, %d psql runs cut by faults',
		$self->{burst_seconds}, $b->{cuts}));
	delete $self->{burst};
	return 1;
}

sub finish_burst
{
	my ($self) = @_;
	my $deadline = time + 300;
	until ($self->pump_burst)
	{
		die 'the burst could not be submitted in 300 s' if time > $deadline;
		usleep(100_000);
	}
	return;
}

=item $c->run_faults(duration => $s, sagas => $n, kinds => [...], batch => 10, gap => [1, 3], abort_every => 1, burst => 0)

Submits $n sagas spread over $s seconds while injecting faults every gap
seconds (uniform in the range) and calling saga.abort() on a recent saga
about every abort_every seconds (0: never), and a burst of that many
sagas at once halfway through, then repairs everything.

=cut

sub run_faults
{
	my ($self, %o) = @_;
	my $duration = $o{duration};
	my $nsagas = $o{sagas};
	my $kinds = $o{kinds} // [@FAULT_KINDS];
	my $batch = $o{batch} // 10;
	my ($gmin, $gmax) = @{ $o{gap} // [ 1, 3 ] };
	my $abort_every = $o{abort_every} // 1;
	my $next_abort = time + $abort_every;
	my $t0 = $self->{t0} = time;
	my $end = $t0 + $duration;
	my $generated = 0;
	my $next_fault = $t0 + ($o{first_fault} // 1.5);
	my $burst_at = $o{burst} ? $t0 + $duration / 2 : undef;
	my @round;
	while (time < $end)
	{
		if (defined $burst_at && time >= $burst_at)
		{
			$self->start_burst($o{burst});
			$burst_at = undef;
		}
		$self->pump_burst;
		$self->repair_due(0);
		my $now = time;
		my $due = int($nsagas * min(1, ($now - $t0) / $duration + 0.02)) - $generated;
		if ($due > 0)
		{
			my $b = min($due, $batch);
			$self->submit_batch($b);
			$generated += $b;
		}
		if (@$kinds && time >= $next_fault)
		{
			@round = shuffle(@$kinds) unless @round;
			my $kind = shift @round;
			if (!$self->inject($kind))
			{
				$self->note_event("fault $kind not injected now");
				# later in the round, or first in the next: every kind comes
				push @round, $kind;
			}
			$next_fault = time + $gmin + rand($gmax - $gmin);
		}
		if ($abort_every > 0 && time >= $next_abort)
		{
			$self->random_abort;
			$next_abort = time + $abort_every * (0.5 + rand());
		}
		usleep(100_000);
	}
	$self->submit_batch($nsagas - $generated) if $generated < $nsagas;
	$self->{fault_seconds} = time - $t0;
	$self->note_event('faults stop; repairing');
	$self->repair_due(1);
	$self->{faults_stopped} = time;
	$self->finish_burst;
	start_node($self->{coord});
	start_node($_) foreach $self->bank_nodes;
	foreach my $bank ($self->bank_names)
	{
		$self->set_knob($bank, 0) or die "cannot reset the knob of $bank";
	}
	return;
}

=item $c->wait_quiesce($bound)

After the faults: waits until every saga is final; returns the seconds it
took since the last fault ended (its repair done), or undef if not final
$bound seconds after the repairs.

=cut

sub wait_quiesce
{
	my ($self, $bound) = @_;
	my $t = $self->{faults_stopped} // time;    # after the last repair
	my $deadline = time + $bound;
	restart_until_up($self->{coord}, $self->{db}, $bound);
	while (time < $deadline)
	{
		if ($self->resolve_maybe)
		{
			my ($ok, $out) = try_psql($self->{coord}, $self->{db},
				"SELECT count(*) FROM saga.gtx WHERE status NOT IN ('succeeded', 'aborted', 'failed')");
			if ($ok && $out eq '0')
			{
				$self->{quiesce} = time - $t;
				return $self->{quiesce};
			}
		}
		usleep(200_000);
	}
	$self->{quiesce} = undef;
	return undef;
}

=item $c->wait_no_prepared($bound)

Waits until no cluster of the campaign holds a prepared transaction (the
worker's sweep of in-doubt ones runs every minute); returns the seconds it
took, or undef.

=cut

sub wait_no_prepared
{
	my ($self, $bound) = @_;
	my $t = time;
	while (time < $t + $bound)
	{
		my $n = prepared_total($self->{coord}, $self->bank_nodes);
		if (defined $n && $n == 0)
		{
			$self->{prepared_clear} = time - $t;
			return $self->{prepared_clear};
		}
		usleep(500_000);
	}
	$self->{prepared_clear} = undef;
	return undef;
}

# --- invariants ----------------------------------------------------------------

sub rows
{
	my ($node, $db, $sql) = @_;
	my $out = $node->safe_psql($db, $sql);
	return map { [ split /\|/, $_, -1 ] } grep { $_ ne '' } split /\n/, $out;
}

=item $c->allowed_outcome($intent, $obs)

The final statuses a saga may end in (hash ref status => 1), from what the
campaign injected into it: $intent (mode, fail, timeout) and $obs (abort:
saga.abort() took effect; overlapped: the fault kinds whose windows
overlap the saga's life).  msg: failed with a business failure, else
succeeded (msg sagas are never aborted and have no deadline).  saga, tcc,
xa: aborted with a business failure or an abort; succeeded or aborted with
a deadline, or when running out of attempts was possible (xa always:
prepared branches of two sagas can wait on each other's row locks until
attempts run out; at always: two sagas can wait on each other's
reservations; saga and tcc only when a fault overlapped it);
succeeded otherwise.  A saga with a culprit (saga and tcc only, never msg)
ends aborted, whatever else happened to it: its culprit step fails every
attempt.  Innocent sagas get nothing from culprits: a batch-mate's failure
is never a cause here, so an innocent's outcome is derived exactly as if
no culprit existed.  Never failed: for at that would take a dirty
rollback, which nothing in the campaign can cause.  Also returns whether
exhaustion was possible.

=cut

sub allowed_outcome
{
	my ($self, $in, $obs) = @_;
	return ({ failed => 1 }, 0) if $in->{mode} eq 'msg' && $in->{fail};
	return ({ succeeded => 1 }, 0) if $in->{mode} eq 'msg';
	# xa: prepared branches wait on each other's row locks; at: sagas wait
	# on each other's reservations (40001), both until attempts run out.
	# An at saga never ends failed: that takes a dirty rollback, a write to
	# its rows from outside at mode, and nothing writes the at accounts but
	# at sagas
	my $exhaust = $in->{mode} eq 'xa' || $in->{mode} eq 'at' || @{ $obs->{overlapped} } > 0;
	# a culprit fails every attempt: its saga cannot succeed
	return ({ aborted => 1 }, $exhaust) if $in->{fail} || $obs->{abort} || $in->{culprit};
	return ({ succeeded => 1, aborted => 1 }, $exhaust) if defined $in->{timeout} || $exhaust;
	return ({ succeeded => 1 }, $exhaust);
}

=item $c->check_invariants

Returns the list of violations (strings); empty when all hold.  Also fills
$c->{statuses} (gid => status) and $c->{counts}.

=cut

# the seconds of an interval text such as '7 seconds'
sub interval_seconds
{
	my ($t) = @_;
	return $t =~ /^(\d+(?:\.\d+)?) ?s/ ? $1 : die "unexpected interval $t";
}

# the max_attempts of a saga's forward action $n (1, the debit, by default)
sub step_attempts
{
	my ($self, $in, $n) = @_;
	return $in->{steps}[ ($n // 1) - 1 ]{max_attempts};
}

# Is this error text a culprit's own?  (57014 raised by the step, or the
# deferred foreign key of culprit_child.)  Returns the culprit kind.
sub culprit_text
{
	my ($text) = @_;
	return '57014' if $text =~ /campaign culprit/;
	return 'fk' if $text =~ /culprit_child/;
	return undef;
}

# the SQLSTATE classes of transient failures (see SPEC "Failures")
sub transient_sqlstate
{
	my ($code) = @_;
	return $code =~ /^(?:08|40|53|57)/;
}

# Which ledger operations each step of a final saga must show, by mode and
# status: op => count, the same for every step; 'pair' means as many
# compensations as actions, at most one of each.
my %ledger_rule = (
	saga => { succeeded => { action => 1, compensation => 0 }, aborted => 'pair' },
	tcc => {
		succeeded => { action => 1, confirm => 1, compensation => 0 },
		aborted => 'pair'
	},
	xa => { succeeded => { action => 1 }, aborted => { action => 0 } },
	msg => { succeeded => { action => 1 }, failed => { action => 0 } },
	# the restore deletes the ledger rows an at action inserted
	at => { succeeded => { action => 1 }, aborted => { action => 0 } });

# Why a saga may have been rolled back for "step $n failed: $detail", or
# undef if it may not.  An innocent step (the debit or the credit): for the
# business failure the campaign put in it (that step, not given up on, with
# the SQLSTATE of that failure: 23514 or 21000), or for transient failures
# up to its max_attempts when faults made that possible, and never with a
# culprit's error.  A culprit step: a 57014 culprit given up on after its
# max_attempts (transient failures, the last of them may be a fault's); a
# deferred-FK culprit for its 23503, at its first attempt unless faults
# overlapped the saga (checked in check_culprits), or, as any step, given
# up on when faults made that possible.
sub step_failure_reason
{
	my ($self, $in, $n, $detail, %o) = @_;
	my $sr = $o{step};
	my $cul = $in->{culprit};
	my $used_up = $o{gave_up} && $o{exhaust}
	  && $o{max_retry} >= step_attempts($self, $in, $n) - 2 - $o{lost_attempts};
	if ($cul && $n == $cul->{step})
	{
		if ($cul->{kind} eq '57014')
		{
			return $o{gave_up} && $o{max_retry} >= $cul->{max_attempts} - 1 - $o{lost_attempts}
			  ? 'culprit 57014 given up on' : undef;
		}
		# compensated when an earlier attempt's outcome was unknown (a
		# crash of the worker while it was in flight): a null compensation
		# then, checked in check_culprits; its SQLSTATE is then that of the
		# compensation's last failed try, if any (08001 under part_restart)
		my $st = $sr->{status} // '';
		return 'culprit deferred FK (23503)'
		  if !$o{gave_up} && (culprit_text($detail) // '') eq 'fk'
		  && (($st eq 'failed' && ($sr->{sqlstate} // '') eq '23503')
			|| ($st eq 'compensated' && ($sr->{sqlstate} eq '23503' || transient_sqlstate($sr->{sqlstate}))));
		return $used_up ? 'attempts used up' : undef;
	}
	# an innocent step never fails with a culprit's error
	return undef if defined culprit_text($detail);
	# a step compensated after its business failure (an earlier attempt's
	# outcome was unknown) may carry its compensation's error since
	return 'business'
	  if $in->{fail} && $n == $in->{fail_step} && !$o{gave_up}
	  && (($sr->{status} // '') ne 'failed' || ($sr->{sqlstate} // '') eq ($in->{fail_sqlstate} // ''));
	return $used_up ? 'attempts used up' : undef;
}

# A step's history, one line, for a violation's message.
sub step_history
{
	my ($self, $gid, $step) = @_;
	my ($ok, $out) = try_psql($self->{coord}, $self->{db},
		q{SELECT string_agg(format('[%s %s%s]', to_char(at, 'HH24:MI:SS.MS'), event,
			coalesce(': ' || left(detail, 80), '')), ' ' ORDER BY at)
		FROM saga.history WHERE gid = } . quote_literal($gid) . " AND coalesce(step, 0) IN (0, $step)", 30);
	return $ok ? " history: $out" : '';
}

# The culprits' own checks (see culprit_step): a culprit step never
# succeeded; when its own failure rolled its saga back and it ended failed,
# a 57014 culprit has used exactly its max_attempts and holds a transient
# SQLSTATE (57014 itself when no fault overlapped the saga: a fault's
# error may come last otherwise), and a deferred-FK culprit holds 23503
# after one attempt (more only when faults overlapped it).  And a
# culprit's error text shows only in its own step, its saga's rollback
# decision and last_error: never in another step of its saga, nor in any
# other saga (a batch-mate charged with it).
sub check_culprits
{
	my ($self, $status, $step_row, $gave_up, $rollback) = @_;
	my @v;
	my @windows = @{ $self->{windows} // [] };
	my %submitted = map { $_ => 1 } $self->submitted_gids;
	foreach my $gid (grep { $self->{intents}{$_}{culprit} } $self->submitted_gids)
	{
		my $in = $self->{intents}{$gid};
		my $cul = $in->{culprit};
		my $sr = $step_row->{$gid}{ $cul->{step} } // next;
		# once another cause decided the rollback, an attempt in flight that
		# fails is not retried (a 57014 culprit "gave up" after one attempt)
		next unless ($status->{$gid} // '') eq 'aborted' && $sr->{status} eq 'failed'
		  && ($rollback->{$gid}{detail} // '') =~ /^step $cul->{step} failed/;
		my $t = $self->{tx}{$gid};
		my $overlapped = $t
		  && grep { $_->{from} <= $t->{finished} && ($_->{to} // time) >= $t->{submitted} } @windows;
		if ($cul->{kind} eq '57014' && $gave_up->{$gid}{ $cul->{step} })
		{
			push @v, "$gid: 57014 culprit given up on after $sr->{attempts} attempts, its max_attempts is $cul->{max_attempts};"
			  . $self->step_history($gid, $cul->{step})
			  if $sr->{attempts} != $cul->{max_attempts};
			push @v, "$gid: 57014 culprit given up on with SQLSTATE '$sr->{sqlstate}' ($sr->{error})"
			  unless $sr->{sqlstate} eq '57014' || ($overlapped && transient_sqlstate($sr->{sqlstate}));
		}
		elsif ($cul->{kind} eq '57014')
		{
			push @v, "$gid: 57014 culprit failed without being given up on: $sr->{sqlstate} $sr->{error}";
		}
		elsif (!$gave_up->{$gid}{ $cul->{step} })
		{
			push @v, "$gid: deferred-FK culprit failed with '$sr->{sqlstate}' ($sr->{error}), not 23503"
			  if $sr->{sqlstate} ne '23503';
			push @v, "$gid: deferred-FK culprit failed after $sr->{attempts} attempts with no fault overlapping its saga"
			  if $sr->{attempts} != 1 && !$overlapped;
		}
	}

	# a culprit's action never took effect, so the barrier answers its
	# compensation (if the step had one: an earlier attempt's outcome was
	# unknown) as a null compensation, or as a repeat of one
	foreach my $r (rows($self->{coord}, $self->{db}, q{
SELECT gid, step, translate(left(detail, 200), E'|\n', '  ') FROM saga.history
WHERE event = 'compensation_done' AND detail !~ '^(null compensation|already applied)'}))
	{
		my ($gid, $step, $detail) = @$r;
		my $cul = $submitted{$gid} ? $self->{intents}{$gid}{culprit} : undef;
		push @v, "$gid step $step: the culprit's compensation found its action applied: $detail"
		  if $cul && $step == $cul->{step};
	}

	# where the culprits' errors landed
	my @where = rows($self->{coord}, $self->{db}, q{
SELECT gid, coalesce(step, 0), 'history ' || event, translate(left(detail, 300), E'|\n', '  ')
FROM saga.history WHERE detail ~ '(campaign culprit|culprit_child)'
UNION ALL
SELECT gid, step, 'last_error of the step', translate(left(last_error, 300), E'|\n', '  ')
FROM saga.steps WHERE last_error ~ '(campaign culprit|culprit_child)'
UNION ALL
SELECT gid, 0, 'last_error of the saga', translate(left(last_error, 300), E'|\n', '  ')
FROM saga.transactions WHERE last_error ~ '(campaign culprit|culprit_child)'});
	my $innocent_hits = 0;
	foreach my $r (@where)
	{
		my ($gid, $step, $where, $text) = @$r;
		my $kind = culprit_text($text);
		my $cul = $submitted{$gid} ? $self->{intents}{$gid}{culprit} : undef;
		# a saga-level row names the step: "step 3 failed: ..."
		$step = $1 if $step == 0 && $text =~ /^(?:step|delivery of step|\w+ of step) (\d+)/;
		my $whose = $text =~ /campaign culprit of (\S+?):/ ? $1 : undef;
		my $fine = $cul && $cul->{kind} eq $kind
		  && ($step == $cul->{step} || $step == 0)
		  && (!defined $whose || $whose eq $gid);
		next if $fine;
		$innocent_hits++;
		push @v, "$gid step $step: a culprit's error in its $where: $text";
	}
	$self->{culprit_error_elsewhere} = $innocent_hits;

	# a figure: how much the burst's saga and tcc actions shared remote
	# transactions (batches), as action ledger rows per transaction
	my %burst = map { $_ => 1 }
	  grep { $self->{intents}{$_}{mode} =~ /^(?:saga|tcc)$/ } @{ $self->{burst_gids} // [] };
	my ($nrows, $nxacts) = (0, 0);
	if (%burst)
	{
		my $list = join(', ', map { quote_literal($_) } sort keys %burst);
		foreach my $bank ($self->bank_names)
		{
			my ($r) = rows($self->{banks}{$bank}, $bank,
				"SELECT count(*), count(DISTINCT xid) FROM ledger WHERE op = 'action' AND gid = ANY (ARRAY[$list]::text[])");
			$nrows += $r->[0];
			$nxacts += $r->[1];
		}
	}
	$self->{burst_sharing} = [ $nrows, $nxacts ];

	# the culprits wrote nothing that stayed: no ledger row of a culprit
	# step (checked with the ledger), no row in culprit_child
	foreach my $bank ($self->bank_names)
	{
		my $n = $self->{banks}{$bank}->safe_psql($bank, 'SELECT count(*) FROM culprit_child');
		push @v, "$bank: $n rows in culprit_child, whose deferred foreign key each violates" if $n;
	}
	return @v;
}

sub check_invariants
{
	my ($self) = @_;
	my @v;
	my $coord = $self->{coord};
	$self->{expected_ledger} = {};
	my (%status, %tx);
	foreach my $r (rows($coord, $self->{db}, q{
SELECT gid, status, extract(epoch FROM submitted_at), extract(epoch FROM coalesce(finished_at, now())),
	coalesce(extract(epoch FROM deadline - submitted_at)::text, '')
FROM saga.transactions}))
	{
		$status{ $r->[0] } = $r->[1];
		$tx{ $r->[0] } = { submitted => $r->[2], finished => $r->[3], deadline_after => $r->[4] };
	}
	$self->{statuses} = \%status;
	$self->{tx} = \%tx;
	my (%steps, %step_row);
	foreach my $r (rows($coord, $self->{db}, q{
SELECT gid, step, status, attempts, coalesce(last_sqlstate, ''),
	translate(left(coalesce(last_error, ''), 300), E'|\n', '  ')
FROM saga.steps}))
	{
		$steps{ $r->[0] }{ $r->[1] } = $r->[2];
		$step_row{ $r->[0] }{ $r->[1] } =
		  { status => $r->[2], attempts => $r->[3], sqlstate => $r->[4], error => $r->[5] };
	}
	# what the coordinator recorded: aborts, rollback reasons, give-ups, retries
	my (%abort_rec, %rollback, %gave_up, %max_retry, %failed_detail);
	foreach my $r (rows($coord, $self->{db}, q{
SELECT h.gid, coalesce(h.step, 0), h.event, translate(left(coalesce(h.detail, ''), 300), E'|\n', '  '),
	coalesce(h.at >= t.deadline, false)
FROM saga.history h JOIN saga.transactions t USING (gid)
WHERE h.event IN ('abort_requested', 'rollback_decided', 'action_failed', 'retry_scheduled')
ORDER BY h.at}))
	{
		my ($gid, $step, $event, $detail, $past) = @$r;
		if ($event eq 'abort_requested') { $abort_rec{$gid} = 1; }
		elsif ($event eq 'rollback_decided')
		{
			$rollback{$gid} //= { detail => $detail, past_deadline => $past eq 't' };
		}
		elsif ($event eq 'action_failed' && $detail =~ /^gave up after retries/)
		{
			$gave_up{$gid}{$step} = 1;
			$failed_detail{$gid}{$step} = $detail;
		}
		elsif ($event eq 'action_failed')
		{
			$failed_detail{$gid}{$step} = $detail;
		}
		elsif ($event eq 'retry_scheduled' && $detail =~ /^(?:action|probe) attempt (\d+) failed/)
		{
			# xa: a probe of the target before a retry counts as an attempt
			$max_retry{$gid}{$step} = $1 if $1 > ($max_retry{$gid}{$step} // 0);
		}
	}
	my @gids = $self->submitted_gids;
	my %known = map { $_ => 1 } @gids;
	my @windows = @{ $self->{windows} // [] };

	# every saga final, in a status the campaign allows it, for a reason
	# it gave, and its steps with it
	my (%by_status, %by_mode_status, %expected, %reasons, %culprit_fate);
	foreach my $gid (@gids)
	{
		my $in = $self->{intents}{$gid};
		my $st = $status{$gid};
		my $mode = $in->{mode};
		if (!defined $st)
		{
			push @v, "$gid: submitted but unknown to the coordinator";
			$self->{lost}++;
			next;
		}
		$by_status{$st}++;
		$by_mode_status{$mode}{$st}++;
		if (!$is_final{$st})
		{
			push @v, "$gid: not final ($st)";
			next;
		}
		my @calls = @{ $in->{abort_calls} // [] };
		my $abort = $abort_rec{$gid} // 0;
		push @v, "$gid: saga.abort() accepted but not in its history"
		  if !$abort && grep { $_ eq 'accepted' } @calls;
		push @v, "$gid: an abort in its history that no call of saga.abort() may have made"
		  if $abort && !grep { $_ ne 'refused' } @calls;
		my $t = $tx{$gid};
		my @overlapped = map { $_->{kind} }
		  grep { $_->{from} <= $t->{finished} && ($_->{to} // time) >= $t->{submitted} } @windows;
		my ($allowed, $exhaust) = $self->allowed_outcome($in, { abort => $abort, overlapped => \@overlapped });
		# an attempt in flight when the coordinator went down is an attempt
		# whose failure no retry_scheduled event tells of: one per crash of
		# the worker (kill9, coord_immediate), two for coord_twice
		my $lost_attempts = (grep { $_ eq 'kill9' || $_ eq 'coord_immediate' } @overlapped)
		  + 2 * (grep { $_ eq 'coord_twice' } @overlapped);
		my $causes = join(', ',
			($in->{fail} ? "business failure ($in->{fail})" : ()),
			($abort ? 'abort' : ()),
			(defined $in->{timeout} ? "deadline $in->{timeout}" : ()),
			(@overlapped ? 'faults ' . join(' ', @overlapped) : ())) || 'nothing';
		push @v, "$gid ($mode; injected: $causes): ended $st, allowed "
		  . join(' or ', sort keys %$allowed)
		  unless $allowed->{$st};

		# the reason of a rollback is one of the saga's causes
		if ($st eq 'aborted')
		{
			my $rb = $rollback{$gid};
			my $why = !$rb ? undef
			  : $rb->{detail} =~ /^aborted/ ? ($abort ? 'abort' : undef)
			  : $rb->{detail} =~ /^deadline passed/
			  ? (defined $in->{timeout} && $rb->{past_deadline}
				  && $t->{deadline_after} ne '' && $t->{deadline_after} >= interval_seconds($in->{timeout}) - 0.001
				  ? 'deadline' : undef)
			  : $rb->{detail} =~ /^step (\d+) failed/
			  ? $self->step_failure_reason($in, $1, $rb->{detail},
				  gave_up => $gave_up{$gid}{$1},
				  max_retry => $max_retry{$gid}{$1} // 0,
				  step => $step_row{$gid}{$1} // {},
				  exhaust => $exhaust,
				  lost_attempts => $lost_attempts)
			  : undef;
			if (defined $why)
			{
				$reasons{$mode}{$why}++;
				$culprit_fate{ $in->{culprit}{kind} }{ $why =~ /^culprit/ ? 'its culprit' : $why }++
				  if $in->{culprit};
			}
			else
			{
				my $sr = $rb && $rb->{detail} =~ /^step (\d+)/ ? $step_row{$gid}{$1} : undef;
				push @v, "$gid ($mode; injected: $causes): rolled back for a reason it was not given: "
				  . ($rb ? $rb->{detail} : 'no rollback_decided in its history')
				  . ($rb && $rb->{detail} =~ /^step (\d+)/ ? ' (highest attempt retried: ' . ($max_retry{$gid}{$1} // 0)
					  . ($sr ? "; the step ended $sr->{status} after $sr->{attempts} attempts, SQLSTATE '$sr->{sqlstate}'" : '')
					  . ')' . $self->step_history($gid, $1) : '');
			}
		}

		# steps
		my $want_step =
		    $st eq 'succeeded' ? { ($mode eq 'tcc' ? 'confirmed' : 'succeeded') => 1 }
		  : $st eq 'aborted' ? { compensated => 1, failed => 1, skipped => 1 }
		  : undef;
		foreach my $n (sort keys %{ $steps{$gid} // {} })
		{
			my $ss = $steps{$gid}{$n};
			my $ok = $want_step ? $want_step->{$ss}
			  : $ss eq ($n == ($in->{fail_step} // 0) ? 'failed' : 'pending');    # msg: resumes on retry
			push @v, "$gid ($mode, $st): step $n ended $ss" unless $ok;
		}

		next unless $st eq 'succeeded';
		foreach my $d (@{ $in->{deltas} })
		{
			my ($bank, $id, $delta) = @$d;
			$expected{$bank}{$id} += $delta;
			$self->{expected_ledger}{$gid}{$bank}{$id} += $delta;
		}
	}
	foreach my $gid (sort keys %status)
	{
		push @v, "$gid: a saga the campaign did not submit" unless $known{$gid};
	}
	$self->{counts} = { by_status => \%by_status, by_mode_status => \%by_mode_status,
		rollback_reasons => \%reasons, culprit_fate => \%culprit_fate };

	# culprits: each failed as it would alone, and its error reached no
	# other step, of its saga or of another
	push @v, $self->check_culprits(\%status, \%step_row, \%gave_up, \%rollback);

	# money
	my $total = 0;
	foreach my $bank ($self->bank_names)
	{
		my $node = $self->{banks}{$bank};
		foreach my $r (rows($node, $bank,
			'SELECT id, trim_scale(balance), trim_scale(frozen), trim_scale(incoming) FROM account ORDER BY id'))
		{
			my ($id, $bal, $frozen, $inc) = @$r;
			$total += $bal;
			my $want = $self->{start} + ($expected{$bank}{$id} // 0);
			push @v, "$bank account $id: balance $bal, expected $want" if $bal != $want;
			push @v, "$bank account $id: frozen $frozen left" if $frozen != 0;
			push @v, "$bank account $id: incoming $inc left" if $inc != 0;
		}
	}
	push @v, "money not conserved: $total instead of " . $self->total_start
	  if $total != $self->total_start;

	# ledger: each branch once, each saga's net effect as decided
	my %gtx = map { $_ => 1 } keys %status;
	foreach my $bank ($self->bank_names)
	{
		my $node = $self->{banks}{$bank};
		foreach my $r (rows($node, $bank,
			'SELECT gid, step, op, count(*) FROM ledger GROUP BY 1, 2, 3 HAVING count(*) > 1'))
		{
			push @v, "$bank: $r->[0] step $r->[1] $r->[2] written $r->[3] times";
			$self->{doubled}++;
		}
		my %seen;
		foreach my $r (rows($node, $bank,
			'SELECT gid, id, trim_scale(sum(delta)) FROM ledger GROUP BY 1, 2'))
		{
			my ($gid, $id, $sum) = @$r;
			$seen{$gid}{$id} = 1;
			push @v, "$bank: ledger rows of $gid, a saga the coordinator does not know"
			  unless $gtx{$gid};
			my $want = $self->{expected_ledger}{$gid}{$bank}{$id} // 0;
			push @v, "$bank: ledger of $gid on account $id adds up to $sum, expected $want"
			  if $sum != $want;
		}
		foreach my $gid (keys %{ $self->{expected_ledger} // {} })
		{
			foreach my $id (keys %{ $self->{expected_ledger}{$gid}{$bank} // {} })
			{
				push @v, "$bank: no ledger row of $gid on account $id"
				  unless $seen{$gid}{$id}
				  || $self->{expected_ledger}{$gid}{$bank}{$id} == 0;
			}
		}
		foreach my $r (rows($node, $bank,
			'SELECT DISTINCT gid FROM saga_participant.barrier'))
		{
			push @v, "$bank: barrier record of $r->[0], a saga the coordinator does not know"
			  unless $gtx{ $r->[0] };
		}
	}

	# ledger: each operation of each step as the saga's outcome demands
	my %ops;
	foreach my $bank ($self->bank_names)
	{
		$ops{ $_->[0] }{ $_->[1] }{ $_->[2] } += $_->[3]
		  foreach rows($self->{banks}{$bank}, $bank, 'SELECT gid, step, op, count(*) FROM ledger GROUP BY 1, 2, 3');
	}
	foreach my $gid (@gids)
	{
		my $in = $self->{intents}{$gid};
		my $st = $status{$gid} // next;
		my $rule = $ledger_rule{ $in->{mode} }{$st} // next;
		foreach my $n (1 .. scalar @{ $in->{steps} })
		{
			# an HTTP step writes no ledger: check_http reads the service's record
			next if $in->{http} && $n == $in->{http}{step};
			my $o = $ops{$gid}{$n} // {};
			if ($in->{culprit} && $n == $in->{culprit}{step})
			{
				# whatever the saga's status: a culprit's writes never commit
				my $have = sum0(values %$o);
				push @v, "$gid ($in->{mode}, $st): its culprit step (step $n, $in->{culprit}{kind}) has $have ledger rows"
				  if $have;
				next;
			}
			if (ref $rule)
			{
				foreach my $op (sort keys %$rule)
				{
					my $have = $o->{$op} // 0;
					push @v, "$gid ($in->{mode}, $st): step $n has $have ledger rows of $op, expected $rule->{$op}"
					  if $have != $rule->{$op};
				}
			}
			else
			{
				my ($a, $c, $f) = map { $o->{$_} // 0 } qw(action compensation confirm);
				push @v, "$gid ($in->{mode}, $st): step $n has $a action and $c compensation rows in the ledger"
				  if $a != $c || $a > 1;
				push @v, "$gid ($in->{mode}, $st): step $n was confirmed" if $f;
			}
		}
	}

	push @v, $self->check_at_records(\%status);
	push @v, $self->check_results(\%status);
	push @v, $self->check_http(\%status);

	my $prepared = prepared_total($coord, $self->bank_nodes);
	push @v, 'prepared transactions left: ' . ($prepared // 'cannot ask')
	  unless defined $prepared && $prepared == 0;
	$self->{prepared_left} = $prepared;
	push @v, 'not every saga final within the bound' unless defined $self->{quiesce};
	$self->{violations} = \@v;
	return @v;
}

# at mode: once every saga is final (and none failed), no undo record and
# no reservation is left on any bank: a success forgets them, a rollback
# deletes them with the restore
# The HTTP steps, from the service's own record (SagaHttp effects): each
# key took effect at most once; an action acted iff its saga succeeded
# (then confirmed, in tcc, and never refunded) or acted and was refunded
# by its compensation (aborted); nothing acted for a saga that rolled back
# before its HTTP step ran.  Returns the violations.
sub check_http
{
	my ($self, $status) = @_;
	my @v;
	return @v unless $self->{http};
	my (%by_key, %count);
	foreach my $e (@{ $self->{http}->effects })
	{
		$count{ $e->{key} }++;
		$by_key{ $e->{key} } = $e;
	}
	push @v, "HTTP key $_ took effect $count{$_} times" foreach grep { $count{$_} > 1 } sort keys %count;
	my %keys = map { $_->[0] => "$_->[1]:$_->[2]" } rows($self->{coord}, $self->{db},
		q{SELECT t.gid, c.id, t.saga_key FROM saga.transactions t, saga.coordinator c WHERE t.saga_key IS NOT NULL});
	$self->{http_checked} = 0;
	foreach my $gid ($self->submitted_gids)
	{
		my $in = $self->{intents}{$gid};
		my $st = $status->{$gid} // '';
		next unless $in->{http} && $keys{$gid} && ($st eq 'succeeded' || $st eq 'aborted');
		my $prefix = "$keys{$gid}:$in->{http}{step}";
		my $act = $by_key{"$prefix:action"};
		my $undo = $by_key{"$prefix:compensation"};
		my $confirm = $by_key{"$prefix:confirm"};
		$act = undef if $act && $act->{effect} ne 'act';
		$self->{http_checked}++;
		if ($st eq 'succeeded')
		{
			push @v, "$gid (succeeded): its HTTP action did not act" unless $act;
			push @v, "$gid (succeeded): its HTTP action was refunded" if $undo && $undo->{id};
			push @v, "$gid (succeeded, tcc): its HTTP action was not confirmed"
			  if $in->{mode} eq 'tcc' && !($confirm && $act && ($confirm->{id} // '') eq $act->{id});
		}
		elsif ($act && !($undo && ($undo->{id} // '') eq $act->{id}))
		{
			push @v, "$gid (aborted): its HTTP action acted ($act->{id}) and was not refunded";
		}
		push @v, "$gid: its HTTP action acted for another saga"
		  if $act && ($act->{body}{gid} // '') ne $gid;
	}
	return @v;
}

sub check_at_records
{
	my ($self, $status) = @_;
	my @v;
	foreach my $bank ($self->bank_names)
	{
		foreach my $r (rows($self->{banks}{$bank}, $bank, q{
SELECT gid, 'undo records', count(*) FROM saga_participant.at_undo GROUP BY gid
UNION ALL
SELECT gid, 'reservations', count(*) FROM saga_participant.at_lock GROUP BY gid}))
		{
			my ($gid, $what, $n) = @$r;
			push @v, "$bank: $n at $what left of $gid (" . ($status->{$gid} // 'unknown') . ')';
		}
	}
	# a figure, not an invariant: how often write isolation made a step wait
	($self->{at_conflicts}) = map { $_->[0] } rows($self->{coord}, $self->{db},
		q{SELECT count(*) FROM saga.history
		   WHERE event = 'retry_scheduled' AND detail LIKE '%is reserved by at saga%'});
	return @v;
}

# Results: every succeeded saga whose credit read its debit's result shows,
# on the coordinator, the debit's result as the debit really did it (its
# own ledger row: account and delta, which are also what the campaign
# asked), and its credit's ledger row holds exactly that result.  Counts
# the sagas checked in $c->{results_checked}.
sub check_results
{
	my ($self, $status) = @_;
	my @v;
	my @gids = grep { defined $self->{intents}{$_}{result} && ($status->{$_} // '') eq 'succeeded' }
	  $self->submitted_gids;
	$self->{results_checked} = scalar @gids;
	return () unless @gids;
	my %answered = map { $_->[0] => $_->[1] } rows($self->{coord}, $self->{db},
		q{SELECT gid, result::text FROM saga.steps WHERE name = 'debit' AND result IS NOT NULL});
	my %row;
	foreach my $bank ($self->bank_names)
	{
		$row{ $_->[0] }{ $_->[1] } = { id => $_->[2], delta => $_->[3], got => $_->[4] }
		  foreach rows($self->{banks}{$bank}, $bank,
			q{SELECT gid, step, id, trim_scale(delta), coalesce(got::text, '') FROM ledger WHERE op = 'action'});
	}
	foreach my $gid (@gids)
	{
		my $want = $self->{intents}{$gid}{result};
		my $have = $answered{$gid} // 'none';
		my ($debit, $credit) = map { $row{$gid}{$_} } 1, 2;
		my $did = $debit ? debit_result_text($debit->{id}, $debit->{delta}) : 'no ledger row';
		push @v, "$gid: the debit's result is $have, the debit did $did" if $have ne $did;
		push @v, "$gid: the debit's result is $have, the campaign asked $want" if $have ne $want;
		my $got = $credit ? $credit->{got} : 'no ledger row';
		push @v, "$gid: the credit read $got, the debit answered $have" if $got ne $have;
	}
	return @v;
}

=back

=head2 The whole campaign

=over

=item run_campaign(%opts)

Makes the nodes (a coordinator cluster holding the coordinator database and
bank_c, a participant cluster holding bank_a and bank_b), runs the faults
while submitting, waits for quiescence and checks the invariants.  %opts:
sagas (200), duration (30 s), seed (time), kinds (fault kinds), gap ([1, 3]
seconds between faults), burst (0: sagas submitted at once halfway through,
on top of the others), quiesce_bound (120 s), prepared_bound (90 s),
memory_sagas (0: sequential sagas whose effect on the worker's memory is
measured at the end), batch_wait (saga.batch_wait of the coordinator,
50ms: larger batches, so that culprits share them with innocent steps).  Returns a hash ref of figures, with violations.

=cut

sub run_campaign
{
	my (%o) = @_;
	my $seed = $o{seed} // (time ^ $$) % 1_000_000;
	srand($seed);
	my $coord = new_coordinator('fc_coord', start => 0);
	my $batch_wait = $o{batch_wait} // '50ms';
	$coord->append_conf('postgresql.conf', qq{
# fault campaign
max_connections = 100
max_prepared_transactions = 100
log_min_messages = warning
# batches of more steps (the default, 10ms, makes them small on a loaded
# machine): the burst's culprits share them with innocent steps
saga.batch_wait = '$batch_wait'
});
	$coord->start;
	my $p1 = new_participant('fc_p1', start => 0);
	$p1->append_conf('postgresql.conf', qq{
# fault campaign
max_connections = 100
max_prepared_transactions = 100
log_min_messages = warning
# a backend killed with SIGKILL (part_kill9): reinitialize, as in production
restart_after_crash = on
});
	$p1->start;

	my $c = SagaFaults->new(
		coord => $coord,
		banks => { bank_a => $p1, bank_b => $p1, bank_c => $coord },
		participants => [$p1],
		%{ $o{campaign} // {} });
	$c->setup;
	$c->{seed} = $seed;
	my $t_start = time;
	$c->run_faults(
		duration => $o{duration} // 30,
		sagas => $o{sagas} // 200,
		kinds => $o{kinds},
		gap => $o{gap},
		burst => $o{burst},
		abort_every => $o{abort_every});
	$c->wait_quiesce($o{quiesce_bound} // 120);
	$c->note_event(defined $c->{quiesce} ? sprintf('quiet after %.1f s', $c->{quiesce}) : 'not quiet');
	$c->wait_no_prepared($o{prepared_bound} // 90);
	$c->check_invariants;
	$c->{total_seconds} = time - $t_start;

	# not when sagas are stuck: each would wait in vain, and the report be lost
	if ($o{memory_sagas} && defined $c->{quiesce})
	{
		$c->{memory} = memory_probe($c, $o{memory_sagas});
	}
	$c->{nodes} = [ $coord, $p1 ];
	return $c;
}

=item memory_probe($c, $n)

Runs $n sagas one after the other (each submitted, then waited for) and
reads the worker's RSS before, and after each fifth of them.

=cut

sub memory_probe
{
	my ($c, $n) = @_;
	my @samples;
	my ($pid, $rss, $anon) = worker_rss($c->{coord}, $c->{db});
	push @samples, [ 0, $pid, $rss, $anon ];
	my $done = 0;
	my @chunks = map { int($n * $_ / 5) - int($n * ($_ - 1) / 5) } 1 .. 5;
	foreach my $chunk (grep { $_ > 0 } @chunks)
	{
		my $sql = '';
		for (1 .. $chunk)
		{
			my $gid = sprintf('%s-mem-%05d', $c->{prefix}, $done + $_);
			$sql .=
			    "BEGIN;\n"
			  . build_saga_sql(
				gid => $gid,
				steps => [
					{ target => 'bank_a', action => step_sql(1, 'action', -1),
					  compensation => step_sql(1, 'compensation', 1) },
					{ target => 'bank_b', action => step_sql(1, 'action', 1),
					  compensation => step_sql(1, 'compensation', -1) } ])
			  . 'SELECT saga.submit(' . quote_literal($gid) . ");\nCOMMIT;\n"
			  . 'SELECT saga.wait(' . quote_literal($gid) . ");\n";
		}
		$c->{coord}->safe_psql($c->{db}, $sql, timeout => 600);
		$done += $chunk;
		($pid, $rss, $anon) = worker_rss($c->{coord}, $c->{db});
		push @samples, [ $done, $pid, $rss, $anon ];
	}
	return \@samples;
}

=item campaign_report($c)

The figures of a campaign, as text.

=cut

sub campaign_report
{
	my ($c) = @_;
	my @gids = $c->submitted_gids;
	my $gone = grep { $c->{intents}{$_}{state} eq 'gone' } @{ $c->{order} };
	my %modes;
	$modes{ $c->{intents}{$_}{mode} }++ foreach @gids;
	my $failing = grep { $c->{intents}{$_}{fail} } @gids;
	my $faults = sum0(values %{ $c->{faults} });
	my $r = '';
	$r .= sprintf("fault campaign (seed %s): %.0f s of faults, %.0f s in all\n",
		$c->{seed} // '?', $c->{fault_seconds} // 0, $c->{total_seconds} // 0);
	$r .= sprintf("sagas run: %d (%s); %d with a business failure; %d never existed (their submitting transaction cut by a fault)\n",
		scalar @gids, join(', ', map { "$_ " . ($modes{$_} // 0) } @MODES), $failing, $gone);
	$r .= sprintf("faults injected: %d (%s); participant backends killed during COMMIT PREPARED: %d\n", $faults,
		join(', ', map { "$_ $c->{faults}{$_}" } @FAULT_KINDS), $c->{commit_kills} // 0);
	$r .= sprintf("burst: %d sagas at once, all in after %.1f s while the faults went on (%d psql runs cut and resumed)\n",
		$c->{burst_size}, $c->{burst_seconds} // 0, $c->{burst_cuts} // 0) if $c->{burst_size};
	if ($c->{burst_size})
	{
		my (%kinds, %innocent);
		foreach my $gid (grep { $c->{intents}{$_}{state} eq 'yes' } @{ $c->{burst_gids} })
		{
			my $in = $c->{intents}{$gid};
			next unless $in->{mode} eq 'saga' || $in->{mode} eq 'tcc';
			if ($in->{culprit}) { $kinds{ $in->{culprit}{kind} }++; }
			else { $innocent{ $c->{statuses}{$gid} // 'unknown' }++; }
		}
		my $fate = $c->{counts}{culprit_fate} // {};
		$r .= sprintf("culprits in the burst (saga and tcc sagas): %d raising 57014, %d violating a deferred FK (23503); %d innocents beside them (%s)\n",
			$kinds{57014} // 0, $kinds{fk} // 0, sum0(values %innocent),
			join(', ', map { "$_ $innocent{$_}" } sort keys %innocent));
		foreach my $k (qw(57014 fk))
		{
			my $f = $fate->{$k} // {};
			$r .= "  $k culprits rolled back for: "
			  . (join(', ', map { "$_ $f->{$_}" } sort keys %$f) || 'none') . "\n";
		}
		$r .= sprintf("  culprits' errors found outside their own step: %d\n",
			$c->{culprit_error_elsewhere} // 0);
		$r .= sprintf("  actions of the burst's saga and tcc sagas that took effect: %d rows in %d remote transactions\n",
			@{ $c->{burst_sharing} // [ 0, 0 ] });
	}
	$r .= sprintf("at steps retried on a row another at saga held (40001): %d\n", $c->{at_conflicts} // 0);
	$r .= sprintf("sagas with an HTTP step checked against the service's record: %d; effects recorded: %d\n",
		$c->{http_checked} // 0, $c->{http} ? scalar @{ $c->{http}->effects } : 0);
	my $with_results = grep { defined $c->{intents}{$_}{result} } @gids;
	$r .= sprintf("passing the debit's result to the credit: %d; succeeded and checked: %d\n",
		$with_results, $c->{results_checked} // 0);
	my $deadlines = grep { defined $c->{intents}{$_}{timeout} } @gids;
	$r .= sprintf("with a deadline: %d; saga.abort() calls: %d accepted, %d refused, %d unanswered\n",
		$deadlines, $c->{aborts}{accepted} // 0, $c->{aborts}{refused} // 0, $c->{aborts}{unknown} // 0);
	my $bs = $c->{counts}{by_status} // {};
	$r .= 'final statuses: '
	  . join(', ', map { "$_ " . ($bs->{$_} // 0) } sort keys %$bs) . "\n";
	foreach my $mode (@MODES)
	{
		my $m = $c->{counts}{by_mode_status}{$mode} // {};
		my $why = $c->{counts}{rollback_reasons}{$mode} // {};
		$r .= "  $mode: " . join(', ', map { "$_ $m->{$_}" } sort keys %$m)
		  . (%$why ? '; rolled back for: ' . join(', ', map { "$_ $why->{$_}" } sort keys %$why) : '')
		  . "\n";
	}
	$r .= sprintf("lost %d, ledger rows doubled %d, left prepared %s\n",
		$c->{lost} // 0, $c->{doubled} // 0, $c->{prepared_left} // '?');
	$r .= 'time to final after the last fault ended: '
	  . (defined $c->{quiesce} ? sprintf('%.1f s', $c->{quiesce}) : 'NOT QUIET') . "\n";
	$r .= 'prepared transactions gone after: '
	  . (defined $c->{prepared_clear} ? sprintf('%.1f s more', $c->{prepared_clear}) : 'NEVER') . "\n";
	my @v = @{ $c->{violations} // [] };
	$r .= 'invariant violations: ' . scalar(@v) . "\n";
	$r .= "  $_\n" foreach @v[ 0 .. min($#v, 49) ];
	if ($c->{memory})
	{
		$r .= 'worker RSS, total / private (pid ' . ($c->{memory}[0][1] // '?') . ') after N sequential sagas: '
		  . join(', ', map { sprintf('%d: %s / %s kB', $_->[0], $_->[2] // '?', $_->[3] // '?')
				  . (($_->[1] // '') eq ($c->{memory}[0][1] // '') ? '' : " (new pid $_->[1])") } @{ $c->{memory} })
		  . "\n";
	}
	return $r;
}

=back

=cut

1;
