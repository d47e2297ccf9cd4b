#!/usr/bin/env bash
# scripts/debian-root.sh: runs the test suite inside a Debian root.
#
#   bash scripts/debian-root.sh RELEASE [ARG...]
#   bash scripts/debian-root.sh RELEASE --prepare
#   bash scripts/debian-root.sh RELEASE --campaign [ARG...]
#   bash scripts/debian-root.sh RELEASE --demo
#   bash scripts/debian-root.sh RELEASE --bench SCRIPT [ARG...]
#
# runs `bash scripts/test.sh ARG...` (the README's test command) in a root
# of Debian RELEASE (bookworm: PostgreSQL 15, trixie: PostgreSQL 17) made
# with `debootstrap --variant=minbase`, so one machine tests every
# PostgreSQL version the project supports with Debian's own packages and
# nothing else.  scripts/test.sh calls it for a version this machine's
# Debian does not ship (see SAGA_PG_VERSIONS there).  Needs root (chroot,
# mount); installs debootstrap with apt-get if it is missing.
#
# The root is made once, with the packages the scripts need, and cached in
# $SAGA_ROOT_CACHE/RELEASE (default /var/cache/pg_saga/roots/trixie).  It is
# built in RELEASE.new and renamed when complete, so a half-made root (an
# interrupted run) is never used: the next run removes it and starts again.
# SAGA_ROOT_REBUILD=1 rebuilds a complete one.  Inside, no service starts
# and no system cluster is created (policy-rc.d, createcluster.conf); the
# tests make their own throwaway clusters on 127.0.0.1 and Unix sockets, as
# on the host.  Each run copies the repository (without .git) to
# /srv/pg_saga in the root, mounts /proc, /sys, /dev, /dev/pts and a fresh
# /dev/shm, and unmounts them on exit; one run at a time per root (flock).
# The exit status is the suite's.  --prepare only makes the root.
# --campaign runs `bash scripts/campaign.sh ARG...` (the long fault
# campaign, e.g. --duration 120) there instead of the suite: campaign.sh
# installs and runs PostgreSQL like scripts/test.sh, so on a shared machine
# it belongs in a root too.  --demo runs `bash scripts/demo.sh` there, for
# the same reason (it installs pg_saga and starts a cluster).  --bench runs
# `bash SCRIPT ARG...` (a bench script that makes its own cluster, e.g.
# bench/floor.sh or bench/shapes.sh) there, with the caller's BENCH_*,
# FLOOR_*, SHAPES_*, BOUND_* and PIECES_* knobs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

log() { echo "[$(date +%H:%M:%S)] debian-root: $*" >&2; }
die() { echo "error: debian-root: $*" >&2; exit 1; }

release="${1:-}"
[ -n "$release" ] || die "usage: scripts/debian-root.sh RELEASE [scripts/test.sh arguments]"
shift
case "$release" in
	bookworm) version=15 ;;
	trixie) version=17 ;;
	*) die "unknown Debian release $release (bookworm, trixie)" ;;
esac
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"

cache="${SAGA_ROOT_CACHE:-/var/cache/pg_saga/roots}"
root="$cache/$release"
mirror="${SAGA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${SAGA_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# Bump when the way the root is made changes: older roots are rebuilt.
recipe="pg_saga root 3 $release"
ready="$root/.pg_saga_root"

mkdir -p "$cache"
exec 9>"$cache/$release.lock"
if ! flock -n 9; then
	log "waiting for another run in $root"
	flock 9
fi

# The mount points under DIR, deepest first.
mounts_under() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

unmount_all() {
	local m
	for m in $(mounts_under "$1"); do
		umount "$m" 2>/dev/null || umount -l "$m" || die "cannot unmount $m"
	done
}

# Removes DIR, never crossing into a mount (the host's /dev, say).
remove_root() {
	local dir="$1"
	[ -e "$dir" ] || return 0
	unmount_all "$dir"
	[ -z "$(mounts_under "$dir")" ] || die "$dir still has mounts"
	rm -rf --one-file-system "$dir"
}

mount_all() {
	local r="$1"
	mount -t proc proc "$r/proc"
	mount -t sysfs sysfs "$r/sys"
	mount --bind /dev "$r/dev"
	mkdir -p "$r/dev/pts" "$r/dev/shm"
	mount --bind /dev/pts "$r/dev/pts"
	mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
}

