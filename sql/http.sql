-- HTTP targets: the SQL surface.  saga.http() checks, targets' and user
-- mappings' options, and what a step on an HTTP target may hold.  Nothing
-- here calls a service (test/t/060_http.pl does).

-- a request value
SELECT saga.http('post', '/charges', '{"amount": "$1", "order": "$.order[0].id"}',
				 '{"X-Trace": "abc"}');
SELECT saga.http('GET', '/charges/$1/{$.charge.id}');

-- paths stay under the base URL
SELECT try($$SELECT saga.http('GET', 'charges')$$);
SELECT try($$SELECT saga.http('GET', 'https://evil.example/x')$$);
SELECT try($$SELECT saga.http('GET', '//evil.example/x')$$);
SELECT try($$SELECT saga.http('GET', '/a/../admin')$$);
SELECT try($$SELECT saga.http('GET', '/a/./b')$$);
SELECT try($$SELECT saga.http('GET', '/a/%2e%2E/b')$$);
SELECT try($$SELECT saga.http('GET', '/a?x=1')$$);
SELECT try($$SELECT saga.http('GET', '/a#frag')$$);
SELECT try($$SELECT saga.http('GET', E'/a\nb')$$);
SELECT try($$SELECT saga.http('GET', '/a/x$1')$$);
SELECT try($$SELECT saga.http('GET', '/a/{$.}')$$);
-- no ";" (path parameters), no encoded "/", "\", ".", "%", NUL
SELECT try($$SELECT saga.http('GET', '/a/..;/admin')$$);
SELECT try($$SELECT saga.http('GET', '/a;x=1/b')$$);
SELECT try($$SELECT saga.http('GET', '/a/x%2Fy')$$);
SELECT try($$SELECT saga.http('GET', '/a/x%5cy')$$);
SELECT try($$SELECT saga.http('GET', '/a/x%2E')$$);
SELECT try($$SELECT saga.http('GET', '/a/%00')$$);
SELECT try($$SELECT saga.http('GET', '/a/%252E%252E')$$);
SELECT try($$SELECT saga.http('GET', '/a/%zz')$$);
SELECT try($$SELECT saga.http('GET', '/a/x%4')$$);
SELECT saga.http('GET', '/a/caf%C3%A9%20au%20lait');
SELECT try($$SELECT saga.http('TRACE', '/a')$$);
SELECT try($$SELECT saga.http(NULL, '/a')$$);
SELECT try($$SELECT saga.http('GET', NULL)$$);

-- headers a step may not set, or that would inject
SELECT try($$SELECT saga.http('GET', '/a', headers => '{"Authorization": "Bearer x"}')$$);
SELECT try($$SELECT saga.http('GET', '/a', headers => '{"hOsT": "evil"}')$$);
SELECT try($$SELECT saga.http('GET', '/a', headers => '{"Content-Length": "1"}')$$);
SELECT try($$SELECT saga.http('GET', '/a', headers => '{"IDEMPOTENCY-KEY": "mine"}')$$);
SELECT try($$SELECT saga.http('POST', '/a', headers => '{"content-type": "text/plain"}')$$);
SELECT try($$SELECT saga.http('GET', '/a', headers => '{"Accept": "text/html"}')$$);
SELECT try($$SELECT saga.http('POST', '/a', headers => '{"EXPECT": "100-continue"}')$$);
SELECT try($$SELECT saga.http('GET', '/a', headers => E'{"X-A": "a\\r\\nHost: evil"}')$$);
SELECT try($$SELECT saga.http('GET', '/a', headers => '{"X A": "b"}')$$);
SELECT try($$SELECT saga.http('GET', '/a', headers => '{"X-N": 1}')$$);
SELECT try($$SELECT saga.http('GET', '/a', headers => '["X-A"]')$$);
SELECT try($$SELECT saga.http('POST', '/a', '{"x": "$.a..b"}')$$);

