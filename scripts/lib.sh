# scripts/lib.sh: shell helpers shared by scripts/test.sh and scripts/demo.sh.
#
# Source it from bash (`. scripts/lib.sh`).  It installs the Debian packages
# the project needs, builds and installs the extension against PostgreSQL NN,
# and starts and stops throwaway clusters as the `postgres` OS user (the
# server refuses to run as root).  Every cluster it starts is recorded and
# stopped by saga_cleanup, which saga_start_cluster installs as the EXIT trap
# unless the caller already has one (then call saga_cleanup from it).
#
# One rule for users: the scripts run as root (they install packages), and
# every server, client and test runs as the postgres OS user.  A script
# started by another user re-runs itself through sudo (saga_run_as_root);
# without sudo it stops with one line saying so.  Clusters are created UTF8
# with the C.UTF-8 locale, which every Debian has, whatever the caller's
# LANG and LC_* (none at all on a fresh machine).
#
# Functions:
#   saga_run_as_root SCRIPT ARGS...  re-run SCRIPT (relative to the repository)
#                               through sudo unless root already
#   saga_install_deps           apt-get the build and test dependencies if missing
#   saga_build_install [VAR=VALUE...]  make (warnings are errors: PG_CFLAGS
#                               in the Makefile) with those variables (e.g.
#                               SAGA_CHECKS=1), then make install
#   saga_pg_bindir              echo the PostgreSQL NN bin directory
#   saga_as_pg CMD...           run CMD as the postgres OS user
#   saga_workdir                echo a postgres-owned copy of the repository
#   saga_free_port              echo a free TCP port on 127.0.0.1
#   saga_start_cluster DIR PORT initdb and start a cluster in DIR on PORT
#   saga_stop_cluster DIR       stop that cluster
#   saga_cleanup                stop every cluster started here, remove the workdir

# --- PostgreSQL version --------------------------------------------------
# NN, the PostgreSQL major version the scripts install, build against and test:
# SAGA_PG_VERSION if the user names one, else the one this machine's Debian
# ships (15 on bookworm, 17 on trixie), else the newest postgresql-NN apt
# knows.  saga_pg_release names the Debian release that ships a version.
saga_pg_release() {
	case "$1" in
		15) echo bookworm ;;
		17) echo trixie ;;
		*) return 1 ;;
	esac
}

saga_host_pg_version() {
	local codename=""
	codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
	case "$codename" in
		bookworm) echo 15 ;;
		trixie) echo 17 ;;
		*) apt-cache pkgnames postgresql- 2>/dev/null | sed -nE 's/^postgresql-([0-9]+)$/\1/p' \
			| sort -n | tail -n 1 | grep . || echo 15 ;;
	esac
}

SAGA_PG_VERSION="${SAGA_PG_VERSION:-$(saga_host_pg_version)}"
# ------------------------------------------------------------------------
SAGA_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One registry per top-level script: $$ is the same in command substitutions.
SAGA_CLUSTER_LIST="${TMPDIR:-/tmp}/pg_saga_clusters.$$"
# initdb options of every cluster the scripts and tests make
SAGA_INITDB_LOCALE=(--encoding=UTF8 --locale=C.UTF-8)
SAGA_PACKAGES=("postgresql-$SAGA_PG_VERSION" "postgresql-server-dev-$SAGA_PG_VERSION" libpq-dev
	"postgresql-$SAGA_PG_VERSION-cron" "postgresql-$SAGA_PG_VERSION-pgtap"
	libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
	libcurl4-openssl-dev openssl libio-socket-ssl-perl
	perl make gcc locales)

saga_log() {
	echo "[$(date +%H:%M:%S)] $*" >&2
}

saga_die() {
	echo "error: $*" >&2
	exit 1
}

