
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
accounts of several bank databases with sagas of the four modes: saga (debit
and credit, each with a compensation), tcc (the debit moves money to frozen,
the credit announces it in incoming; confirm settles, cancel undoes), xa
(debit and credit left prepared, then committed) and msg (debit, then credit,
delivered until done).  About a fifth of the sagas carry a business failure:
a debit beyond the balance (CHECK violation, 23514), or a credit to an
account that does not exist (expect_rows, 21000); in msg mode the failure is
always in the first step, so that a failed msg saga applied nothing.

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
  part_restart     a participant cluster stopped (fast or immediate) and
                   started again one to three seconds later
  slow             a bank's knob set to 2.5 s for two to four seconds

Each round of faults injects every kind once, in random order, so a short
campaign still sees them all.  A saga whose submitting transaction was cut
by a fault is looked up afterwards: it either exists (and counts) or never
existed.

Once the faults stop, every saga must become final, and then:

  - money is conserved, and every account equals its start plus the
    transfers of the sagas that succeeded (tracked per gid by the script);
    frozen and incoming are back to zero;
  - a saga with a business failure did not succeed; only msg sagas with a
    business failure end failed;
  - no branch wrote its ledger row twice (count per gid, step and op), and
    each saga's ledger rows add up to its transfer if it succeeded, to zero
    otherwise;
  - no prepared transaction is left on any cluster;
  - no barrier record or ledger row belongs to a saga the coordinator does
    not know.

=cut

package SagaFaults;

use strict;
use warnings;

use Exporter 'import';
use List::Util qw(shuffle sum0 max min);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use SagaTest;

our @EXPORT = qw(
  run_campaign campaign_report try_psql prepared_total worker_rss
  start_node restart_until_up
);

my @final = qw(succeeded aborted failed);
my %is_final = map { $_ => 1 } @final;
our @FAULT_KINDS = qw(kill9 coord_immediate part_restart slow);
our @MODES = qw(saga tcc xa msg);

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
steps 2).

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
		deadline_rate => $o{deadline_rate} // 0.25,
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
	my %accounts = map { $_ => $self->{start} } 1 .. $self->{accounts};
	foreach my $bank ($self->bank_names)
	{
		my $node = $self->{banks}{$bank};
		create_bank($node, $bank, \%accounts);
		$node->safe_psql(
			$bank, q{
ALTER TABLE account
	ADD COLUMN frozen numeric NOT NULL DEFAULT 0 CHECK (frozen >= 0),
	ADD COLUMN incoming numeric NOT NULL DEFAULT 0 CHECK (incoming >= 0);
CREATE TABLE knob (slow float8 NOT NULL);
INSERT INTO knob VALUES (0);
});
	}
	create_coordinator_db($self->{coord}, $self->{db}) unless $o{no_coordinator_db};
	foreach my $bank ($self->bank_names)
	{
		add_target($self->{coord}, $bank, $self->{banks}{$bank}, $bank,
			db => $self->{db});
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
	return $self->{start} * $self->{accounts} * scalar(@banks);
}

# --- the step statements -----------------------------------------------------

# one statement: ledger row + balance change (+ frozen, incoming), after
# sleeping as long as the bank's knob says
sub step_sql
{
	my ($id, $op, $dbal, $dfrozen, $dinc) = @_;
	my @set = ("balance = balance + ($dbal)");
	push @set, "frozen = frozen + ($dfrozen)" if $dfrozen;
	push @set, "incoming = incoming + ($dinc)" if $dinc;
	return
	    "WITH l AS (INSERT INTO ledger (gid, step, op, id, delta) VALUES "
	  . "(current_setting('saga.gid'), current_setting('saga.step')::int, '$op', $id, $dbal)) "
	  . 'UPDATE account SET '
	  . join(', ', @set)
	  . " FROM (SELECT pg_sleep(slow) FROM knob) AS s WHERE id = $id";
}

=item $c->gen_saga

A random transfer: { gid, mode, fail ('' or a description), steps (for
SagaTest::build_saga_sql), deltas ([bank, id, delta] applied if it
succeeds) }.

=cut