-- servers: url and ca_file, never mixed with libpq options
CREATE SERVER svc FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'http://127.0.0.1:9/v1/');
SELECT try($$CREATE SERVER svc2 FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'http://127.0.0.1:9', host 'x')$$);
SELECT try($$CREATE SERVER svc2 FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'ftp://127.0.0.1/')$$);
SELECT try($$CREATE SERVER svc2 FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'https://user:pw@127.0.0.1/')$$);
SELECT try($$CREATE SERVER svc2 FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'https://127.0.0.1/?k=1')$$);
SELECT try($$CREATE SERVER svc2 FOREIGN DATA WRAPPER pg_saga OPTIONS (url 'https://127.0.0.1', ca_file 'ca.crt')$$);
SELECT try($$CREATE SERVER svc2 FOREIGN DATA WRAPPER pg_saga OPTIONS (host 'x', ca_file '/ca.crt')$$);
-- user mappings: bearer_token and headers, checked without showing them
CREATE USER MAPPING FOR CURRENT_USER SERVER svc
	OPTIONS (bearer_token 'tok-secret', headers '{"X-Api-Key": "key-secret"}');
SELECT try($$ALTER USER MAPPING FOR CURRENT_USER SERVER svc OPTIONS (SET headers '{"Authorization": "key-secret"}')$$);
SELECT try($$ALTER USER MAPPING FOR CURRENT_USER SERVER svc OPTIONS (SET headers 'not json key-secret')$$);
SELECT try($$ALTER USER MAPPING FOR CURRENT_USER SERVER svc OPTIONS (SET headers '{"X-A": "key-secret\r\nHost: x"}')$$);

-- setup_participant has nothing to do on a service
SELECT try($$SELECT saga.setup_participant('svc')$$);

-- requests for HTTP targets, SQL for databases
SELECT try($$SELECT saga.start(ARRAY[saga.step('svc', 'SELECT 1')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('loop', saga.http('POST', '/a'))])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('svc', saga.http('POST', '/a'), expect_rows => 1)])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('svc', saga.http('POST', '/a'))], mode => 'xa')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('svc', saga.http('POST', '/a'))], mode => 'at')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('svc', saga.http('POST', '/a', '{"n": "$2"}'))], args => '{1}')$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('svc', saga.http('POST', '/a/$1'))])$$);
-- SQL text beside a request is read as a request, and is not one
SELECT try($$SELECT saga.start(ARRAY[saga.step('svc', saga.http('POST', '/a'), 'DELETE FROM x')])$$);
SELECT try($$SELECT saga.start(ARRAY[saga.step('svc', saga.http('POST', '/a'), saga.http('POST', '/b'), saga.http('POST', '/c'))])$$);

-- add_step takes requests too, with the same checks; nothing is sent
SELECT saga.begin('http-build');
SELECT saga.add_step('http-build', 'svc', saga.http('POST', '/charges'),
					 saga.http('POST', '/charges/{$.step1.id}/refund'));
SELECT try($$SELECT saga.add_step('http-build', 'svc', 'SELECT 1')$$);
SELECT try($$SELECT saga.add_step('http-build', 'loop', saga.http('POST', '/x'))$$);
SELECT step, target, action::jsonb, compensation::jsonb FROM saga.gtx_step s
  JOIN saga.gtx g ON g.id = s.gtx_id WHERE g.gid = 'http-build';
SELECT saga.abort('http-build');
-- a saga begun before 1.5 has no saga key: no step on an HTTP target
SELECT saga.begin('http-nokey');
UPDATE saga.gtx SET saga_key = NULL WHERE gid = 'http-nokey';
SELECT try($$SELECT saga.add_step('http-nokey', 'svc', saga.http('POST', '/charges'))$$);
SELECT saga.add_step('http-nokey', 'loop', 'SELECT 1');
SELECT saga.abort('http-nokey');

-- the secrets are in no view of pg_saga
SELECT count(*) AS views_showing_secrets FROM (
	SELECT t::text AS v FROM saga.transactions t UNION ALL
	SELECT s::text FROM saga.steps s UNION ALL
	SELECT h::text FROM saga.history h) v
 WHERE v LIKE '%secret%';

DROP USER MAPPING FOR CURRENT_USER SERVER svc;
DROP SERVER svc;