# saga_run_as_root SCRIPT ARGS...: as root, returns; as another user, runs
# `sudo bash SCRIPT ARGS...` in place of the caller (SCRIPT relative to the
# repository), keeping the SAGA_*, BENCH_*, PROFILE_*, PG_TEST_* variables
# and TMPDIR and CI; without sudo, fails with one line.
saga_run_as_root() {
	local script="$1" keep=() var
	shift
	[ "$(id -u)" -eq 0 ] && return 0
	command -v sudo >/dev/null 2>&1 \
		|| saga_die "bash $script must run as root (it installs packages and runs PostgreSQL as the postgres OS user), and there is no sudo here: run it as root"
	for var in $(compgen -e); do
		case "$var" in
			SAGA_*|BENCH_*|PROFILE_*|PG_TEST_*|TMPDIR|CI) keep+=("$var=${!var}") ;;
		esac
	done
	saga_log "not root: running it again through sudo"
	exec sudo env ${keep[@]+"${keep[@]}"} bash "$SAGA_REPO_ROOT/$script" "$@"
}

# The scripts' steps need root (see saga_run_as_root).
saga_need_root() {
	[ "$(id -u)" -eq 0 ] || saga_die "run as root (see saga_run_as_root in scripts/lib.sh)"
}

saga_install_deps() {
	local missing=() pkg
	for pkg in "${SAGA_PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$pkg")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	saga_need_root
	saga_log "installing ${missing[*]}"
	env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
		|| saga_die "apt-get update failed"
	env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/tmp/pg_saga_apt.log 2>&1 \
		|| { cat /tmp/pg_saga_apt.log >&2; saga_die "apt-get install ${missing[*]} failed"; }
}

saga_pg_bindir() {
	echo "/usr/lib/postgresql/$SAGA_PG_VERSION/bin"
}

saga_pg_config() {
	echo "$(saga_pg_bindir)/pg_config"
}

# PGXS does not rebuild objects made for another PostgreSQL, nor with other
# variables (SAGA_CHECKS=1): clean when the last build was for another
# pg_config (SAGA_PG_VERSION changed) or with other variables ($@).
saga_clean_if_other_build() {
	local stamp="$SAGA_REPO_ROOT/.pg_saga_built_for"
	local build
	build="$(saga_pg_config) $*"
	if [ "$(cat "$stamp" 2>/dev/null)" != "$build" ]; then
		make -C "$SAGA_REPO_ROOT" -s PG_CONFIG="$(saga_pg_config)" clean >/dev/null 2>&1 || true
		echo "$build" >"$stamp"
	fi
}

saga_build_install() {
	saga_need_root
	saga_clean_if_other_build "$@"
	saga_log "building pg_saga${*:+ ($*)}"
	make -C "$SAGA_REPO_ROOT" -s PG_CONFIG="$(saga_pg_config)" "$@" \
		|| saga_die "build failed"
	saga_log "installing pg_saga"
	make -C "$SAGA_REPO_ROOT" -s PG_CONFIG="$(saga_pg_config)" "$@" install >/dev/null \
		|| saga_die "make install failed"
}

# Run a command as the postgres OS user with the PostgreSQL binaries first
# on PATH; the rest of the environment (PGHOST, PGPORT, PERL5LIB, ...) is kept.
saga_as_pg() {
	local path="$(saga_pg_bindir):$PATH"
	if [ "$(id -un)" = postgres ]; then
		PATH="$path" "$@"
		return
	fi
	saga_need_root
	local run=(runuser -u postgres --)
	# A root-owned working directory may be closed to postgres.
	if "${run[@]}" test -r "$PWD" -a -x "$PWD"; then
		"${run[@]}" env PATH="$path" "$@"
	else
		(cd / && "${run[@]}" env PATH="$path" "$@")
	fi
}

