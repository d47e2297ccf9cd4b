#!/usr/bin/env bash
# scripts/test.sh: runs every test of pg_saga.
#
# The tests themselves run the usual PGXS way (see the Makefile and
# docs/contributing.md): `make installcheck` (pg_regress on its own
# throwaway instance, then the TAP tests), `make prove_installcheck
# PROVE_TESTS=...` and `make pgtap`.  What this script adds: on a Debian
# machine, as root (a user with sudo: it re-runs itself through sudo), it
# installs the dependencies, builds (warnings are errors: PG_CFLAGS in the
# Makefile; with SAGA_CHECKS=1, the checks of lifecycle transitions), installs, and calls those targets as the postgres OS user in a
# copy of the repository, one test at a time, for
#   1. the pg_regress suite (REGRESS in the Makefile),
#   2. the pgTAP files test/pgtap/*.sql, each with `make pgtap`,
#   3. the TAP tests test/t/*.pl, each with `make prove_installcheck`;
# then it adds up the results (`tests: N passed, N failed`), on every
# PostgreSQL version asked for (the version matrix below).  Exits non-zero
# if anything failed; every cluster is stopped on exit.
#
# Arguments select what runs (default: everything):
#   regress              the pg_regress suite
#   pgtap                every pgTAP file; pgtap/NAME.sql one of them
#   tap                  every TAP test;   t/NAME.pl one of them
# e.g. `scripts/test.sh t/001_transfer.pl`.  SAGA_KEEP_WORKDIR=1 keeps the
# work directory (logs, data directories) for a look afterwards.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib.sh
saga_run_as_root scripts/test.sh "$@"

