package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/internal/benchkit"
)

// cell is one place in the sweep: a client count, a protocol and a target.
type cell struct {
	clients  int
	protocol string
	target   string
}

// result is one pgbench run.
type result struct {
	cell
	tps       float64
	latencyMS float64 // pgbench's average
	failed    int64
	p50, p99  float64 // latency percentiles over all the run's transactions, µs
	// proxyCPU is the proxy process's CPU per transaction in µs over the
	// steady part of the run (NaN for direct: Postgres is no proxy).
	proxyCPU float64
	// machineCPU is all CPUs' busy time per transaction in µs over the same
	// part: pgbench, Postgres, the proxy, the kernel's network work charged to
	// none of them, and anything else running on the machine.
	machineCPU float64
	err        error
}

// figures are the medians of one cell's rounds, each figure on its own.
type figures struct {
	tps, latencyMS, p50, p99, proxyCPU, machineCPU float64
	failed                                         int64
	err                                            error
	// tpsRounds and cpuRounds are the tps and proxy CPU of each round, in
	// order: two targets' rounds of the same number ran minutes apart at
	// most, so their ratios show how far the machine's drift moves a
	// comparison (pairedRatios).
	tpsRounds, cpuRounds []float64
}

// summarize takes the median of every figure of every cell across rounds. A
// failed round makes the cell failed.
func summarize(results []result) map[cell]figures {
	byCell := map[cell][]result{}
	for _, r := range results {
		byCell[r.cell] = append(byCell[r.cell], r)
	}
	out := map[cell]figures{}
	for c, runs := range byCell {
		var f figures
		rounds := func(get func(result) float64) []float64 {
			xs := make([]float64, 0, len(runs))
			for _, r := range runs {
				xs = append(xs, get(r))
			}
			return xs
		}
		pick := func(get func(result) float64) float64 { return benchkit.MedianKnown(rounds(get)) }
		for _, r := range runs {
			f.failed += r.failed
			if r.err != nil && f.err == nil {
				f.err = r.err
			}
		}
		f.tpsRounds = rounds(func(r result) float64 { return r.tps })
		f.cpuRounds = rounds(func(r result) float64 { return r.proxyCPU })
		f.tps = benchkit.MedianKnown(f.tpsRounds)
		f.latencyMS = pick(func(r result) float64 { return r.latencyMS })
		f.p50 = pick(func(r result) float64 { return r.p50 })
		f.p99 = pick(func(r result) float64 { return r.p99 })
		f.proxyCPU = benchkit.MedianKnown(f.cpuRounds)
		f.machineCPU = pick(func(r result) float64 { return r.machineCPU })
		out[c] = f
	}
	return out
}

// goalClients are the client counts issue 17's goal is set at.
func goalClients(n int) bool { return n == 16 || n == 64 }

// verdict is issue 17's goal in one cell: pgrollup at least PgBouncer's tps
// and at most its CPU per transaction.
type verdict struct {
	applies    bool // a goal cell with both figures
	tpsRatio   float64
	tpsOK      bool
	cpuOK      bool
	cpuUnknown bool
}

func goal(clients int, bouncer, rollup figures) verdict {
	if !goalClients(clients) || bouncer.err != nil || rollup.err != nil || !(bouncer.tps > 0) {
		return verdict{}
	}
	v := verdict{applies: true, tpsRatio: rollup.tps / bouncer.tps}
	v.tpsOK = v.tpsRatio >= 1.0
	v.cpuUnknown = math.IsNaN(bouncer.proxyCPU) || math.IsNaN(rollup.proxyCPU)
	v.cpuOK = !v.cpuUnknown && rollup.proxyCPU <= bouncer.proxyCPU
	return v
}

// pass says the goal is met in the cell.
func (v verdict) pass() bool { return v.applies && v.tpsOK && v.cpuOK }

func (v verdict) String() string {
	switch {
	case !v.applies:
		return "—"
	case v.pass():
		return "PASS"
	}
	var missed []string
	if !v.tpsOK {
		missed = append(missed, "tps")
	}
	if v.cpuUnknown {
		missed = append(missed, "CPU unknown")
	} else if !v.cpuOK {
		missed = append(missed, "CPU")
	}
	return "MISS (" + strings.Join(missed, ", ") + ")"
}

