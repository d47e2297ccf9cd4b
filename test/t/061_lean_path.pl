# 061_lean_path.pl: a running saga's ordinary progress lives in the
# worker's shared memory, and its ordinary history is derived (1.6).
#
#  - while step 2 of a transfer is held on its participant, the views show
#    step 1 succeeded and step 2 running, and saga._progress() has them,
#    while the saga's rows still say pending: nothing was written;
#  - a kill -9 of the worker then loses that progress: the worker calls
#    step 1 again, the barrier answers it, and every branch applies once;
#  - a plain saga stores no event at all, and saga.history, saga.explain
#    show its six events, derived, in order;
#  - a saga that rolls back stores its whole history, the ordinary events
#    held in memory before the decision included;
#  - another role sees none of it in saga._progress();
#  - with saga.progress_slots too small for a second saga, that saga's
#    progress is written as it happens, and the first one's is not;
#  - a retry's attempt count, once the views show it, survives an
#    immediate shutdown: the step is called max_attempts times, not more.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my ($coord, $part) = standard_setup();
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');

# bank_b's steps can be held: hold_wait() waits while hold.closed is true
$part->safe_psql('bank_b', q{
CREATE TABLE hold (closed bool NOT NULL);
INSERT INTO hold VALUES (false);
CREATE FUNCTION hold_wait() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	WHILE (SELECT closed FROM hold) LOOP
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN 0;
END $$;
});

sub set_hold
{
	my ($closed) = @_;
	$part->safe_psql('bank_b', "UPDATE hold SET closed = $closed");
}

sub held_transfer
{
	my ($gid, $id, %o) = @_;
	return submit_saga(
		$coord,
		gid => $gid,
		via => 'start',
		%o,
		steps => [
			{ target => 'bank_a', action => move_sql($id, -10),
			  compensation => move_sql($id, 10, 'compensation') },
			{ target => 'bank_b',
			  action => 'SELECT hold_wait(); ' . move_sql($id, 10),
			  compensation => move_sql($id, -10, 'compensation') } ]);
}

