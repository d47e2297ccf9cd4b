# 060_http.pl: steps on HTTP targets, against a small idempotent service.
#
#  - A saga mixing a SQL step and HTTP steps succeeds; a charge id from a
#    result goes into a later step's body and into the refund's path.
#  - Every request carries its Idempotency-Key, the content type, the
#    mapping's token and headers; the same key on every attempt.
#  - A 4xx on a later step compensates the earlier ones (the HTTP one with
#    its own key); the failed step records 38000 and the status.
#  - 503 and 429 (Retry-After honoured, in seconds and as a date) and 408
#    are retried with one key.
#  - saga.max_connections_per_target bounds the requests in flight.
#  - A reply lost after the service acted leaves one effect.
#  - A service down for a while is waited out.
#  - kill -9 of the worker mid-request: the request repeats with its key,
#    one effect.
#  - A slow service hits the step timeout: the action is compensated and
#    never acts.  saga.abort mid-request likewise.
#  - A results path that selects nothing fails the step (2203A), unsent;
#    an answer over saga.max_result_size fails it (54000), compensated.
#  - A step whose target was altered into the other kind (SQL for a
#    service, a request for a database) fails (22023); the worker runs on.
#  - A role without USAGE on the target is refused.
#  - Values in a path are percent-encoded; a redirect is a business
#    failure, never followed.
#  - An untrusted certificate never succeeds (08006); ca_file trusts it.
#  - Secrets are in no view, no pg_stat_activity row, no log line (debug1).
#  - A purged gid used again sends new keys.
#  - tcc (try/confirm/cancel) and msg with HTTP targets; xa and at refused.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes qw(usleep);
use SagaTest;
use SagaHttp;

my ($coord, $part) = standard_setup();
$coord->append_conf('postgresql.conf', "log_min_messages = debug1\n");
$coord->reload;
like(wait_for_worker($coord, 'coord'), qr/^\d+$/, 'worker running');

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $svc = SagaHttp->new("$tmp/svc");
$svc->start;
my $url = $svc->url;
$coord->safe_psql('coord', qq{
CREATE SERVER pay FOREIGN DATA WRAPPER pg_saga OPTIONS (url '$url/v1');
CREATE USER MAPPING FOR CURRENT_USER SERVER pay
	OPTIONS (bearer_token 'tok-SECRET-1234', headers '{"X-Api-Key": "hdr-SECRET-5678"}');
});

my $coordinator_id = $coord->safe_psql('coord', 'SELECT id FROM saga.coordinator');
# the statement that created the mapping is in the log (log_statement = all):
# whatever pg_saga logs comes after it
my $log_start = -s $coord->logfile;

sub saga_key
{
	my ($gid) = @_;
	return $coord->safe_psql('coord', "SELECT saga_key FROM saga.transactions WHERE gid = '$gid'");
}

sub requests_of
{
	my ($key_re) = @_;
	return [ grep { $_->{key} =~ $key_re } @{ $svc->requests } ];
}

sub effects_of
{
	my ($key_re, $effect) = @_;
	return [ grep { $_->{key} =~ $key_re && (!$effect || $_->{effect} eq $effect) } @{ $svc->effects } ];
}

sub key_of
{
	my ($gid, $step, $op) = @_;
	return "$coordinator_id:" . saga_key($gid) . ":$step:$op";
}

sub start_saga
{
	my ($gid, $steps, %opts) = @_;
	my $extra = join('', map { ", $_ => $opts{$_}" } sort keys %opts);
	$coord->safe_psql('coord', "SELECT saga.start(ARRAY[$steps], gid => '$gid'$extra)");
	return $gid;
}

# a step charging through the service, refunded by the charge's id
my $charge = q{saga.step('pay', saga.http('POST', '/charges', '{"amount": "$1", "order": "$2"}'),
	saga.http('POST', '/charges/{$.charge.id}/refund', '{"charge": "$.charge.id"}'), name => 'charge')};