# in_root DIR CMD...: CMD in the root DIR with a clean environment.
in_root() {
	local r="$1"
	shift
	cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
	chroot "$r" /usr/bin/env -i \
		HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 LC_ALL=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		CI="${CI:-}" DEBIAN_FRONTEND=noninteractive \
		SAGA_PG_VERSION="$version" SAGA_PG_VERSIONS="$version" \
		${SAGA_KEEP_WORKDIR:+SAGA_KEEP_WORKDIR="$SAGA_KEEP_WORKDIR"} \
		${PG_TEST_TIMEOUT_DEFAULT:+PG_TEST_TIMEOUT_DEFAULT="$PG_TEST_TIMEOUT_DEFAULT"} \
		${SAGA_CAMPAIGN_SEED:+SAGA_CAMPAIGN_SEED="$SAGA_CAMPAIGN_SEED"} \
		${SAGA_CAMPAIGN_DURATION:+SAGA_CAMPAIGN_DURATION="$SAGA_CAMPAIGN_DURATION"} \
		${SAGA_CAMPAIGN_SAGAS:+SAGA_CAMPAIGN_SAGAS="$SAGA_CAMPAIGN_SAGAS"} \
		${SAGA_FAILOVER_SEED:+SAGA_FAILOVER_SEED="$SAGA_FAILOVER_SEED"} \
		"${bench_env[@]}" \
		"$@" 9>&-
}

# A fresh copy of the repository at /srv/pg_saga in the root DIR, without
# what a build or a test run here left (objects of another PostgreSQL).
copy_repo() {
	local r="$1"
	rm -rf "$r/srv/pg_saga"
	mkdir -p "$r/srv/pg_saga"
	tar -C "$repo" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./results --exclude=./log --exclude=./tmp_check --exclude=./test/tmp_check \
		--exclude=./regression.diffs --exclude=./regression.out --exclude=./.pg_saga_built_for \
		-cf - . | tar -C "$r/srv/pg_saga" -xf - \
		|| die "cannot copy the repository into $r"
}

# The bench scripts' knobs, passed into the root.
bench_env=()
for var in $(compgen -e); do
	case "$var" in
		BENCH_* | FLOOR_* | SHAPES_* | BOUND_* | PIECES_*) bench_env+=("$var=${!var}") ;;
	esac
done

active=""
on_exit() {
	local rc=$?
	if [ -n "$active" ]; then
		unmount_all "$active" || true
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_root() {
	local new="$root.new" start=$SECONDS
	remove_root "$root"
	remove_root "$new"
	if ! command -v debootstrap >/dev/null 2>&1; then
		log "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			debootstrap >/dev/null || die "apt-get install debootstrap failed"
	fi
	log "making a Debian $release root in $new (debootstrap --variant=minbase, $mirror)"
	debootstrap --variant=minbase "$release" "$new" "$mirror" >"$cache/$release.debootstrap.log" 2>&1 \
		|| { tail -n 30 "$cache/$release.debootstrap.log" >&2; die "debootstrap $release failed"; }
	cat >"$new/etc/apt/sources.list" <<-EOF
		deb $mirror $release main
		deb $mirror $release-updates main
		deb $security $release-security main
	EOF
	# Nothing starts a service in the root, and installing PostgreSQL makes
	# no system cluster: the tests make their own.
	printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
	chmod 755 "$new/usr/sbin/policy-rc.d"
	mkdir -p "$new/etc/postgresql-common"
	echo "create_main_cluster = false" >"$new/etc/postgresql-common/createcluster.conf"
	# The packages the scripts want, installed now so that runs reuse them.
	active="$new"
	mount_all "$new"
	copy_repo "$new"
	in_root "$new" bash -c 'cd /srv/pg_saga && . scripts/lib.sh && saga_install_deps' \
		|| die "installing the packages in the $release root failed"
	in_root "$new" apt-get clean
	unmount_all "$new"
	active=""
	echo "$recipe" >"$new/.pg_saga_root"
	mv "$new" "$root"
	log "root $root made in $((SECONDS - start)) s"
}

if [ -n "${SAGA_ROOT_REBUILD:-}" ] || [ ! -f "$ready" ] || [ "$(cat "$ready")" != "$recipe" ]; then
	make_root
else
	log "reusing $root"
fi
[ "${1:-}" != --prepare ] || exit 0

active="$root"
unmount_all "$root"
mount_all "$root"
copy_repo "$root"
script=scripts/test.sh
if [ "${1:-}" = --campaign ]; then
	script=scripts/campaign.sh
	shift
elif [ "${1:-}" = --demo ]; then
	script=scripts/demo.sh
	shift
elif [ "${1:-}" = --bench ]; then
	[ -n "${2:-}" ] || die "usage: scripts/debian-root.sh RELEASE --bench SCRIPT [ARG...]"
	script="$2"
	shift 2
fi
log "PostgreSQL $version: bash $script $* (in the $release root)"
rc=0
in_root "$root" bash -c 'cd /srv/pg_saga && script="$1" && shift && exec bash "$script" "$@"' run "$script" "$@" || rc=$?
unmount_all "$root"
active=""
exit "$rc"