# --- PostgreSQL versions ------------------------------------------------
# SAGA_PG_VERSIONS lists the major versions to test ("17", "15 17", "all"
# for every supported one).  Default: this machine's (SAGA_PG_VERSION, see
# scripts/lib.sh); with CI=true, all.  A version this machine's Debian does
# not ship runs in a Debian root that ships it (scripts/debian-root.sh).
# With several, each runs in turn and the closing line adds them up.
SAGA_SUPPORTED_PG_VERSIONS="15 17"
versions="${SAGA_PG_VERSIONS:-$([ "${CI:-}" = true ] && echo all || echo "$SAGA_PG_VERSION")}"
[ "$versions" != all ] || versions="$SAGA_SUPPORTED_PG_VERSIONS"
# Whether version $1 installs here: this Debian's own, installed, or known to apt.
pg_version_here() {
	[ "$1" = "$(saga_host_pg_version)" ] \
		|| dpkg-query -W -f='${Status}' "postgresql-server-dev-$1" 2>/dev/null | grep -q 'install ok installed' \
		|| apt-cache policy "postgresql-server-dev-$1" 2>/dev/null | grep -q 'Candidate: [0-9]'
}
# run_version V ARG...: the suite on PostgreSQL V, here or in a Debian root.
run_version() {
	local v="$1" release
	shift
	if pg_version_here "$v"; then
		SAGA_PG_VERSION="$v" SAGA_PG_VERSIONS="$v" bash scripts/test.sh "$@"
	else
		release="$(saga_pg_release "$v")" || saga_die "PostgreSQL $v: no Debian release known to ship it"
		bash scripts/debian-root.sh "$release" "$@"
	fi
}
if [ "$versions" != "$SAGA_PG_VERSION" ] || ! pg_version_here "$SAGA_PG_VERSION"; then
	all_passed=0 all_failed=0 summary=() all_failures=()
	for v in $versions; do
		saga_log "=== PostgreSQL $v ==="
		out="$(mktemp)"
		rc=0
		run_version "$v" "$@" 2>&1 | tee "$out" || rc=$?
		last="$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1 || true)"
		if [ -n "$last" ]; then
			read -r p f < <(echo "$last" | sed -E 's/^tests: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
		else
			p=0 f=1
			all_failures+=("PostgreSQL $v: the suite did not finish (exit $rc)")
		fi
		while IFS= read -r name; do
			all_failures+=("PostgreSQL $v: $name")
		done < <(awk '/^failed:$/ { on = 1; next } /^tests: / { on = 0 } on && /^  / { sub(/^  /, ""); print }' "$out")
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
			all_failures+=("PostgreSQL $v: exit $rc")
		fi
		rm -f "$out"
		summary+=("PostgreSQL $v: $p passed, $f failed")
		all_passed=$((all_passed + p))
		all_failed=$((all_failed + f))
	done
	echo
	printf '%s\n' "${summary[@]}"
	if [ "${#all_failures[@]}" -gt 0 ]; then
		echo "failed:"
		printf '  %s\n' "${all_failures[@]}"
	fi
	echo "tests: $all_passed passed, $all_failed failed"
	[ "$all_failed" -eq 0 ]
	exit
fi
# ------------------------------------------------------------------------

# --- what to run --------------------------------------------------------
run_regress=0
run_pgtap=0
run_tap=0
pgtap_files=()
tap_files=()
if [ "$#" -eq 0 ]; then
	run_regress=1
	run_pgtap=1
	run_tap=1
fi
for arg in "$@"; do
	arg="${arg#test/}"
	case "$arg" in
		regress) run_regress=1 ;;
		pgtap) run_pgtap=1 ;;
		tap) run_tap=1 ;;
		pgtap/*.sql) pgtap_files+=("test/$arg") ;;
		t/*.pl) tap_files+=("test/$arg") ;;
		*) saga_die "unknown test selection: $arg (regress, pgtap, pgtap/NAME.sql, tap, t/NAME.pl)" ;;
	esac
done
if [ "$run_pgtap" -eq 1 ]; then
	pgtap_files=(test/pgtap/*.sql)
fi
if [ "$run_tap" -eq 1 ]; then
	tap_files=(test/t/*.pl)
fi
# an unmatched glob stays literal: drop it
existing=()
for f in ${pgtap_files[@]+"${pgtap_files[@]}"}; do
	if [ -f "$f" ]; then existing+=("$f"); else [ "$run_pgtap" -eq 1 ] || saga_die "no such test: $f"; fi
done
pgtap_files=(${existing[@]+"${existing[@]}"})
existing=()
for f in ${tap_files[@]+"${tap_files[@]}"}; do
	if [ -f "$f" ]; then existing+=("$f"); else [ "$run_tap" -eq 1 ] || saga_die "no such test: $f"; fi
done
tap_files=(${existing[@]+"${existing[@]}"})

# --- bookkeeping --------------------------------------------------------
passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); failures+=("$1"); }

# TAP tests that die hard may leave postmasters behind: stop whatever runs
# from the work directory.
trap saga_exit_handler EXIT

# --- build --------------------------------------------------------------
# with the checks of lifecycle transitions (SAGA_CHECK_STATE, src/pg_saga.h),
# which production builds leave out: a transition from a wrong state fails
# the test that ran it
saga_install_deps
saga_build_install SAGA_CHECKS=1
work="$(saga_workdir)"
saga_log "work directory $work"

bindir="$(saga_pg_bindir)"
export PG_TEST_TIMEOUT_DEFAULT="${PG_TEST_TIMEOUT_DEFAULT:-90}"
unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS

# run_make SECONDS TARGET VAR=VALUE...: a target of the Makefile, as
# postgres, in the work directory, stopped after SECONDS (0: never).
run_make() {
	local seconds="$1"
	shift
	(cd "$work" && saga_as_pg timeout "$seconds" make -s PG_CONFIG="$bindir/pg_config" "$@")
}

# the logs of a TAP run (make prove_installcheck keeps them in tmp_check/log)
show_tap_logs() {
	local name="$1" log
	for log in "$work"/tmp_check/log/*"$name"*; do
		[ -f "$log" ] || continue
		echo "=== $log (last 300 lines) ==="
		tail -n 300 "$log"
	done
}

# --- 1: pg_regress, on the instance it starts itself ---------------------
if [ "$run_regress" -eq 1 ]; then
	saga_log "pg_regress (make installcheck)"
	rc=0
	# a port nothing listens on: other clusters of this machine may use
	# pg_regress's default
	run_make 0 installcheck TAP_TESTS= EXTRA_REGRESS_OPTS="--port=$(saga_free_port)" \
		>"$work/installcheck.out" 2>&1 || rc=$?
	cat "$work/installcheck.out"
	# pg_regress 15: "test NAME ... ok"; 16 and later: "ok 1 - NAME" (TAP)
	n_ok=$(grep -cE '\.\.\. +ok|^ok [0-9]+ +[-+] ' "$work/installcheck.out" || true)
	n_bad=$(grep -cE '\.\.\. +(FAILED|failed)|^not ok [0-9]+ +[-+] ' "$work/installcheck.out" || true)
	passed=$((passed + n_ok))
	for t in $(grep -E '\.\.\. +(FAILED|failed)|^not ok [0-9]+ +[-+] ' "$work/installcheck.out" \
			| sed -E 's/^not ok [0-9]+ +[-+] +([^ ]+).*/\1/; s/^(test| )? *([^ ]+) +\.\.\..*/\2/'); do
		fail "regress/$t"
	done
	if [ "$rc" -ne 0 ] && [ "$n_bad" -eq 0 ]; then
		fail "regress (make installcheck exited $rc)"
	fi
	# a failed check of a lifecycle transition (see the build above)
	if grep -q 'pg_saga state check failed' "$work/log/postmaster.log" 2>/dev/null; then
		fail "regress (failed state checks in log/postmaster.log)"
		grep 'pg_saga state check failed' "$work/log/postmaster.log"
	fi
	if [ "$rc" -ne 0 ]; then
		[ ! -f "$work/regression.diffs" ] || { echo "=== regression.diffs ==="; cat "$work/regression.diffs"; }
		[ ! -f "$work/log/postmaster.log" ] || { echo "=== log/postmaster.log (last 300 lines) ==="; tail -n 300 "$work/log/postmaster.log"; }
	fi
fi

# --- 2: pgTAP, each file on a coordinator of its own ----------------------
if [ "${#pgtap_files[@]}" -gt 0 ]; then
	saga_log "pgTAP (${#pgtap_files[@]} files)"
	for f in "${pgtap_files[@]}"; do
		saga_log "pgTAP $f"
		if run_make 600 pgtap PGTAP_TESTS="$f" PROVE_FLAGS=-v; then
			pass
		else
			fail "$f"
			saga_stop_leftovers
			show_tap_logs pgtap
		fi
	done
elif [ "$run_pgtap" -eq 1 ]; then
	saga_log "pgTAP: no files in test/pgtap, skipped"
fi

# --- 3: TAP tests, each with its own clusters ----------------------------
if [ "${#tap_files[@]}" -gt 0 ]; then
	for f in "${tap_files[@]}"; do
		name="$(basename "$f" .pl)"
		saga_log "TAP $f"
		if run_make 900 prove_installcheck PROVE_TESTS="$f"; then
			pass
		else
			fail "$f"
			saga_stop_leftovers
			show_tap_logs "$name"
		fi
	done
fi

# --- summary -------------------------------------------------------------
echo
if [ "$failed" -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
if [ $((passed + failed)) -eq 0 ]; then
	echo "no test ran"
	exit 1
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