my $debit = q{saga.step('bank_a', $$UPDATE account SET balance = balance - 30 WHERE id = 1$$,
	$$UPDATE account SET balance = balance + 30 WHERE id = 1$$, name => 'debit', expect_rows => 1)};
my $receipt = q{saga.step('pay', saga.http('POST', '/receipts', '{"charge": "$.charge.id", "amount": "$1"}'),
	saga.http('DELETE', '/receipts/{$.receipt.id}'), name => 'receipt')};

# --- a mixed saga ---
my $gid = start_saga('mixed', "$debit, $charge, $receipt", args => q{ARRAY['30', 'order/7 x']});
is(wait_saga($coord, $gid), 'succeeded', 'a saga of a SQL step and two HTTP steps succeeded');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'the SQL step debited');
my $acts = effects_of(qr/^\Q$coordinator_id\E:\d+:\d:action$/, 'act');
is(scalar @$acts, 2, 'the service acted twice');
my ($charge_act) = grep { $_->{path} eq '/v1/charges' } @$acts;
is_deeply($charge_act->{body}, { amount => '30', order => 'order/7 x' }, 'the charge got the bound values');
my ($receipt_act) = grep { $_->{path} eq '/v1/receipts' } @$acts;
is($receipt_act->{body}{charge}, $charge_act->{id}, 'the receipt got the charge id from the result');
is($coord->safe_psql('coord', "SELECT saga.result('mixed') #>> '{charge,id}'"), $charge_act->{id},
	'saga.result shows the charge');
my ($req) = @{ requests_of(qr/^\Q@{[key_of($gid, 2, 'action')]}\E$/) };
ok($req, 'the charge request carried the key <coordinator>:<saga key>:2:action');
is($req->{headers}{authorization}, 'Bearer tok-SECRET-1234', 'the mapping\'s bearer token was sent');
is($req->{headers}{'x-api-key'}, 'hdr-SECRET-5678', 'the mapping\'s headers were sent');
is($req->{headers}{'content-type'}, 'application/json', 'bodies go as application/json');

# --- a 4xx on a later step compensates the earlier ones ---
$svc->rules({ match => '^POST /v1/receipts$', status => 422, times => 1 });
$gid = start_saga('fail4xx', "$debit, $charge, $receipt", args => q{ARRAY['30', 'o8']});
is(wait_saga($coord, $gid), 'aborted', 'a 422 on the last step aborts the saga');
is(step_rows($coord, $gid, 'step, status, last_sqlstate'),
	"1|compensated|\n2|compensated|\n3|failed|38000", 'earlier steps compensated, the 4xx step failed with 38000');
like(step_rows($coord, $gid, 'last_error', undef, 3), qr/^HTTP 422 from POST \/receipts on target "pay": .*scripted 422/,
	'last_error holds the status and the body');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'the SQL step was compensated');
my ($act) = @{ effects_of(qr/^\Q@{[key_of($gid, 2, 'action')]}\E$/, 'act') };
my $undo = effects_of(qr/^\Q@{[key_of($gid, 2, 'compensation')]}\E$/, 'undo');
is(scalar @$undo, 1, 'the charge was refunded once, under its own key');
is($undo->[0]{path}, "/v1/charges/$act->{id}/refund", 'the refund path names the charge');
is($undo->[0]{id}, $act->{id}, 'the refund undid that charge');
is_deeply($undo->[0]{body}, { charge => $act->{id} }, 'the refund body holds the charge id');
is(scalar @{ requests_of(qr/^\Q@{[key_of($gid, 3, 'compensation')]}\E$/) }, 0,
	'the failed step is not compensated');

# --- 503, 429, 408: retried with the same key ---
$svc->rules({ match => '^POST /v1/charges$', status => 503, times => 1, retry_after => 1 },
	{ match => '^POST /v1/charges$', status => 429, times => 1, retry_after => 1 },
	{ match => '^POST /v1/charges$', status => 408, times => 1 });
