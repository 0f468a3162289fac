#!/usr/bin/env bash
# Installs the Debian packages that pgrollup's tests, demo and benchmark need,
# but only those whose binary or file is missing, and builds the test programs
# that come from Go modules rather than Debian (MinIO). Quiet when everything
# is present.
#
#   usage: scripts/deps.sh [GROUP...]      (no GROUP: all of them)
#
#   group      checks                                           Debian package
#   toolchain  make, gcc, g++ (cgo: pg_query_go, duckdb-go)     make, gcc, g++
#   postgres   initdb, pg_ctl under /usr/lib/postgresql/*/bin   postgresql
#              psql                                             postgresql-client
#              pgbench (shipped with the server package)        postgresql
#   pgbouncer  pgbouncer                                        pgbouncer
#   java       javac (compiles the pgjdbc test program)         default-jdk-headless
#              /usr/share/java/postgresql.jar (pgjdbc)          libpostgresql-jdbc-java
#   python     /usr/bin/python3 -c 'import psycopg2'            python3-psycopg2
#              /usr/bin/python3 -c 'import asyncpg'             python3-asyncpg
#   node       node, npm (the node-postgres test program)        nodejs, npm
#              node-postgres (pg) and pg-cursor, pinned, from the npm registry
#              into $XDG_CACHE_HOME/pgrollup/node/VERSION (e2e/params_clients_test.go)
#   nats       nats-server                                      nats-server
#   haproxy    haproxy (the load balancer of e2e/ha_test.go)    haproxy
#   prometheus prometheus, promtool (e2e/ops_*: the scrape      prometheus
#              test and the alert-rule check)
#   locales    the en_US.UTF-8 locale (the collation tests      locales, then
#              create a database with it)                       localedef
#   minio      the MinIO server of the S3 tests (internal/minio) built from its Go module
#              into its cache folder by `go run ./internal/minio/build`
#   helm       helm, pinned (the chart test, deploy/helm), built from its Go module with
#              `go install` into $XDG_CACHE_HOME/pgrollup/helm/VERSION
#
# Runs apt-get (one update, then install) as root, through sudo when not root,
# and otherwise fails naming what is missing. MinIO and helm are built after the packages,
# once per machine (minutes, with a progress line every 15 s), here rather than in
# the tests so that no test deadline includes it; a file lock in its cache folder
# keeps two builds from running at once. Safe to run any number of times.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-go}

all_groups=(toolchain postgres pgbouncer java python node nats haproxy prometheus locales minio helm)
if (($# == 0)); then
	set -- "${all_groups[@]}"
fi
for g in "$@"; do
	case $g in
	toolchain | postgres | pgbouncer | java | python | node | nats | haproxy | prometheus | locales | minio | helm) ;;
	*)
		echo "scripts/deps.sh: unknown group '$g' (known: ${all_groups[*]})" >&2
		exit 2
		;;
	esac
done
groups=("$@")
want() { # want GROUP: was GROUP asked for
	local g
	for g in "${groups[@]}"; do
		[[ $g == "$1" ]] && return 0
	done
	return 1
}

missing=()   # Debian packages to install
reasons=()   # what was not found, for the messages

need() { # need PACKAGE WHAT
	local pkg=$1
	shift
	reasons+=("$*")
	local p
	for p in "${missing[@]+"${missing[@]}"}"; do
		[[ $p == "$pkg" ]] && return 0
	done
	missing+=("$pkg")
}

