-- saga.begin: gids, modes, timeouts, payloads.  The errors it raises are
-- checked once, by pg_regress (sql/api_errors.sql, sql/bad_input.sql).
BEGIN;
SELECT plan(15);

SELECT matches(saga.begin(),
	'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
	'begin() with no gid returns a new UUID');
SELECT isnt(saga.begin(), saga.begin(), 'two gid-less begins return different gids');
SELECT matches(saga.begin(NULL), '^[0-9a-f-]{36}$', 'begin(NULL) returns a new UUID');

-- the clock around the call, for created_at below
CREATE TEMP TABLE begin_clock AS SELECT clock_timestamp() AS before_call, NULL::timestamptz AS after_call;
SELECT is(saga.begin('pgtap-begin-1'), 'pgtap-begin-1', 'begin(gid) returns the gid given');
UPDATE begin_clock SET after_call = clock_timestamp();
SELECT is(saga.status('pgtap-begin-1'), 'building', 'a new saga is building');
SELECT results_eq(
	$$SELECT mode, status, owner, payload, submitted_at, finished_at, deadline, steps, steps_done, last_error
		FROM saga.transactions WHERE gid = 'pgtap-begin-1'$$,
	$$VALUES ('saga'::text, 'building'::text, current_user::text, NULL::jsonb,
			  NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, 0, 0, NULL::text)$$,
	'saga.transactions shows the new saga, owned by the caller, nothing submitted yet');
-- set by the call itself: not NULL, not the transaction's start (now(),
-- which is before before_call), not a constant
SELECT ok((SELECT created_at BETWEEN before_call AND after_call
			 FROM saga.transactions, begin_clock WHERE gid = 'pgtap-begin-1'),
	'created_at is the time of the begin() call');

SELECT is(saga.begin('pgtap-begin-payload', payload => '{"order": 42, "items": ["a", "b"]}'),
	'pgtap-begin-payload', 'begin accepts a payload');
SELECT is((SELECT payload FROM saga.transactions WHERE gid = 'pgtap-begin-payload'),
	'{"order": 42, "items": ["a", "b"]}'::jsonb, 'the payload is kept as given');

SELECT is(saga.begin('pgtap-begin-timeout', 'saga', '5 minutes'), 'pgtap-begin-timeout',
	'begin accepts a timeout');
SELECT is((SELECT deadline FROM saga.transactions WHERE gid = 'pgtap-begin-timeout'), NULL,
	'the deadline is not set before submit (it counts from the submitting commit)');

-- gid length: 1 to 128 characters (characters, not bytes).
SELECT is(saga.begin(repeat('g', 128)), repeat('g', 128), 'a gid of 128 characters is accepted');
SELECT lives_ok($$SELECT saga.begin(repeat('é', 128))$$,
	'a gid of 128 multibyte characters is accepted (the limit counts characters)');

SELECT is(saga.begin('pgtap-begin-xa', 'xa'), 'pgtap-begin-xa', 'mode xa is accepted');
SELECT is(saga.begin('pgtap-begin-explicit', mode => 'saga'), 'pgtap-begin-explicit',
	'mode saga can be given explicitly');

SELECT * FROM finish();
ROLLBACK;