$gid = start_saga('transient', $charge, args => q{ARRAY['5', 'o9']});
is(wait_saga($coord, $gid), 'succeeded', 'a charge answered 503, 429, 408, then 201 succeeded');
my $reqs = requests_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/);
is(scalar @$reqs, 4, 'four requests, all with the same key');
is(scalar @{ effects_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/, 'act') }, 1, 'one effect');
cmp_ok($reqs->[1]{t} - $reqs->[0]{t}, '>=', 0.9, 'Retry-After of the 503 was honoured');
cmp_ok($reqs->[2]{t} - $reqs->[1]{t}, '>=', 0.9, 'Retry-After of the 429 was honoured');

# Retry-After as an HTTP date, two seconds ahead
my $when = POSIX::strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime(time + 2));
$svc->rules({ match => '^POST /v1/charges$', status => 503, times => 1, retry_after => $when });
$gid = start_saga('retrydate', $charge, args => q{ARRAY['5', 'o9b']});
is(wait_saga($coord, $gid), 'succeeded', 'a charge answered 503 with a Retry-After date succeeded');
$reqs = requests_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/);
is(scalar @$reqs, 2, 'two requests, one key');
cmp_ok($reqs->[1]{t} - $reqs->[0]{t}, '>=', 0.9, 'the Retry-After date was honoured');

# --- saga.max_connections_per_target bounds the requests in flight ---
# With 3, sagas that do not go first use at most 2 (one stays for those
# that do): six slow charges at once never overlap more than 2 at the service.
$coord->safe_psql('coord', "ALTER SYSTEM SET saga.max_connections_per_target = 3");
reload_settings($coord);
$svc->rules({ match => '^POST /v1/slowcharges$', delay => 1 });
my @par = map { "par$_" } 1 .. 6;
$coord->safe_psql('coord', join('', map {
	"SELECT saga.start(ARRAY[saga.step('pay', saga.http('POST', '/slowcharges'), name => 'c')], gid => '$_');\n" } @par));
is(wait_saga($coord, $_), 'succeeded', "$_ succeeded") foreach @par;
my @spans = map { [ $_->{t0}, $_->{t1} ] } grep { $_->{path} eq '/v1/slowcharges' } @{ $svc->effects };
is(scalar @spans, 6, 'six charges made');
my $most = 0;
foreach my $s (@spans)
{
	my $overlap = grep { $_->[0] <= $s->[0] && $_->[1] > $s->[0] } @spans;
	$most = $overlap if $overlap > $most;
}
cmp_ok($most, '<=', 2, "at most 2 requests in flight at once (saw $most)");
$coord->safe_psql('coord', "ALTER SYSTEM RESET saga.max_connections_per_target");
reload_settings($coord);
$svc->rules();

# --- a reply lost after the service acted ---
$svc->rules({ match => '^POST /v1/charges$', drop => 1, times => 1 });
$gid = start_saga('lostreply', $charge, args => q{ARRAY['6', 'o10']});
is(wait_saga($coord, $gid), 'succeeded', 'a charge whose reply was lost succeeded');
is(scalar @{ requests_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/) }, 2, 'sent twice with one key');
is(scalar @{ effects_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/, 'act') }, 1, 'one effect');
is($coord->safe_psql('coord', "SELECT saga.result('lostreply') #>> '{charge,id}'"),
	effects_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/, 'act')->[0]{id}, 'the result is the first answer');
$svc->rules();

# --- a service down for a while ---
$svc->stop;
$gid = start_saga('down', q{saga.step('pay', saga.http('POST', '/charges', '{"amount": "$1"}'), name => 'charge', max_attempts => 1000)},
	args => q{ARRAY['7']});
ok(poll_until($coord, 'coord',
	"SELECT attempts >= 2 AND last_sqlstate = '58000' FROM saga.steps WHERE gid = 'down'"),
	'the step is retried while the service is down (58000)');
$svc->start;
is(wait_saga($coord, $gid), 'succeeded', 'the saga succeeded once the service came back');
is(scalar @{ effects_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/, 'act') }, 1, 'one effect');