// report is what the run prints at its end, in Markdown for the README.
type report struct {
	command               string
	date                  time.Time
	cpus                  int
	duration              string // pgbench -T
	scale                 int
	rounds                int
	loadBefore, loadAfter string
	clients               []int
	protocols             []string
	targets               []string
	rows                  int // -rows; 0 for pgbench -S
	cells                 map[cell]figures
}

func (r report) has(target string) bool { return slices.Contains(r.targets, target) }

// get returns a cell's figures, or a failed one when it was not measured.
func (r report) get(clients int, protocol, target string) figures {
	f, ok := r.cells[cell{clients, protocol, target}]
	if !ok {
		return figures{tps: math.NaN(), latencyMS: math.NaN(), p50: math.NaN(), p99: math.NaN(),
			proxyCPU: math.NaN(), machineCPU: math.NaN(), err: errors.New("not measured")}
	}
	return f
}

func (r report) print(w io.Writer) {
	workload := workloadName(r.rows)
	fmt.Fprintf(w, "\n**%s, %s s per run, scale %d, median of %d round(s).** `%s` on %s: %d CPUs, load average %s before the runs, %s after.\n\n",
		workload, r.duration, r.scale, r.rounds, r.command, r.date.UTC().Format("2006-01-02 15:04 UTC"), r.cpus, r.loadBefore, r.loadAfter)

	fmt.Fprintln(w, "| clients | protocol | direct tps | pgbouncer tps | pgrollup tps | pgrollup / pgbouncer | pgbouncer CPU µs/tx | pgrollup CPU µs/tx | p50 added µs, pgbouncer / pgrollup | p99 added µs, pgbouncer / pgrollup | goal |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	type goalLine struct {
		text string
		pass bool
	}
	var verdicts []goalLine
	for _, n := range r.clients {
		for _, p := range r.protocols {
			d, b, g := r.get(n, p, "direct"), r.get(n, p, "pgbouncer"), r.get(n, p, "pgrollup")
			v := goal(n, b, g)
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s |\n", n, p,
				num(d.tps, 0), num(b.tps, 0), num(g.tps, 0), ratio(g, b),
				cpuNum(b), cpuNum(g),
				added(b.p50, d.p50, b, d), added(g.p50, d.p50, g, d),
				added(b.p99, d.p99, b, d), added(g.p99, d.p99, g, d), v)
			if v.applies {
				text := fmt.Sprintf("%d clients, %s: %s (tps %s× PgBouncer's; CPU %s vs %s µs/tx)",
					n, p, v, num(v.tpsRatio, 2), cpuNum(g), cpuNum(b))
				if tps, cpu, ok := pairedRatios(g, b); ok {
					text += fmt.Sprintf("; round by round, pgrollup / PgBouncer: tps %s, CPU %s", tps, cpu)
				}
				verdicts = append(verdicts, goalLine{text, v.pass()})
			}
		}
	}

	fmt.Fprintln(w, "\nEvery run:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| clients | protocol | target | tps | avg latency ms | p50 ms | p99 ms | proxy CPU µs/tx | machine CPU µs/tx | failed tx |")
	fmt.Fprintln(w, "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, n := range r.clients {
		for _, p := range r.protocols {
			for _, t := range r.targets {
				f := r.get(n, p, t)
				if f.err != nil && f.failed == 0 {
					fmt.Fprintf(w, "| %d | %s | %s | error | | | | | | |\n", n, p, t)
					continue
				}
				fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", n, p, t,
					num(f.tps, 0), num(f.latencyMS, 3), num(f.p50/1e3, 3), num(f.p99/1e3, 3),
					cpuNum(f), num(f.machineCPU, 1), f.failed)
			}
		}
	}

	r.printAgainstBouncer(w)
	if !r.has("pgbouncer") || !r.has("pgrollup") {
		return
	}
	pass := 0
	for _, l := range verdicts {
		if l.pass {
			pass++
		}
	}
	fmt.Fprintf(w, "\nGoal (issue 17: pgrollup at ≥ 1.00× PgBouncer's tps and ≤ its CPU µs/tx at 16 and 64 clients, both protocols): %d of %d PASS\n\n", pass, len(verdicts))
	for _, l := range verdicts {
		fmt.Fprintf(w, "- %s\n", l.text)
	}
	for _, variant := range []struct{ target, what string }{
		{"pgrollup-goroutines", "event_loop: false"},
		{"pgrollup-normal", "sched_policy: normal"},
		{"pgrollup-goroutines-normal", "event_loop: false, sched_policy: normal"},
		{"pgrollup-1p", "GOMAXPROCS=1"},
	} {
		if !r.has(variant.target) {
			continue
		}
		var lines []string
		pass = 0
		for _, n := range r.clients {
			for _, p := range r.protocols {
				b, g := r.get(n, p, "pgbouncer"), r.get(n, p, variant.target)
				if v := goal(n, b, g); v.applies {
					if v.pass() {
						pass++
					}
					lines = append(lines, fmt.Sprintf("%d %s %s", n, p, v))
				}
			}
		}
		fmt.Fprintf(w, "\nThe same goal for %s (%s): %d of %d PASS (%s)\n", variant.target, variant.what, pass, len(lines), strings.Join(lines, "; "))
	}
}

