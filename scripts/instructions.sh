#!/usr/bin/env bash
# Counts the instructions pgrollup runs per pgbench -S transaction, in all
# and by function, under valgrind's callgrind: unlike CPU time, the count
# does not move with the machine's load or its caches, so two versions of
# the relay path compare in one run each (docs/architecture.md, "Measuring
# the relay path").
#
#   usage: scripts/instructions.sh [-p simple|prepared] [-c CLIENTS] [-n TOP] [-o DUMP] [BINARY]
#
# BINARY defaults to bin/pgrollup. The script runs `bin/pgrollup-bench
# -targets pgrollup` with pgrollup under callgrind, zeroes the counts once
# pgbench has run for a while, counts for 15 s, and divides by the
# statements pgrollup relayed meanwhile (pgrollup_queries_total: one per
# pgbench -S transaction). Functions are found by address in the binary's
# symbol table, because callgrind's call contexts do not follow goroutines
# from stack to stack. GODEBUG=asyncpreemptoff=1: callgrind asserts on Go's
# preemption signals. The count includes what pgrollup does in the
# background (the warehouse monitor's check every 5 s, a connection and a
# startup message since it no longer logs in), the same for both versions
# compared. -o keeps callgrind's dump as DUMP, for
# `callgrind_annotate` or a per-line look at one function.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
protocol=prepared clients=16 top=40 keep=
while getopts "p:c:n:o:" opt; do
	case $opt in
	p) protocol=$OPTARG ;;
	c) clients=$OPTARG ;;
	n) top=$OPTARG ;;
	o) keep=$OPTARG ;;
	*)
		echo "usage: scripts/instructions.sh [-p simple|prepared] [-c CLIENTS] [-n TOP] [-o DUMP] [BINARY]" >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
binary=$(realpath "${1:-$root/bin/pgrollup}")
[[ -x $binary ]] || {
	echo "scripts/instructions.sh: $binary is not an executable (make build)" >&2
	exit 2
}
command -v valgrind >/dev/null || {
	echo "scripts/instructions.sh: valgrind is missing (Debian: apt-get install valgrind)" >&2
	exit 2
}
cd "$root"
[[ -x bin/pgrollup-bench ]] || go build -o bin/pgrollup-bench ./bench/pgbench

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# pgrollup-bench runs BINARY serve ...; the wrapper runs it under callgrind.
cat >"$work/pgrollup" <<EOF
#!/usr/bin/env bash
GODEBUG=asyncpreemptoff=1 exec valgrind --tool=callgrind --dump-instr=yes \
	--callgrind-out-file="$work/callgrind.out.%p" "$binary" "\$@" 2>"$work/valgrind.log"
EOF
chmod +x "$work/pgrollup"

. scripts/bench-run.sh
start_bench "$work/bench.log" -pgrollup "$work/pgrollup" -clients "$clients" -protocol "$protocol" \
	-rounds 1 -duration 40s -targets pgrollup
sleep 8
pid=$(pgrep -f "callgrind.*$binary serve" | head -1)
relayed() { curl -fsS "http://$admin/metrics" | awk '/^pgrollup_queries_total/ {s += $2} END {print s}'; }
callgrind_control --zero "$pid" >/dev/null 2>&1
before=$(relayed)
sleep 15
after=$(relayed)
callgrind_control --dump "$pid" >/dev/null 2>&1
wait $bench || true
tx=$((after - before))
dump=$(ls -S "$work"/callgrind.out.*.* | head -1)
[[ -z $keep ]] || cp "$dump" "$keep"

echo "$binary, pgbench -S -M $protocol, $clients clients: $tx transactions counted"
# Self instructions by function: each cost line is "address line count"
# (addresses absolute, or +/- the previous one, or * for the same); the
# line after a calls= line is the call's inclusive cost, not counted.
go tool nm -n -size "$binary" | awk -v tx="$tx" -v top="$top" '
	function hex(s,   i, v) {
		sub(/^0x/, "", s); v = 0
		for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return v
	}
	NR == FNR {
		if ($3 == "T" || $3 == "t") { n++; lo[n] = hex($1); size[n] = $2; name[n] = $4 }
		next
	}
	/^calls=/ { skip = 1; next }
	/^[0-9+*-]/ {
		a = $1
		if (a == "*") a = addr
		else if (a ~ /^[+-]/) a = addr + a
		else a = hex(a)
		addr = a
		if (skip) { skip = 0; next }
		# binary search for the symbol holding a
		l = 1; h = n
		while (l < h) { m = int((l + h + 1) / 2); if (lo[m] <= a) l = m; else h = m - 1 }
		fn = (lo[l] <= a && a < lo[l] + size[l]) ? name[l] : "?"
		cost[fn] += $3; total += $3
	}
	END {
		printf "%10.0f instructions per transaction\n", total / tx
		for (f in cost) printf "%10.1f %6.2f%% %s\n", cost[f] / tx, 100 * cost[f] / total, f | "sort -rn | head -" top
	}' - "$dump"