# --- kill -9 of the worker mid-request ---
$svc->rules({ match => '^POST /v1/holds$', delay => 3, times => 1 });
$gid = start_saga('killed', q{saga.step('pay', saga.http('POST', '/holds', '{"n": 1}'), saga.http('DELETE', '/holds/{$.hold.id}'), name => 'hold')});
my $deadline = time + 60;
usleep(50_000) until grep({ $_->{path} eq '/v1/holds' } @{ $svc->requests }) || time > $deadline;
ok(scalar(grep { $_->{path} eq '/v1/holds' } @{ $svc->requests }), 'the hold request is in flight');
my $pid = worker_pid($coord);
kill 'KILL', $pid;
like(wait_for_worker($coord, 'coord', $pid), qr/^\d+$/, 'a new worker started');
is(wait_saga($coord, $gid), 'succeeded', 'the saga succeeded after the crash');
my $hold_key = key_of($gid, 1, 'action');
cmp_ok(scalar @{ requests_of(qr/^\Q$hold_key\E$/) }, '>=', 2, 'the request was repeated');
is(scalar(grep { $_->{path} eq '/v1/holds' } @{ $svc->requests }),
	scalar @{ requests_of(qr/^\Q$hold_key\E$/) }, 'every hold request carried the same key');
ok(poll_until($coord, 'coord', 'SELECT 1', '1'), 'coordinator answers');
$deadline = time + 30;
usleep(100_000) until -e $svc->key_file($hold_key) || time > $deadline;
is(scalar @{ effects_of(qr/^\Q$hold_key\E$/, 'act') }, 1, 'one effect');

# --- a slow service: step timeout, compensated, never acts ---
$svc->rules({ match => '^POST /v1/slow$', delay => 4 });
$gid = start_saga('slow', qq{$debit, saga.step('pay', saga.http('POST', '/slow'), saga.http('POST', '/slow/undo'),
	name => 'slow', timeout => '1s', max_attempts => 1)});
is(wait_saga($coord, $gid), 'aborted', 'a step past its timeout aborts the saga');
is(step_rows($coord, $gid, 'status, last_sqlstate', undef, 2), 'compensated|58000', 'the slow step: 58000, compensated');
like(step_rows($coord, $gid, 'last_error', undef, 2), qr/within the step timeout/, 'last_error says timeout');
my $slow_key = key_of($gid, 2, 'action');
is(scalar @{ effects_of(qr/^\Q@{[key_of($gid, 2, 'compensation')]}\E$/, 'undo') }, 1, 'the compensation was sent');
$deadline = time + 30;
usleep(100_000) until -e $svc->key_file($slow_key) || time > $deadline;
ok(-e $svc->key_file($slow_key), 'the slow action finished at the service');
is(scalar @{ effects_of(qr/^\Q$slow_key\E$/, 'act') }, 0, 'the action that came after its compensation did not act');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'the debit was compensated');

# its compensation's path names its own result, unknown: the segment is "null", sent
$svc->rules({ match => '^POST /v1/slowpath$', delay => 3 });
$gid = start_saga('slowpath', q{saga.step('pay', saga.http('POST', '/slowpath'), saga.http('POST', '/slowpath/{$.sp.id}/undo'),
	name => 'sp', timeout => '1s', max_attempts => 1)});
is(wait_saga($coord, $gid), 'aborted', 'a timed-out step whose compensation path reads its own result aborts');
is(step_rows($coord, $gid, 'status'), 'compensated', 'the compensation was sent');
is(effects_of(qr/^\Q@{[key_of($gid, 1, 'compensation')]}\E$/, 'undo')->[0]{path}, '/v1/slowpath/null/undo',
	'with "null" for the unknown result');