# The directory the tests run in: a copy of the repository (without .git)
# owned by postgres, made once per top-level script.  SAGA_WORKDIR overrides.
saga_workdir() {
	local dir="${SAGA_WORKDIR:-${TMPDIR:-/tmp}/pg_saga_work.$$}"
	if [ ! -e "$dir/.pg_saga_copied" ]; then
		mkdir -p "$dir"
		(cd "$SAGA_REPO_ROOT" && tar --exclude=./.git -cf - .) | tar -xf - -C "$dir" \
			|| saga_die "cannot copy the repository to $dir"
		touch "$dir/.pg_saga_copied"
		if [ "$(id -u)" -eq 0 ]; then
			chown -R postgres: "$dir"
		fi
	fi
	echo "$dir"
}

# A TCP port nothing listens on, outside the kernel's ephemeral range.
saga_free_port() {
	perl -MIO::Socket::INET -e '
		for (1 .. 200) {
			my $port = 15000 + int(rand(17000));
			next if -e "/tmp/.s.PGSQL.$port";
			my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port,
										  Proto => "tcp", Listen => 1, ReuseAddr => 1);
			if ($s) { close $s; print "$port\n"; exit 0; }
		}
		exit 1;' || saga_die "no free port found"
}

# saga_start_cluster DIR PORT: a throwaway cluster, data in DIR/data, socket
# in DIR, log in DIR/postmaster.log, configured with test/regress.conf.
saga_start_cluster() {
	local dir="$1" port="$2" conf="$SAGA_REPO_ROOT/test/regress.conf"
	[ -n "$dir" ] && [ -n "$port" ] || saga_die "usage: saga_start_cluster DIR PORT"
	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
	fi
	dir="$(cd "$dir" && pwd)"
	echo "$dir" >>"$SAGA_CLUSTER_LIST"
	if [ -z "$(trap -p EXIT)" ]; then
		trap saga_cleanup EXIT
	fi
	saga_as_pg initdb -D "$dir/data" -A trust -N -U postgres "${SAGA_INITDB_LOCALE[@]}" >"$dir/initdb.log" 2>&1 \
		|| { cat "$dir/initdb.log" >&2; saga_die "initdb in $dir failed"; }
	{
		cat "$conf"
		printf "\n# saga_start_cluster\nport = %s\nunix_socket_directories = '%s'\n" "$port" "$dir"
	} | saga_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null \
		|| saga_die "cannot configure the cluster in $dir"
	saga_as_pg pg_ctl -D "$dir/data" -l "$dir/postmaster.log" -w -t 60 start >/dev/null \
		|| { cat "$dir/postmaster.log" >&2; saga_die "cluster in $dir did not start"; }
	saga_log "cluster $dir up on port $port"
}

saga_stop_cluster() {
	local dir="$1"
	[ -f "$dir/data/postmaster.pid" ] || return 0
	saga_as_pg pg_ctl -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
		|| saga_as_pg pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 \
		|| true
}

saga_cleanup() {
	local rc=$? dir
	if [ -f "$SAGA_CLUSTER_LIST" ]; then
		while read -r dir; do
			saga_stop_cluster "$dir"
		done <"$SAGA_CLUSTER_LIST"
		rm -f "$SAGA_CLUSTER_LIST"
	fi
	# Only the default workdir is ours to remove; SAGA_KEEP_WORKDIR keeps it.
	dir="${TMPDIR:-/tmp}/pg_saga_work.$$"
	if [ -z "${SAGA_WORKDIR:-}" ] && [ -z "${SAGA_KEEP_WORKDIR:-}" ] && [ -e "$dir/.pg_saga_copied" ]; then
		rm -rf "$dir"
	fi
	return $rc
}

# Stops whatever postmaster still runs from the work directory $work (a TAP
# test that dies hard can leave one behind).
saga_stop_leftovers() {
	local pidfile
	[ -n "${work:-}" ] && [ -d "$work" ] || return 0
	while IFS= read -r pidfile; do
		saga_as_pg pg_ctl -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1 || true
	done < <(find "$work" -name postmaster.pid 2>/dev/null)
}

# EXIT trap of the scripts that run tests: leftovers, then saga_cleanup.
saga_exit_handler() {
	local rc=$?
	saga_stop_leftovers
	saga_cleanup
	exit "$rc"
}
