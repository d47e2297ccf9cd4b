# test/pgtap.pl: runs the pgTAP files with pg_prove on a throwaway
# coordinator.
#
# `make pgtap` runs it through prove, as `make prove_installcheck` runs the
# TAP tests: a coordinator node (SagaTest::new_coordinator, configured by
# test/regress.conf) gets a database saga_pgtap with the extensions pgtap
# and pg_saga, and pg_prove runs each file named in SAGA_PGTAP_TESTS
# (space-separated; default test/pgtap/*.sql) there, one assertion per
# file.  Each file runs in a transaction it rolls back, so they share the
# database.  The node is stopped at the end, also when a file fails.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SagaTest;

my @files = split ' ', ($ENV{SAGA_PGTAP_TESTS} // '');
@files = sort glob('test/pgtap/*.sql') unless @files;
plan skip_all => 'no pgTAP file to run' unless @files;

my $node = new_coordinator('pgtap');
$node->safe_psql('postgres', 'CREATE DATABASE saga_pgtap');
$node->safe_psql('saga_pgtap', 'CREATE EXTENSION pgtap');
$node->safe_psql('saga_pgtap', 'CREATE EXTENSION pg_saga');

foreach my $file (@files)
{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[
			'pg_prove', '--host', $node->host, '--port', $node->port,
			'--dbname', 'saga_pgtap', $file
		],
		'<', \undef, '>', \$out, '2>', \$err);
	ok($ok, $file) or diag "$out$err";
	note $out;
}

$node->stop;
done_testing();
