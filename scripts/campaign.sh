#!/usr/bin/env bash
# scripts/campaign.sh: runs the fault campaign (test/fault_campaign.pl) on
# throwaway clusters, as scripts/test.sh runs the TAP tests: installs what is
# missing, builds, installs, and runs as the postgres OS user in a copy of
# the repository.  Arguments go to the campaign, e.g.
#
#   bash scripts/campaign.sh --duration 300 --sagas 3000 --seed 7
#
# As root, or as a user with sudo (it re-runs itself through sudo).
#
# It prints the campaign's figures and exits non-zero on an invariant
# violation (a failed lifecycle check in a server log counts as one: it
# builds with SAGA_CHECKS=1, as scripts/test.sh).  SAGA_KEEP_WORKDIR=1
# keeps the logs (test/tmp_check/log).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib.sh
saga_run_as_root scripts/campaign.sh "$@"

trap saga_exit_handler EXIT

saga_install_deps
saga_build_install SAGA_CHECKS=1
work="$(saga_workdir)"
saga_log "work directory $work"

pgxs_src="$(dirname "$(dirname "$("$(saga_pg_config)" --pgxs)")")"
export PG_REGRESS="$pgxs_src/test/regress/pg_regress"
export PERL5LIB="$pgxs_src/test/perl:$work/test/perl${PERL5LIB:+:$PERL5LIB}"
export PG_TEST_TIMEOUT_DEFAULT="${PG_TEST_TIMEOUT_DEFAULT:-600}"
export PGUSER=postgres TESTDIR="$work/test" TESTDATADIR="$work/test/tmp_check"
unset PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGHOST PGPORT

(cd "$work" && saga_as_pg perl test/fault_campaign.pl "$@")