// pairedRatios returns, for targets a and b measured in the same rounds,
// a's tps and CPU per transaction over b's in each round, and false with
// fewer than two rounds.
func pairedRatios(a, b figures) (tps, cpu string, ok bool) {
	// summarize makes each cell's two lists together, one entry a round.
	n := len(a.tpsRounds)
	if n < 2 || len(b.tpsRounds) != n {
		return "", "", false
	}
	list := func(x, y []float64) string {
		out := make([]string, n)
		for i := range out {
			out[i] = num(x[i]/y[i], 2)
		}
		return strings.Join(out, " ")
	}
	return list(a.tpsRounds, b.tpsRounds), list(a.cpuRounds, b.cpuRounds), true
}

// printAgainstBouncer prints every proxy's tps and CPU per transaction
// against PgBouncer's, when targets other than the three usual ones ran.
func (r report) printAgainstBouncer(w io.Writer) {
	var proxies []string
	others := false
	for _, t := range r.targets {
		if t != "direct" {
			proxies = append(proxies, t)
		}
		others = others || (t != "direct" && t != "pgbouncer" && t != "pgrollup")
	}
	if !r.has("pgbouncer") || !others {
		return
	}
	fmt.Fprintln(w, "\nEvery proxy against PgBouncer (tps ratio; CPU µs/tx):")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| clients | protocol |")
	for _, t := range proxies {
		fmt.Fprintf(w, " %s tps × | %s CPU µs/tx |", t, t)
	}
	fmt.Fprint(w, "\n|---:|---|")
	for range proxies {
		fmt.Fprint(w, "---:|---:|")
	}
	fmt.Fprintln(w)
	for _, n := range r.clients {
		for _, p := range r.protocols {
			b := r.get(n, p, "pgbouncer")
			fmt.Fprintf(w, "| %d | %s |", n, p)
			for _, t := range proxies {
				f := r.get(n, p, t)
				fmt.Fprintf(w, " %s | %s |", ratio(f, b), cpuNum(f))
			}
			fmt.Fprintln(w)
		}
	}
}

// num formats x with the given decimals, or "—" for NaN.
func num(x float64, decimals int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	return strconv.FormatFloat(x, 'f', decimals, 64)
}

// cpuNum is a cell's proxy CPU per transaction; "—" for direct.
func cpuNum(f figures) string {
	if f.err != nil {
		return "—"
	}
	return num(f.proxyCPU, 1)
}

// ratio is a's tps over b's, "—" when either is missing.
func ratio(a, b figures) string {
	if a.err != nil || b.err != nil || !(b.tps > 0) {
		return "—"
	}
	return num(a.tps/b.tps, 2) + "×"
}

// added is x minus the direct figure base, signed, in µs.
func added(x, base float64, f, direct figures) string {
	if f.err != nil || direct.err != nil || math.IsNaN(x) || math.IsNaN(base) {
		return "—"
	}
	return fmt.Sprintf("%+.0f", x-base)
}

// workloadName names what each run does: pgbench -S, or -rows' script.
func workloadName(rows int) string {
	if rows > 0 {
		return fmt.Sprintf("pgbench, %d rows per transaction", rows)
	}
	return "pgbench -S"
}