# --- saga.abort mid-request ---
$svc->rules({ match => '^POST /v1/abortme$', delay => 4 });
$gid = start_saga('abortme', q{saga.step('pay', saga.http('POST', '/abortme'), saga.http('POST', '/abortme/undo'), name => 'a')});
$deadline = time + 60;
usleep(50_000) until grep({ $_->{path} eq '/v1/abortme' } @{ $svc->requests }) || time > $deadline;
$coord->safe_psql('coord', "SELECT saga.abort('abortme', 'changed my mind')");
is(wait_saga($coord, $gid), 'aborted', 'aborted mid-request');
is(scalar @{ effects_of(qr/^\Q@{[key_of($gid, 1, 'compensation')]}\E$/, 'undo') }, 1, 'the compensation was sent');
my $abort_key = key_of($gid, 1, 'action');
$deadline = time + 30;
usleep(100_000) until -e $svc->key_file($abort_key) || time > $deadline;
is(scalar @{ effects_of(qr/^\Q$abort_key\E$/, 'act') }, 0, 'the aborted action never acted');
$svc->rules();

# --- a results path that selects nothing; an answer over max_result_size ---
$gid = start_saga('nodata', q{saga.step('pay', saga.http('POST', '/charges', '{"charge": "$.nosuch.id"}'), name => 'c')});
is(wait_saga($coord, $gid), 'aborted', 'a results path that selects nothing fails the step');
is(step_rows($coord, $gid, 'status, last_sqlstate'), 'failed|2203A', 'with 2203A');
is(scalar @{ requests_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/) }, 0, 'and nothing was sent');
$svc->rules({ match => '^POST /v1/big$', big => 70000 });
$gid = start_saga('big', qq{$debit, saga.step('pay', saga.http('POST', '/big'), saga.http('POST', '/big/undo'), name => 'big')});
is(wait_saga($coord, $gid), 'aborted', 'an answer over saga.max_result_size fails the step');
is(step_rows($coord, $gid, 'status, last_sqlstate', undef, 2), 'compensated|54000',
	'54000, and compensated: the action took effect');
is(scalar @{ effects_of(qr/^\Q@{[key_of($gid, 2, 'compensation')]}\E$/, 'undo') }, 1, 'the undo was sent');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'the debit was compensated');
# a compensation's answer is not kept: over max_result_size it still succeeded
$svc->rules({ match => '^POST /v1/bigundo$', big => 70000 }, { match => '^POST /v1/failnow$', status => 422 });
$gid = start_saga('bigundo', q{saga.step('pay', saga.http('POST', '/charges'), saga.http('POST', '/bigundo'), name => 'h1'),
	saga.step('pay', saga.http('POST', '/failnow'), name => 'h2')});
is(wait_saga($coord, $gid), 'aborted', 'a saga whose compensation answers a big body aborts');
is(step_rows($coord, $gid, 'status, last_sqlstate'), "compensated|\nfailed|38000",
	'the compensation over max_result_size succeeded');
$svc->rules();

# --- a target altered into the other kind after its step was added ---
# The step's text no longer fits its target: the attempt fails (22023),
# the worker keeps running, other sagas go on.
my %bank = map { split /=/, $_, 2 } split / /, $coord->safe_psql('coord',
	q{SELECT array_to_string(srvoptions, ' ') FROM pg_foreign_server WHERE srvname = 'bank_a'});
my $bank_user = $coord->safe_psql('coord',
	q{SELECT option_value FROM pg_options_to_table((SELECT umoptions FROM pg_user_mappings
	  WHERE srvname = 'bank_a' AND usename = CURRENT_USER)) WHERE option_name = 'user'});
my $db_options = "host '$bank{host}', port '$bank{port}', dbname '$bank{dbname}'";
$coord->safe_psql('coord', qq{CREATE SERVER bank_alt FOREIGN DATA WRAPPER pg_saga OPTIONS ($db_options);
	CREATE USER MAPPING FOR CURRENT_USER SERVER bank_alt OPTIONS (user '$bank_user');});