have_pg_server_bin() { # any /usr/lib/postgresql/*/bin/NAME
	local f
	for f in /usr/lib/postgresql/*/bin/"$1"; do
		[[ -x $f ]] && return 0
	done
	return 1
}

have_pgbouncer() { command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]]; }
have_nats() { command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]]; }
# Debian installs it as /usr/sbin/haproxy, not on a plain user's PATH.
have_haproxy() { command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]]; }
# Debian installs both under /usr/bin; a prometheus that is not on PATH would
# not be found by the tests either, so PATH is the test here.
have_prometheus() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }
# localedef needs the locale sources of the locales package.
have_locale_sources() { [[ -f /usr/share/i18n/locales/en_US && -f /usr/share/i18n/charmaps/UTF-8.gz ]]; }
have_en_us() { locale -a 2>/dev/null | grep -qix 'en_US\.utf-\?8'; }
have_psycopg2() { [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1; }
have_asyncpg() { [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import asyncpg' >/dev/null 2>&1; }

# The node-postgres packages the e2e tests run, pinned; e2e/node_test.go
# names the same folder.
node_pg_version=8.13.1
node_pg_cursor_version=2.12.1
node_dir=${XDG_CACHE_HOME:-$HOME/.cache}/pgrollup/node/pg-$node_pg_version-cursor-$node_pg_cursor_version

# The helm the chart test runs, pinned; deploy/helm/chart_test.go names the
# same folder (or $PGROLLUP_HELM_CACHE).
helm_version=v4.3.2
helm_dir=${PGROLLUP_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgrollup/helm/$helm_version}

check() { # check RECORD: calls RECORD PACKAGE WHAT for each missing thing
	local record=$1
	if want toolchain; then
		command -v make >/dev/null 2>&1 || $record make "make"
		command -v gcc >/dev/null 2>&1 || $record gcc "gcc (cgo)"
		command -v g++ >/dev/null 2>&1 || $record g++ "g++ (cgo, DuckDB)"
	fi
	if want postgres; then
		have_pg_server_bin initdb || $record postgresql "initdb (PostgreSQL server binaries under /usr/lib/postgresql/*/bin)"
		have_pg_server_bin pg_ctl || $record postgresql "pg_ctl (PostgreSQL server binaries under /usr/lib/postgresql/*/bin)"
		command -v psql >/dev/null 2>&1 || $record postgresql-client "psql"
		{ command -v pgbench >/dev/null 2>&1 && have_pg_server_bin pgbench; } || $record postgresql "pgbench"
	fi
	if want pgbouncer; then
		have_pgbouncer || $record pgbouncer "pgbouncer"
	fi
	if want java; then
		command -v javac >/dev/null 2>&1 || $record default-jdk-headless "javac (a JDK)"
		[[ -f /usr/share/java/postgresql.jar ]] || $record libpostgresql-jdbc-java "/usr/share/java/postgresql.jar (pgjdbc)"
	fi
	if want python; then
		have_psycopg2 || $record python3-psycopg2 "psycopg2 for /usr/bin/python3"
		have_asyncpg || $record python3-asyncpg "asyncpg for /usr/bin/python3"
	fi
	if want node; then
		command -v node >/dev/null 2>&1 || $record nodejs "node"
		command -v npm >/dev/null 2>&1 || $record npm "npm"
	fi
	if want nats; then
		have_nats || $record nats-server "nats-server"
	fi
	if want haproxy; then
		have_haproxy || $record haproxy "haproxy"
	fi
	if want prometheus; then
		have_prometheus || $record prometheus "prometheus and promtool"
	fi
	if want locales; then
		have_locale_sources || $record locales "the locale sources under /usr/share/i18n (localedef)"
	fi
	return 0
}

# build_minio builds MinIO unless it is built already: quiet then.
build_minio() {
	local state
	state=$(cd "$root" && "$GO" run ./internal/minio/build -check)
	if [[ $state == built* ]]; then
		return 0
	fi
	echo "scripts/deps.sh: building MinIO for the S3 tests (once per machine)" >&2
	local started=$SECONDS
	(cd "$root" && "$GO" run ./internal/minio/build)
	echo "scripts/deps.sh: MinIO built in $((SECONDS - started))s" >&2
}

# build_helm builds the pinned helm into its cache folder unless it is there:
# quiet then. As with MinIO: outside this module (helm never enters go.mod),
# into a private GOBIN renamed into place, under a file lock so that two
# builds never run at once.
build_helm() {
	if [[ -x $helm_dir/helm ]]; then
		return 0
	fi
	mkdir -p "$helm_dir"
	exec 9>"$helm_dir/.build.lock"
	flock 9
	if [[ -x $helm_dir/helm ]]; then # built while this one waited
		exec 9>&-
		return 0
	fi
	echo "scripts/deps.sh: building helm $helm_version for the chart test (once per machine; minutes)" >&2
	local started=$SECONDS work gobin
	work=$(mktemp -d)
	gobin=$(mktemp -d "$helm_dir/.gobin-XXXXXX")
	if ! (cd "$work" && GOBIN=$gobin GOFLAGS=-mod=mod GO111MODULE=on GOWORK=off "$GO" install "helm.sh/helm/v4/cmd/helm@$helm_version"); then
		rm -rf "$work" "$gobin"
		exec 9>&-
		echo "scripts/deps.sh: go install helm.sh/helm/v4/cmd/helm@$helm_version failed (is the Go module proxy reachable?)" >&2
		return 1
	fi
	mv "$gobin/helm" "$helm_dir/helm"
	rm -rf "$work" "$gobin"
	exec 9>&-
	echo "scripts/deps.sh: helm built in $((SECONDS - started))s" >&2
}

