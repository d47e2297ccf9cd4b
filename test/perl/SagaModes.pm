
=pod

=head1 NAME

SagaModes - helpers for the TAP tests of the tcc, xa and msg modes

=head1 SYNOPSIS

  use SagaTest;
  use SagaModes;

  tcc_bank($part, 'bank_a');          # adds frozen and incoming columns
  my $try = tcc_sql(1, 0, 30, 0, 'action');
  is(prepared_xacts($part), 0);

=head1 DESCRIPTION

Builds on SagaTest (read it first).  The TCC tests keep reservations in two
more columns of account: frozen (money held for an outgoing transfer; it
never exceeds the balance) and incoming (money announced by an incoming
transfer, not yet spendable).  tcc_sql() writes one ledger row per call, like
SagaTest::move_sql(), so a branch applied twice shows up as two rows.

=cut

package SagaModes;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use SagaTest;

our @EXPORT = qw(
  tcc_bank tcc_sql tcc_accounts create_gate set_gate
  prepared_xacts sleeping_backends wait_for_sleeper
  poll_value history_events wait_for_notify
);

=pod

=head2 TCC banks

=over

=item tcc_bank($node, $db)

Adds the columns frozen and incoming (both >= 0, frozen <= balance) to the
account table of a bank made by SagaTest::create_bank.

=cut

sub tcc_bank
{
	my ($node, $db) = @_;
	$node->safe_psql(
		$db, q{
ALTER TABLE account
	ADD COLUMN frozen numeric NOT NULL DEFAULT 0 CHECK (frozen >= 0),
	ADD COLUMN incoming numeric NOT NULL DEFAULT 0 CHECK (incoming >= 0),
	ADD CONSTRAINT frozen_covered CHECK (frozen <= balance);
});
	return;
}

=item tcc_sql($id, $balance_delta, $frozen_delta, $incoming_delta, $op, %opts)

One statement that changes account $id by the three deltas and writes a
ledger row (gid, step, $op, id, delta = $balance_delta) from the saga.*
settings.  $opts{sleep}: seconds of pg_sleep first.  $opts{extra}: an SQL
expression added to the balance (e.g. a function that raises while a gate is
closed).  Reports 1 row when the account exists.

=cut

sub tcc_sql
{
	my ($id, $dbal, $dfrozen, $dinc, $op, %opts) = @_;
	my $from = $opts{sleep} ? " FROM (SELECT pg_sleep($opts{sleep})) AS s" : '';
	my $extra = $opts{extra} ? " + $opts{extra}" : '';
	return
	    "WITH l AS (INSERT INTO ledger (gid, step, op, id, delta) VALUES "
	  . "(current_setting('saga.gid'), current_setting('saga.step')::int, '$op', $id, $dbal)) "
	  . "UPDATE account SET balance = balance + ($dbal)$extra, "
	  . "frozen = frozen + ($dfrozen), incoming = incoming + ($dinc)$from "
	  . "WHERE id = $id";
}

=item tcc_accounts($node, $db)

"id|balance|frozen|incoming" lines, ordered by id, trailing zeros trimmed.

=cut

sub tcc_accounts
{
	my ($node, $db) = @_;
	return $node->safe_psql($db,
		'SELECT id, trim_scale(balance), trim_scale(frozen), trim_scale(incoming) '
		  . 'FROM account ORDER BY id');
}

=back

=head2 Gates

=over

=item create_gate($node, $db, $sqlstate)

A one-row table gate(closed) and a function gate_check() returning 0, or
raising "gate closed" with $sqlstate while the gate is closed.  The gate
starts closed.

=cut

sub create_gate
{
	my ($node, $db, $sqlstate) = @_;
	$node->safe_psql(
		$db, qq{
CREATE TABLE gate (closed bool NOT NULL);
INSERT INTO gate VALUES (true);
CREATE FUNCTION gate_check() RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
	IF (SELECT closed FROM gate) THEN
		RAISE EXCEPTION 'gate closed' USING ERRCODE = '$sqlstate';
	END IF;
	RETURN 0;
END
\$\$;
});
	return;
}

=item set_gate($node, $db, $closed)

=cut

sub set_gate
{
	my ($node, $db, $closed) = @_;
	$node->safe_psql($db,
		'UPDATE gate SET closed = ' . ($closed ? 'true' : 'false'));
	return;
}

=back

=head2 Observations

=over

=item prepared_xacts($node, $db)

How many prepared transactions the node holds (in $db only, if given).

=cut

sub prepared_xacts
{
	my ($node, $db) = @_;
	my $where = defined $db ? ' WHERE database = ' . quote_literal($db) : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_prepared_xacts$where");
}

=item sleeping_backends($node, $db)

How many backends of $db are inside pg_sleep.

=cut

sub sleeping_backends
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = "
		  . quote_literal($db));
}

=item wait_for_sleeper($node, $db)

Waits until a backend of $db is inside pg_sleep (a step past its barrier
record, running its SQL).  Returns true on success.

=cut

sub wait_for_sleeper
{
	my ($node, $db) = @_;
	return poll_until($node, 'postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = "
		  . quote_literal($db));
}

=item poll_value($node, $db, $query, $timeout = 90)

Runs $query until it returns something other than '' or 'wait' (connection
failures are retried); returns that, or 'timeout'.

=cut

sub poll_value
{
	my ($node, $db, $query, $timeout) = @_;
	$timeout //= 90;
	my $deadline = time + $timeout;
	my $out = '';
	while (time < $deadline)
	{
		my ($rc, $o) = $node->psql($db, $query);
		$out = $o;
		return $out if $rc == 0 && $out ne '' && $out ne 'wait';
		usleep(100_000);
	}
	diag "poll_value timed out: $query\nlast: $out";
	return 'timeout';
}

=item history_events($node, $gid, $db)

The events of saga.history for the saga, "step:event" (step empty for the
saga itself), space-separated, in order.

=cut

sub history_events
{
	my ($node, $gid, $db) = @_;
	$db //= $SagaTest::COORD_DB;
	return $node->safe_psql($db,
		"SELECT string_agg(coalesce(step::text, '') || ':' || event, ' ' ORDER BY at) "
		  . 'FROM saga.history WHERE gid = '
		  . quote_literal($gid));
}

=item wait_for_notify($bgpsql, $channel, $payload, $timeout = 90)

Given a PostgreSQL::Test::BackgroundPsql session that ran LISTEN $channel,
runs an empty query in it until psql reports the asynchronous notification
with $payload.  Returns true when received.

=cut

sub wait_for_notify
{
	my ($session, $channel, $payload, $timeout) = @_;
	$timeout //= 90;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my $o = $session->query_safe('SELECT 1');
		return 1
		  if $o =~ /notification "\Q$channel\E" with payload "\Q$payload\E"/;
		usleep(100_000);
	}
	return 0;
}

=back

=cut

1;