my $worker_before = worker_pid($coord);
# the first step holds the second back for 8 s, long enough for the ALTER
# SERVER below to commit before the second is planned on a loaded machine
$svc->rules({ match => '^POST /v1/kindwait$', delay => 8 });
my $wait_step = q{saga.step('pay', saga.http('POST', '/kindwait'), saga.http('POST', '/kindwait/undo'), name => 'w')};
$gid = start_saga('kind_sql', qq{$wait_step, saga.step('bank_alt', \$\$UPDATE account SET balance = balance - 1 WHERE id = 2\$\$,
	\$\$UPDATE account SET balance = balance + 1 WHERE id = 2\$\$, name => 'sql', after => '{w}')});
$deadline = time + 60;
usleep(50_000) until grep({ $_->{key} =~ /^\Q@{[key_of($gid, 1, 'action')]}\E$/ } @{ $svc->requests }) || time > $deadline;
$coord->safe_psql('coord', "ALTER SERVER bank_alt OPTIONS (DROP host, DROP port, DROP dbname, ADD url '$url/v1')");
is(wait_saga($coord, start_saga('kind_other', $charge, args => q{ARRAY['2', 'o-kind']})), 'succeeded',
	'another saga runs meanwhile');
is(wait_saga($coord, $gid), 'aborted', 'SQL for a target altered into an HTTP target fails its step');
is(step_rows($coord, $gid, 'status, last_sqlstate'), "compensated|\nfailed|22023", 'with 22023, the step before compensated');
like(step_rows($coord, $gid, 'last_error', undef, 2),
	qr/the action of step "sql" is SQL text, but target "bank_alt" is now an HTTP target/, 'last_error says why');
$gid = start_saga('kind_http', qq{$wait_step, saga.step('bank_alt', saga.http('POST', '/charges'), name => 'h', after => '{w}')});
$deadline = time + 60;
usleep(50_000) until grep({ $_->{key} =~ /^\Q@{[key_of($gid, 1, 'action')]}\E$/ } @{ $svc->requests }) || time > $deadline;
$coord->safe_psql('coord', "ALTER SERVER bank_alt OPTIONS (DROP url, ADD host '$bank{host}', ADD port '$bank{port}', ADD dbname '$bank{dbname}')");
is(wait_saga($coord, $gid), 'aborted', 'a request for a target altered into a database fails its step');
is(step_rows($coord, $gid, 'status, last_sqlstate'), "compensated|\nfailed|22023", 'with 22023');
like(step_rows($coord, $gid, 'last_error', undef, 2),
	qr/the action of step "h" is a request, but target "bank_alt" is now a database/, 'last_error says why');
is(worker_pid($coord), $worker_before, 'the worker never restarted');
is_deeply(balances($part, 'bank_a'), { 1 => 70, 2 => 100 }, 'nothing was debited');
$svc->rules();

# --- USAGE ---
$coord->safe_psql('coord', q{CREATE ROLE alice LOGIN;
	CREATE SERVER pay_closed FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'http://127.0.0.1:1');});
my ($rc, $out, $err) = $coord->psql('coord',
	q{SET ROLE alice; SELECT saga.start(ARRAY[saga.step('pay_closed', saga.http('POST', '/x'))])},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/42501: permission denied for foreign server pay_closed/, 'no USAGE: refused');

# --- data in a path is one segment; redirects are not followed ---
$gid = start_saga('escape', q{saga.step('pay', saga.http('POST', '/charges/$1/notes'), name => 'n')},
	args => q{ARRAY['../../admin?x=1#f']});
is(wait_saga($coord, $gid), 'succeeded', 'a value with ../ in a path segment');
is(requests_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/)->[0]{path}, '/v1/charges/%2E%2E%2F%2E%2E%2Fadmin%3Fx%3D1%23f/notes',
	'the value was percent-encoded as one segment, dots included');
foreach my $bad ('..', '.', '')
{
	$gid = start_saga("dots$bad", q{saga.step('pay', saga.http('POST', '/charges/$1/notes'), name => 'n')},
		args => "ARRAY['$bad']");
	is(wait_saga($coord, $gid), 'aborted', "a path value '$bad' fails the step");
	is(step_rows($coord, $gid, 'status, last_sqlstate'), 'failed|22023', "'$bad': 22023");
	is(scalar @{ requests_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/) }, 0, "'$bad': nothing was sent");
}
like(step_rows($coord, 'dots..', 'last_error'), qr/"\$1" is "\.\.", which cannot be a path segment/,
	'last_error names the placeholder');