# install_packages installs the missing Debian packages, if any.
install_packages() {
	check need
	if ((${#missing[@]} == 0)); then
		return 0
	fi

	if ((EUID == 0)); then
		as_root=()
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
	else
		{
			echo "scripts/deps.sh: missing:"
			printf '  - %s\n' "${reasons[@]}"
			echo "Install them as root with:"
			echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
			echo "(not root, and sudo is not available without a password)"
		} >&2
		exit 1
	fi

	echo "scripts/deps.sh: installing ${missing[*]}" >&2
	printf '  for: %s\n' "${reasons[@]}" >&2

	export DEBIAN_FRONTEND=noninteractive
	apt_quiet=(-q -o Dpkg::Use-Pty=0)
	# Exactly one apt-get update per run that installs anything: the package lists
	# may be absent (fresh images) or stale.
	"${as_root[@]+"${as_root[@]}"}" apt-get "${apt_quiet[@]}" update
	"${as_root[@]+"${as_root[@]}"}" apt-get "${apt_quiet[@]}" install -y --no-install-recommends "${missing[@]}"

	# Check again: a package that installed but did not provide what we need is an error.
	still=()
	still_missing() { still+=("$2"); }
	check still_missing
	if ((${#still[@]} > 0)); then
		echo "scripts/deps.sh: still missing after apt-get install:" >&2
		printf '  - %s\n' "${still[@]}" >&2
		exit 1
	fi
	echo "scripts/deps.sh: done" >&2
}

# install_node_pg installs node-postgres from the npm registry unless it is
# there already: quiet then. The folder appears only once complete.
install_node_pg() {
	if [[ -f $node_dir/node_modules/pg/package.json && -f $node_dir/node_modules/pg-cursor/package.json ]]; then
		return 0
	fi
	echo "scripts/deps.sh: installing node-postgres pg@$node_pg_version and pg-cursor@$node_pg_cursor_version" >&2
	local tmp
	mkdir -p "${node_dir%/*}"
	tmp=$(mktemp -d "${node_dir%/*}/.partial.XXXXXX")
	if ! (cd "$tmp" && npm install --silent --no-audit --no-fund --no-save "pg@$node_pg_version" "pg-cursor@$node_pg_cursor_version" >&2); then
		rm -rf "$tmp"
		echo "scripts/deps.sh: npm install of node-postgres failed (is the npm registry reachable?)" >&2
		return 1
	fi
	rm -rf "$node_dir"
	mv "$tmp" "$node_dir"
}

# generate_locales compiles en_US.UTF-8 unless it is there: quiet then. Postgres
# reads a libc locale when a database or collation is created with it, so a
# running cluster sees it without a restart.
generate_locales() {
	if have_en_us; then
		return 0
	fi
	echo "scripts/deps.sh: generating the en_US.UTF-8 locale" >&2
	# -c writes the locale despite warnings, and localedef then exits 1:
	# whether the locale exists afterwards is the test.
	local def=(localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8)
	if ((EUID == 0)); then
		"${def[@]}" || true
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "${def[@]}" || true
	else
		echo "scripts/deps.sh: en_US.UTF-8 is missing; as root run: ${def[*]}" >&2
		exit 1
	fi
	if ! have_en_us; then
		echo "scripts/deps.sh: en_US.UTF-8 is still missing after localedef" >&2
		exit 1
	fi
}

install_packages
if want node; then
	install_node_pg
fi
if want locales; then
	generate_locales
fi
if want minio; then
	build_minio
fi
if want helm; then
	build_helm
fi
