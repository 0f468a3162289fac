# Sourced by scripts/instructions.sh and scripts/pgo.sh: runs one
# bin/pgrollup-bench measurement in the background and waits for its
# pgbench to start.

# start_bench LOG ARGS... runs bin/pgrollup-bench ARGS with its output in
# LOG, sets bench to its pid and admin to pgrollup's admin listener, and
# returns once pgbench runs; it exits with the log if the bench ends first.
start_bench() {
	local log=$1
	shift
	bin/pgrollup-bench "$@" >"$log" 2>&1 &
	bench=$!
	for _ in $(seq 1 240); do
		grep -q "pgbench -n" "$log" && break
		kill -0 $bench 2>/dev/null || {
			cat "$log" >&2
			exit 1
		}
		sleep 0.5
	done
	admin=$(grep -o "admin 127.0.0.1:[0-9]*" "$log" | head -1 | cut -d' ' -f2)
}