$gid = start_saga('dotsnull', q{saga.step('pay', saga.http('POST', '/charges/$1/notes'), name => 'n')},
	args => "ARRAY[NULL]::text[]");
is(wait_saga($coord, $gid), 'aborted', 'a NULL path value fails the step');
is(step_rows($coord, $gid, 'status, last_sqlstate'), 'failed|22023', 'NULL: 22023');
# a step may not shadow the headers of its target's user mapping
$gid = start_saga('shadow', q{saga.step('pay', saga.http('POST', '/charges', headers => '{"x-API-key": "mine"}'), name => 'c')});
is(wait_saga($coord, $gid), 'aborted', 'a step header the mapping sets fails the step');
is(step_rows($coord, $gid, 'status, last_sqlstate'), 'failed|22023', 'with 22023');
like(step_rows($coord, $gid, 'last_error'), qr/the header "x-API-key" of the step is set by the user mapping/,
	'last_error names the header, not its value');
is(scalar @{ requests_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/) }, 0, 'and nothing was sent');
$svc->rules({ match => '^POST /v1/redirect$', status => 302, location => "$url/v1/elsewhere" });
$gid = start_saga('redirect', q{saga.step('pay', saga.http('POST', '/redirect'), name => 'r')});
is(wait_saga($coord, $gid), 'aborted', 'a redirect fails the step');
is(step_rows($coord, $gid, 'last_sqlstate'), '38000', 'a 3xx is 38000');
is(scalar(grep { $_->{path} =~ /elsewhere/ } @{ $svc->requests }), 0, 'the redirect was not followed');
$svc->rules();

# --- TLS ---
my $pki = "$tmp/pki";
mkdir $pki;
system_or_bail('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$pki/ca.key",
	'-out', "$pki/ca.crt", '-days', '2', '-subj', '/CN=pg_saga test CA');
system_or_bail('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$pki/srv.key",
	'-out', "$pki/srv.csr", '-subj', '/CN=127.0.0.1');
PostgreSQL::Test::Utils::append_to_file("$pki/ext", "subjectAltName=IP:127.0.0.1\n");
system_or_bail('openssl', 'x509', '-req', '-in', "$pki/srv.csr", '-CA', "$pki/ca.crt", '-CAkey', "$pki/ca.key",
	'-CAcreateserial', '-out', "$pki/srv.crt", '-days', '2', '-extfile', "$pki/ext");
chmod 0644, glob("$pki/*");
my $tls = SagaHttp->new("$tmp/tls");
$tls->start(tls => { cert => "$pki/srv.crt", key => "$pki/srv.key" });
my $tls_url = $tls->url;
$coord->safe_psql('coord', qq{
CREATE SERVER pay_untrusted FOREIGN DATA WRAPPER pg_saga OPTIONS (url '$tls_url');
CREATE SERVER pay_trusted FOREIGN DATA WRAPPER pg_saga OPTIONS (url '$tls_url', ca_file '$pki/ca.crt');
});
$gid = start_saga('untrusted', q{saga.step('pay_untrusted', saga.http('POST', '/charges'), name => 'c')});
is(wait_saga($coord, $gid), 'aborted', 'an untrusted certificate fails the step');
is(step_rows($coord, $gid, 'status, last_sqlstate'), 'failed|08006', 'TLS verification failure: 08006, not retried');
is(scalar @{ $tls->requests }, 0, 'no request reached the service');
$gid = start_saga('trusted', q{saga.step('pay_trusted', saga.http('POST', '/charges'), name => 'c')});
is(wait_saga($coord, $gid), 'succeeded', 'ca_file makes the certificate trusted');
is(scalar @{ $tls->effects }, 1, 'the service acted over TLS');
$tls->stop;