sub wait_step2_held
{
	my ($what) = @_;
	ok(poll_until($part, 'bank_b',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = 'bank_b' AND wait_event = 'PgSleep'"),
		"$what: step 2 is held on bank_b");
}

sub cq { return $coord->safe_psql('coord', $_[0]); }

# --- progress in memory, shown by the views ----------------------------------
set_hold('true');
my $gid = held_transfer('lean-held', 1);
wait_step2_held('held');
ok(poll_until($coord, 'coord',
		"SELECT string_agg(step || ':' || status, ',' ORDER BY step) FROM saga.steps WHERE gid = '$gid'",
		'1:succeeded,2:running'),
	'saga.steps shows step 1 succeeded and step 2 running');
is(cq("SELECT status, steps_done FROM saga.transactions WHERE gid = '$gid'"), 'running|1',
	'saga.transactions shows the saga running, one step done');
is(cq("SELECT g.status || '/' || string_agg(s.status, ',' ORDER BY s.step) FROM saga.gtx g "
	  . "JOIN saga.gtx_step s ON s.gtx_id = g.id WHERE g.gid = '$gid' GROUP BY g.status"),
	'pending/pending,pending', 'the rows still say pending: the progress was not written');
is(cq("SELECT count(*) FROM saga._progress() p JOIN saga.gtx g ON g.id = p.saga_id WHERE g.gid = '$gid'"),
	'3', 'saga._progress() has the saga and its two steps');
is(cq("SELECT string_agg(coalesce(step::text, '-') || ':' || event, ',' ORDER BY at) FROM saga.history WHERE gid = '$gid'"),
	'-:submitted,1:action_started,1:action_succeeded,2:action_started',
	'saga.history derives the events so far from memory');
is(cq("SELECT count(*) FROM saga.gtx_event e JOIN saga.gtx g ON g.id = e.gtx_id WHERE g.gid = '$gid'"),
	'0', 'no event is stored');
is(cq("SELECT saga.result('$gid')"), '{"step1": []}', 'saga.result() shows step 1\'s result from memory');
is(cq("SELECT extract(epoch FROM started_at) IS NOT NULL FROM saga.steps WHERE gid = '$gid' AND step = 2"),
	't', 'step 2 has its start time');
is(cq("SELECT saga.status('$gid')"), 'running', 'saga.status() says running, as the worker knows it');
is(cq("SELECT saga.wait('$gid', '10 ms')"), 'running', 'saga.wait() that times out says running too');
my (undef, undef, $retry_err) = $coord->psql('coord', "SELECT saga.retry('$gid')");
like($retry_err, qr/saga "lean-held" is running/,
	'an error about its state names the status the worker knows');

# another role sees nothing of it
cq("CREATE ROLE lean_other LOGIN");
is($coord->safe_psql('coord', "SET ROLE lean_other; SELECT count(*) FROM saga._progress()"),
	'0', 'another role sees no entry of saga._progress()');

# --- a crash loses the progress; the barrier answers the repeat --------------
my $old_pid = worker_pid($coord, 'coord');
kill 'KILL', $old_pid;
like(wait_for_worker($coord, 'coord', $old_pid), qr/^\d+$/, 'the worker is back after kill -9');
set_hold('false');
is(wait_saga($coord, $gid), 'succeeded', 'the held saga succeeds after the crash');
is(ledger_rows($part, 'bank_a', $gid), '1|action|1|-10', 'bank_a debited once');
is(ledger_rows($part, 'bank_b', $gid), '2|action|1|10', 'bank_b credited once');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'), '', 'no branch applied twice');
like(barrier_rows($part, 'bank_a', $gid) . '/' . barrier_rows($part, 'bank_b', $gid),
	qr/^1\|action\|[^\n]*\/2\|action\|[^\n]*$/, 'one barrier record per step');
is(cq("SELECT count(*) FROM saga._progress() p JOIN saga.gtx g ON g.id = p.saga_id WHERE g.gid = '$gid'"),
	'0', 'a finished saga leaves saga._progress()');
is(cq("SELECT string_agg(s.step || ':' || s.status, ',' ORDER BY s.step) FROM saga.gtx_step s "
	  . "JOIN saga.gtx g ON g.id = s.gtx_id WHERE g.gid = '$gid'"),
	'1:succeeded,2:succeeded', 'the final write stored every step');

# --- a plain saga: no event stored, its history derived ---------------------
$gid = held_transfer('lean-plain', 2);
is(wait_saga($coord, $gid), 'succeeded', 'a plain saga succeeds');
is(cq("SELECT count(*) FROM saga.gtx_event e JOIN saga.gtx g ON g.id = e.gtx_id WHERE g.gid = '$gid'"),
	'0', 'it stored no event');
is(cq("SELECT string_agg(coalesce(step::text, '-') || ':' || event || ':' || detail, ',' ORDER BY at) "
	  . "FROM saga.history WHERE gid = '$gid' AND event <> 'submitted'"),
	'1:action_started:attempt 1 on bank_a,1:action_succeeded:applied,'
	  . '2:action_started:attempt 1 on bank_b,2:action_succeeded:applied,-:succeeded:',
	'saga.history derives its events from the timestamps');
is(cq("SELECT count(*) FROM saga.history WHERE gid = '$gid' AND event = 'submitted'"), '1',
	'one submitted event');
is(cq("SELECT bool_and(a.at < b.at) FROM saga.history a JOIN saga.history b USING (gid) "
	  . "WHERE gid = '$gid' AND a.event = 'submitted' AND b.event = 'succeeded'"),
	't', 'submitted comes before the final status');
like(cq("SELECT string_agg(x, E'\\n') FROM saga.explain('$gid') x"),
	qr/submitted.*step 1 on bank_a: action started.*action succeeded: applied.*step 2 on bank_b: action started.*succeeded after/s,
	'saga.explain tells the derived events in order');

# --- a rollback stores the whole history ----------------------------------
$gid = submit_saga(
	$coord,
	gid => 'lean-rollback',
	via => 'start',
	steps => [
		{ target => 'bank_a', action => move_sql(1, -10), compensation => move_sql(1, 10, 'compensation') },
		{ target => 'bank_b', action => q{SELECT 1/0},
		  compensation => move_sql(1, -10, 'compensation') } ]);
is(wait_saga($coord, $gid), 'aborted', 'a failing saga is aborted');
is(cq("SELECT string_agg(coalesce(e.step::text, '-') || ':' || e.event, ',' ORDER BY e.id) FROM saga.gtx_event e "
	  . "JOIN saga.gtx g ON g.id = e.gtx_id WHERE g.gid = '$gid' AND e.event IN "
	  . "('action_started', 'action_succeeded', 'action_failed', 'rollback_decided', 'compensation_done', 'aborted')"),
	'1:action_started,1:action_succeeded,2:action_started,2:action_failed,-:rollback_decided,'
	  . '1:compensation_done,-:aborted',
	'its history is stored, the events held before the decision included');
is(cq("SELECT count(*) FROM saga.history WHERE gid = '$gid' AND event = 'action_started'"), '2',
	'saga.history shows each stored event once, nothing derived beside them');
is(ledger_sum($part, 'bank_a', $gid), '0', 'step 1 compensated');

# --- too few progress slots: the rest is written as it happens --------------
$coord->append_conf('postgresql.conf', "saga.progress_slots = 3\n");
$coord->restart;
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running with 3 progress slots');
set_hold('true');
my $g1 = held_transfer('lean-slots-1', 1);
ok(poll_until($coord, 'coord',
		"SELECT string_agg(step || ':' || status, ',' ORDER BY step) FROM saga.steps WHERE gid = '$g1'",
		'1:succeeded,2:running'),
	'slots: the first saga runs');
my $g2 = held_transfer('lean-slots-2', 2);
ok(poll_until($coord, 'coord',
		"SELECT string_agg(s.step || ':' || s.status, ',' ORDER BY s.step) FROM saga.gtx_step s "
		  . "JOIN saga.gtx g ON g.id = s.gtx_id WHERE g.gid = '$g2'",
		'1:succeeded,2:running'),
	'slots: the second saga, for which no slots were left, has its progress written');
is(cq("SELECT string_agg(s.status, ',' ORDER BY s.step) FROM saga.gtx_step s "
	  . "JOIN saga.gtx g ON g.id = s.gtx_id WHERE g.gid = '$g1'"),
	'pending,pending', 'slots: the first one\'s is not');
is(cq("SELECT count(*) FROM saga._progress()"), '3', 'slots: saga._progress() holds the first saga only');
set_hold('false');
is(wait_saga($coord, $g1) . '/' . wait_saga($coord, $g2), 'succeeded/succeeded', 'slots: both succeed');
is(ledger_duplicates($part, 'bank_a') . ledger_duplicates($part, 'bank_b'), '', 'slots: no branch applied twice');

# --- a retry's attempt count is durable once the views show it --------------
# A step fails transiently (40001) on every call; bank_a counts its calls in
# a sequence, which a rollback does not undo.  Once saga.steps shows the
# first attempt and its retry, the coordinator stops in immediate mode: the
# count must survive, so the step makes max_attempts (3) calls in all,
# never a fourth.  saga.stats counts the step as waiting for its retry.
$coord->safe_psql('coord', q{
ALTER SYSTEM SET saga.retry_interval = '8s';
ALTER SYSTEM SET saga.max_retry_interval = '8s';
SELECT pg_reload_conf();
});
$part->safe_psql('bank_a', 'CREATE SEQUENCE tries');
$gid = submit_saga(
	$coord,
	gid => 'lean-retry',
	via => 'start',
	steps => [
		{ target => 'bank_a', max_attempts => 3,
		  action => q{SELECT nextval('tries'); DO $$BEGIN RAISE EXCEPTION 'busy' USING ERRCODE = '40001'; END$$} } ]);
ok(poll_until($coord, 'coord',
		"SELECT attempts || ':' || status || ':' || (next_attempt_at IS NOT NULL) FROM saga.steps WHERE gid = '$gid'",
		'1:running:true'),
	'retry: saga.steps shows the first attempt and its retry');
is(cq("SELECT sum(steps_waiting_retry) FROM saga.stats"), '1', 'retry: saga.stats counts the step waiting for its retry');
$coord->stop('immediate');
$coord->start;
is(cq("SELECT attempts FROM saga.steps WHERE gid = '$gid'"), '1',
	'retry: the attempt count survives an immediate shutdown');
is(wait_saga($coord, $gid), 'aborted', 'retry: the saga is rolled back once its attempts are spent');
is(cq("SELECT string_agg(event, ',' ORDER BY at) FROM saga.history WHERE gid = '$gid' AND step = 1"),
	'action_started,retry_scheduled,action_started,retry_scheduled,action_started,action_failed,compensation_done',
	'retry: its history has three attempts, two retries, and the unknown outcome compensated');
is(cq("SELECT last_sqlstate FROM saga.steps WHERE gid = '$gid'"), '40001', 'retry: the last error is kept');
is($part->safe_psql('bank_a', "SELECT last_value FROM tries"), '3',
	'retry: the participant was called three times, not four');

$coord->stop;
$part->stop;
done_testing();
