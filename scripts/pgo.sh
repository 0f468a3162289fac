#!/usr/bin/env bash
# Regenerates cmd/proxy/default.pgo, the CPU profile the Go compiler builds
# pgrollup with (profile-guided optimization: `go build` uses a main
# package's default.pgo on its own). The profile is pgrollup's own, taken
# over its admin listener's /debug/pprof/profile while pgbench -S runs
# through it: simple and prepared, 16 and 64 clients, the passthrough
# relay's hot path (docs/architecture.md, "Measuring the relay path").
#
#   usage: scripts/pgo.sh [-s SECONDS]
#
# SECONDS (default 25) is how long each of the four profiles lasts. The
# profiles are merged with `go tool pprof -proto`. Rebuild afterwards
# (make build) and compare with scripts/instructions.sh and make bench.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=25
while getopts "s:" opt; do
	case $opt in
	s) seconds=$OPTARG ;;
	*)
		echo "usage: scripts/pgo.sh [-s SECONDS]" >&2
		exit 2
		;;
	esac
done
cd "$root"
make build >/dev/null
go build -o bin/pgrollup-bench ./bench/pgbench

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. scripts/bench-run.sh
for protocol in simple prepared; do
	for clients in 16 64; do
		log=$work/bench-$protocol-$clients.log
		start_bench "$log" -pprof -clients "$clients" -protocol "$protocol" -rounds 1 \
			-duration "$((seconds + 8))s" -targets pgrollup
		sleep 4 # past the connections' start
		curl -fsS -o "$work/$protocol-$clients.pprof" "http://$admin/debug/pprof/profile?seconds=$seconds"
		wait $bench || {
			cat "$log" >&2
			exit 1
		}
		echo "profiled $protocol, $clients clients"
	done
done
go tool pprof -proto "$work"/*.pprof >cmd/proxy/default.pgo
echo "wrote cmd/proxy/default.pgo ($(wc -c <cmd/proxy/default.pgo) bytes)"