# --- secrets ---
# a service that echoes the request's headers in an error's body
$svc->rules({ match => '^POST /v1/echo$', status => 400, echo => 1 });
$gid = start_saga('echo', q{saga.step('pay', saga.http('POST', '/echo'), name => 'e')});
is(wait_saga($coord, $gid), 'aborted', 'a 400 echoing the headers fails the step');
like(step_rows($coord, $gid, 'last_error'), qr/"Bearer \[redacted\]"/,
	'the bearer token is redacted from last_error');
$svc->rules();
my $views = $coord->safe_psql('coord', q{SELECT string_agg(t::text, ' ') FROM saga.transactions t});
$views .= $coord->safe_psql('coord', q{SELECT string_agg(s::text, ' ') FROM saga.steps s});
$views .= $coord->safe_psql('coord', q{SELECT string_agg(h::text, ' ') FROM saga.history h});
$views .= $coord->safe_psql('coord', q{SELECT string_agg(a::text, ' ') FROM pg_stat_activity a WHERE query NOT LIKE '%pg_stat_activity%'});
unlike($views, qr/SECRET/, 'no secret in the views or pg_stat_activity');
my $log = substr(slurp_file($coord->logfile), $log_start);
unlike($log, qr/SECRET/, 'no secret in the log (debug1) since the mapping was made');
like($log, qr/DEBUG/, 'the log was at debug1');

# --- a purged gid used again sends new keys ---
$gid = start_saga('again', $charge, args => q{ARRAY['1', 'o1']});
is(wait_saga($coord, $gid), 'succeeded', 'first saga "again"');
my $first_key = key_of($gid, 1, 'action');
$coord->safe_psql('coord', "SELECT saga.purge('0 seconds')");
$gid = start_saga('again', $charge, args => q{ARRAY['1', 'o1']});
is(wait_saga($coord, $gid), 'succeeded', 'second saga "again" after a purge');
isnt(key_of($gid, 1, 'action'), $first_key, 'a new key');
is(scalar @{ effects_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/, 'act') }, 1, 'the new saga acted');

# --- tcc and msg ---
$gid = start_saga('tcc', q{saga.step('pay', saga.http('POST', '/seats', '{"seat": "$1"}'),
	saga.http('DELETE', '/seats/{$.seat.id}'), saga.http('POST', '/seats/{$.seat.id}/confirm'), name => 'seat')},
	mode => q{'tcc'}, args => q{ARRAY['12A']});
is(wait_saga($coord, $gid), 'succeeded', 'tcc over HTTP succeeded');
is(step_rows($coord, $gid, 'status'), 'confirmed', 'the step is confirmed');
my ($seat) = @{ effects_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/, 'act') };
my ($confirm) = @{ effects_of(qr/^\Q@{[key_of($gid, 1, 'confirm')]}\E$/, 'confirm') };
is($confirm->{path}, "/v1/seats/$seat->{id}/confirm", 'the confirm named the try\'s seat, with its own key');
$svc->rules({ match => '^POST /v1/hooks$', status => 503, times => 2 });
$gid = start_saga('msg', q{saga.step('pay', saga.http('POST', '/hooks', '{"event": "paid"}'), name => 'hook')},
	mode => q{'msg'});
is(wait_saga($coord, $gid), 'succeeded', 'a msg delivery retried through 503s succeeded');
is(scalar @{ effects_of(qr/^\Q@{[key_of($gid, 1, 'action')]}\E$/, 'act') }, 1, 'delivered once');
$svc->rules();

# --- xa and at refuse HTTP targets ---
for my $mode (qw(xa at))
{
	($rc, $out, $err) = $coord->psql('coord',
		"SELECT saga.start(ARRAY[saga.step('pay', saga.http('POST', '/x'))], mode => '$mode')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/22023: mode $mode cannot call HTTP target "pay"/, "mode $mode refuses an HTTP target");
}

$svc->stop;
done_testing();
