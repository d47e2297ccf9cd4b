# 064_wal_page_boundary.pl: a saga submitted by a commit whose WAL record
# ends exactly on a WAL page boundary starts at once, and the worker does
# not fail.
#
# Before it sends a saga's first step, the worker flushes the WAL up to
# where the submissions it read end.  It took that point from
# GetXLogInsertRecPtr(), which, when the last record ended on a page
# boundary, is past the next page's header: a position no inserted record
# reaches, so XLogFlush() failed ("xlog flush request ... is not
# satisfied"), the worker exited, restarted, read the same point and failed
# again, until something else wrote WAL.  On a quiet server (one client
# waiting for its saga) that is never.
#
# The test steers the coordinator's WAL so that the submitting transaction's
# commit record ends exactly at the end of a page: inside the transaction,
# after saga.start(), it writes a non-transactional logical message sized to
# leave just the commit record's room on the page.  The commit record's size
# is measured on the attempt before (the same transaction each time).  An
# attempt counts when the insert position right after the commit is the
# start of a page; the participants are another node, so no step writes to
# the coordinator's WAL meanwhile.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
my $page = $coord->safe_psql('coord', 'SHOW wal_block_size');
my $segment = $coord->safe_psql('coord',
	"SELECT setting::bigint * CASE unit WHEN 'B' THEN 1 WHEN 'kB' THEN 1024 WHEN 'MB' THEN 1048576 END
	   FROM pg_settings WHERE name = 'wal_segment_size'");
my $worker = wait_for_worker($coord, 'coord');
ok($worker, 'the worker runs');

my $session = $coord->background_psql('coord', on_error_stop => 1);

# the insert position, in bytes
sub insert_position
{
	return $session->query_safe("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn");
}

# Is $position the start of a page (just past its header)?
sub page_start
{
	my ($position) = @_;
	return $position % $segment == 40 || $position % $page == 24;
}

# A logical message's record: its header, the long main-data header, the
# message's own header (24 bytes), the prefix with its NUL, then the content.
my $prefix = 'pg_saga_test';
my $message_overhead = 24 + 5 + 24 + length($prefix) + 1;

# Writes a record of $bytes (a multiple of 8, at least 300) to the WAL.
sub write_filler
{
	my ($bytes) = @_;
	$session->query_safe("SELECT pg_logical_emit_message(false, '$prefix', repeat('x', "
		  . ($bytes - $message_overhead) . "))");
	return;
}

my $commit_size;
my $hits = 0;
my $attempts = 0;
my @statuses;
for my $attempt (1 .. 30)
{
	last if $hits >= 3;
	$attempts++;
	my $gid = sprintf('boundary-%03d', $attempt);
	$session->query_safe('BEGIN');
	$session->query_safe(
		"SELECT saga.start(ARRAY[saga.step('bank_a', "
		  . quote_literal(move_sql(1, -1))
		  . ", expect_rows => 1), saga.step('bank_b', "
		  . quote_literal(move_sql(1, 1))
		  . ", expect_rows => 1)], gid => '$gid')");
	if (defined $commit_size)
	{
		# leave exactly the commit record's room on the page
		my $position = insert_position();
		my $room = $page - $position % $page;
		while ($room - $commit_size < 300)
		{
			write_filler(1000);
			$position = insert_position();
			$room = $page - $position % $page;
		}
		write_filler($room - $commit_size);
	}
	my $before = insert_position();
	$session->query_safe('COMMIT');
	my $after = insert_position();
	if (page_start($after))
	{
		$hits++;
	}
	elsif (int($before / $page) == int($after / $page))
	{
		$commit_size = $after - $before;
	}
	push @statuses, wait_saga($coord, $gid);
}
$session->quit;

ok($hits >= 1,
	"a submission's commit ended on a WAL page boundary ($hits of $attempts attempts)");
is(join(',', grep { $_ ne 'succeeded' } @statuses),
	'', "all $attempts sagas succeeded");
is(worker_pid($coord, 'coord'), $worker, 'the worker never restarted');
my $log = slurp_file($coord->logfile);
unlike($log, qr/xlog flush request/, 'no WAL flush request failed');

# each transfer moved 1 from bank_a to bank_b, once
is( $part->safe_psql('bank_a', 'SELECT balance FROM account WHERE id = 1') .
	  '|' . $part->safe_psql('bank_b', 'SELECT balance FROM account WHERE id = 1'),
	(100 - $attempts) . '|' . (100 + $attempts),
	'each saga moved its amount once');

done_testing();