sub gen_saga
{
	my ($self, %o) = @_;
	my @banks = $self->bank_names;
	my $mode = $o{mode} // $self->{modes}[ int(rand(@{ $self->{modes} })) ];
	my ($sb, $si, $db, $di);
	do
	{
		$sb = $banks[ int(rand(@banks)) ];
		$db = $banks[ int(rand(@banks)) ];
		$si = 1 + int(rand($self->{accounts}));
		$di = 1 + int(rand($self->{accounts}));
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
	my $parallel = $mode ne 'msg' && rand() < 0.5;
	my %common = (
		expect_rows => 1,
		timeout => $self->{step_timeout},
		# xa: prepared branches of two sagas can wait on each other's row
		# locks, which only running out of attempts ends
		max_attempts => $mode eq 'msg' ? 2 : $mode eq 'xa' ? $self->{xa_max_attempts} : $self->{max_attempts});
	my @steps;
	if ($mode eq 'saga')
	{
		@steps = (
			{
				target => $sb, name => 'debit', %common,
				action => step_sql($debit_id, 'action', -$debit),
				compensation => step_sql($debit_id, 'compensation', $debit)
			},
			{
				target => $db, name => 'credit', %common,
				action => step_sql($credit_id, 'action', $m),
				compensation => step_sql($credit_id, 'compensation', -$m)
			});
	}
	elsif ($mode eq 'tcc')
	{
		@steps = (
			{
				target => $sb, name => 'debit', %common,
				action => step_sql($debit_id, 'action', -$debit, $debit, 0),
				confirm => step_sql($debit_id, 'confirm', 0, -$debit, 0),
				compensation => step_sql($debit_id, 'compensation', $debit, -$debit, 0)
			},
			{
				target => $db, name => 'credit', %common,
				action => step_sql($credit_id, 'action', 0, 0, $m),
				confirm => step_sql($credit_id, 'confirm', $m, 0, -$m),
				compensation => step_sql($credit_id, 'compensation', 0, 0, -$m)
			});
	}
	else    # xa, msg
	{
		@steps = (
			{
				target => $sb, name => 'debit', %common,
				action => step_sql($debit_id, 'action', -$debit)
			},
			{
				target => $db, name => 'credit', %common,
				action => step_sql($credit_id, 'action', $m)
			});
	}
	$steps[1]{after} = [] if $parallel;
	my $timeout;
	$timeout = sprintf('%d seconds', 3 + int(rand(18)))
	  if $mode ne 'msg' && rand() < $self->{deadline_rate};
	return {
		gid => $gid,
		mode => $mode,
		timeout => $timeout,
		fail => $fail,
		steps => \@steps,
		deltas => $fail ? [] : [ [ $sb, $si, -$m ], [ $db, $di, $m ] ],
	};
}

=item $c->submit_batch($n, %gen_opts)

Generates $n sagas and submits each in its own transaction, all in one psql
call.  Returns true if psql succeeded; otherwise the sagas stay "maybe"
until resolve_maybe looks them up.

=cut

sub submit_batch
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

Calls saga.abort() on a random recent saga (not msg); counts it as accepted
or refused (past its decision, or the coordinator unreachable).

=cut

sub random_abort
{
	my ($self) = @_;
	my @recent = grep { $self->{intents}{$_}{state} eq 'yes' && $self->{intents}{$_}{mode} ne 'msg' }
	  @{ $self->{order} }[ max(0, $#{ $self->{order} } - 30) .. $#{ $self->{order} } ];
	return unless @recent;
	my $gid = $recent[ int(rand(@recent)) ];
	my ($ok) = try_psql($self->{coord}, $self->{db},
		'SELECT saga.abort(' . quote_literal($gid) . ", 'campaign')", 20);
	$self->{aborts}{ $ok ? 'accepted' : 'refused' }++;
	$self->{intents}{$gid}{abort_requested} = 1 if $ok;
	return;
}

sub set_knob
{
	my ($self, $bank, $value) = @_;
	my ($ok) = try_psql($self->{banks}{$bank}, $bank, "UPDATE knob SET slow = $value", 20);
	return $ok;
}

=item $c->inject($kind)

Injects one fault now; returns true if it was injected.  part_restart and
slow leave a pending repair in $c->{repairs}, done by repair_due.

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
		$self->note_event("fault: kill -9 worker $pid");
	}
	elsif ($kind eq 'coord_immediate')
	{
		$self->note_event('fault: coordinator stopped with -m immediate');
		$coord->stop('immediate', fail_ok => 1);
		usleep(int(200_000 + rand(800_000)));
		start_node($coord);
		$self->note_event('coordinator started again');
	}
	elsif ($kind eq 'part_restart')
	{
		my @up = grep { defined $_->{_pid} } @{ $self->{participants} };
		return 0 unless @up;
		my $node = $up[ int(rand(@up)) ];
		my $mode = rand() < 0.5 ? 'immediate' : 'fast';
		$self->note_event('fault: participant ' . $node->name . " stopped ($mode)");
		$node->stop($mode, fail_ok => 1);
		push @{ $self->{repairs} }, {
			at => time + 1 + rand(2),
			what => 'start ' . $node->name,
			fn => sub { start_node($node); $self->note_event('participant ' . $node->name . ' started'); 1 },
		};
	}
	elsif ($kind eq 'slow')
	{
		my @banks = grep { !$self->{slow_banks}{$_} } $self->bank_names;
		return 0 unless @banks;
		my $bank = $banks[ int(rand(@banks)) ];
		return 0 unless $self->set_knob($bank, $self->{slow});
		$self->{slow_banks}{$bank} = 1;
		$self->note_event("fault: $bank slow ($self->{slow} s per step)");
		push @{ $self->{repairs} }, {
			at => time + 2 + rand(2),
			what => "$bank fast again",
			fn => sub {
				return 0 unless $self->set_knob($bank, 0);
				delete $self->{slow_banks}{$bank};
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

=item $c->run_faults(duration => $s, sagas => $n, kinds => [...], batch => 10, gap => [1, 3], abort_every => 1)

Submits $n sagas spread over $s seconds while injecting faults every gap
seconds (uniform in the range) and calling saga.abort() on a recent saga
about every abort_every seconds (0: never), then repairs everything.

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
	my @round;
	while (time < $end)
	{
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
			$self->inject($kind) or $self->note_event("fault $kind not injected now");
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
	$self->{faults_stopped} = time;
	$self->note_event('faults stop; repairing');
	$self->repair_due(1);
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
took since the faults stopped (repairs included), or undef if not final
$bound seconds after the repairs.

=cut

sub wait_quiesce
{
	my ($self, $bound) = @_;
	my $t = $self->{faults_stopped} // time;    # repairs included
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

=item $c->check_invariants

Returns the list of violations (strings); empty when all hold.  Also fills
$c->{statuses} (gid => status) and $c->{counts}.

=cut

sub check_invariants
{
	my ($self) = @_;
	my @v;
	my $coord = $self->{coord};
	$self->{expected_ledger} = {};
	my %status = map { $_->[0] => $_->[1] }
	  rows($coord, $self->{db}, 'SELECT gid, status FROM saga.transactions');
	$self->{statuses} = \%status;
	my @gids = $self->submitted_gids;
	my %known = map { $_ => 1 } @gids;

	# every saga final; the outcome allowed by its failure
	my (%by_status, %by_mode_status, %expected);
	foreach my $gid (@gids)
	{
		my $in = $self->{intents}{$gid};
		my $st = $status{$gid};
		if (!defined $st)
		{
			push @v, "$gid: submitted but unknown to the coordinator";
			next;
		}
		$by_status{$st}++;
		$by_mode_status{ $in->{mode} }{$st}++;
		push @v, "$gid: not final ($st)" unless $is_final{$st};
		if ($in->{fail} && $st eq 'succeeded')
		{
			push @v, "$gid: succeeded despite a business failure ($in->{fail})";
		}
		if ($st eq 'failed' && !($in->{mode} eq 'msg' && $in->{fail}))
		{
			push @v, "$gid: failed, which nothing in it should cause";
		}
		if ($in->{mode} eq 'msg' && $in->{fail} && $is_final{$st} && $st ne 'failed')
		{
			push @v, "$gid: msg saga with a business failure ended $st, not failed";
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
	$self->{counts} = { by_status => \%by_status, by_mode_status => \%by_mode_status };

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

	my $prepared = prepared_total($coord, $self->bank_nodes);
	push @v, 'prepared transactions left: ' . ($prepared // 'cannot ask')
	  unless defined $prepared && $prepared == 0;
	push @v, 'not every saga final within the bound' unless defined $self->{quiesce};
	$self->{violations} = \@v;
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
seconds between faults), quiesce_bound (120 s), prepared_bound (90 s),
memory_sagas (0: sequential sagas whose effect on the worker's memory is
measured at the end).  Returns a hash ref of figures, with violations.

=cut

sub run_campaign
{
	my (%o) = @_;
	my $seed = $o{seed} // (time ^ $$) % 1_000_000;
	srand($seed);
	my $coord = new_coordinator('fc_coord', start => 0);
	$coord->append_conf('postgresql.conf', qq{
# fault campaign
max_connections = 100
max_prepared_transactions = 100
log_min_messages = warning
});
	$coord->start;
	my $p1 = new_participant('fc_p1', start => 0);
	$p1->append_conf('postgresql.conf', qq{
# fault campaign
max_connections = 100
max_prepared_transactions = 100
log_min_messages = warning
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
		abort_every => $o{abort_every});
	$c->wait_quiesce($o{quiesce_bound} // 120);
	$c->note_event(defined $c->{quiesce} ? sprintf('quiet after %.1f s', $c->{quiesce}) : 'not quiet');
	$c->wait_no_prepared($o{prepared_bound} // 90);
	$c->check_invariants;
	$c->{total_seconds} = time - $t_start;

	if ($o{memory_sagas})
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
	$r .= sprintf("sagas run: %d (%s); %d with a business failure; %d lost with their submitting transaction\n",
		scalar @gids, join(', ', map { "$_ " . ($modes{$_} // 0) } @MODES), $failing, $gone);
	$r .= sprintf("faults injected: %d (%s)\n", $faults,
		join(', ', map { "$_ $c->{faults}{$_}" } @FAULT_KINDS));
	my $deadlines = grep { defined $c->{intents}{$_}{timeout} } @gids;
	$r .= sprintf("with a deadline: %d; saga.abort() calls: %d accepted, %d refused\n",
		$deadlines, $c->{aborts}{accepted} // 0, $c->{aborts}{refused} // 0);
	my $bs = $c->{counts}{by_status} // {};
	$r .= 'final statuses: '
	  . join(', ', map { "$_ " . ($bs->{$_} // 0) } sort keys %$bs) . "\n";
	foreach my $mode (@MODES)
	{
		my $m = $c->{counts}{by_mode_status}{$mode} // {};
		$r .= "  $mode: " . join(', ', map { "$_ $m->{$_}" } sort keys %$m) . "\n";
	}
	$r .= 'time to quiesce after the faults stopped (repairs included): '
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
