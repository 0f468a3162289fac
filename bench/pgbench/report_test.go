package main

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	c := cell{16, "simple", "pgrollup"}
	d := cell{16, "simple", "direct"}
	failed := cell{64, "simple", "pgrollup"}
	cells := summarize([]result{
		{cell: c, tps: 100, p50: 10, p99: 90, proxyCPU: 30, machineCPU: 200},
		{cell: d, tps: 500, proxyCPU: nan},
		{cell: c, tps: 300, p50: 30, p99: 70, proxyCPU: 10, machineCPU: 100},
		{cell: c, tps: 200, p50: 20, p99: 80, proxyCPU: 20, machineCPU: 300},
		{cell: failed, tps: 100},
		{cell: failed, err: errors.New("boom")},
	})
	got := cells[c]
	if got.tps != 200 || got.p50 != 20 || got.p99 != 80 || got.proxyCPU != 20 || got.machineCPU != 200 || got.err != nil {
		t.Fatalf("summarize, each figure's own median: %+v", got)
	}
	if !slices.Equal(got.tpsRounds, []float64{100, 300, 200}) || !slices.Equal(got.cpuRounds, []float64{30, 10, 20}) {
		t.Fatalf("summarize, the rounds in order: tps %v, CPU %v", got.tpsRounds, got.cpuRounds)
	}
	if !math.IsNaN(cells[d].proxyCPU) || cells[d].tps != 500 {
		t.Fatalf("summarize, direct: %+v", cells[d])
	}
	if cells[failed].err == nil {
		t.Fatal("a failed round does not fail its cell")
	}
}

func TestGoal(t *testing.T) {
	bouncer := figures{tps: 1000, proxyCPU: 20}
	for _, tc := range []struct {
		name    string
		clients int
		rollup  figures
		bouncer figures
		want    string
		pass    bool
	}{
		{"pass", 16, figures{tps: 1000, proxyCPU: 20}, bouncer, "PASS", true},
		{"pass at 64", 64, figures{tps: 1100, proxyCPU: 15}, bouncer, "PASS", true},
		{"slower", 16, figures{tps: 990, proxyCPU: 15}, bouncer, "MISS (tps)", false},
		{"costlier", 64, figures{tps: 1200, proxyCPU: 20.1}, bouncer, "MISS (CPU)", false},
		{"both", 16, figures{tps: 500, proxyCPU: 40}, bouncer, "MISS (tps, CPU)", false},
		{"no CPU figure", 16, figures{tps: 1200, proxyCPU: math.NaN()}, bouncer, "MISS (CPU unknown)", false},
		{"not a goal's client count", 1, figures{tps: 500, proxyCPU: 40}, bouncer, "—", false},
		{"pgrollup failed", 16, figures{err: errors.New("x")}, bouncer, "—", false},
		{"pgbouncer not run", 16, figures{tps: 1000, proxyCPU: 1}, figures{tps: math.NaN(), err: errors.New("not measured")}, "—", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := goal(tc.clients, tc.bouncer, tc.rollup)
			if v.String() != tc.want || v.pass() != tc.pass {
				t.Fatalf("goal = %s (pass %v), want %s (pass %v)", v, v.pass(), tc.want, tc.pass)
			}
		})
	}
}

// withRounds returns f with its rounds' tps and proxy CPU.
func withRounds(f figures, tps, cpu []float64) figures {
	f.tpsRounds, f.cpuRounds = tps, cpu
	return f
}

func TestReportPrint(t *testing.T) {
	nan := math.NaN()
	r := report{
		command: "bin/pgrollup-bench -rounds 3", date: time.Date(2026, 12, 7, 1, 2, 0, 0, time.UTC), cpus: 2,
		duration: "5", scale: 10, rounds: 3, loadBefore: "1.00 2.00 3.00", loadAfter: "2.00 2.00 3.00",
		clients: []int{1, 16}, protocols: []string{"simple", "prepared"}, targets: []string{"direct", "pgbouncer", "pgrollup"},
		cells: map[cell]figures{
			{16, "simple", "direct"}:      {tps: 10000, latencyMS: 1.6, p50: 1500, p99: 4000, proxyCPU: nan, machineCPU: 190},
			{16, "simple", "pgbouncer"}:   {tps: 8000, latencyMS: 2, p50: 1900, p99: 4500, proxyCPU: 12.9, machineCPU: 240},
			{16, "simple", "pgrollup"}:    {tps: 6000, latencyMS: 2.6, p50: 2500, p99: 6000, proxyCPU: 24.6, machineCPU: 300},
			{16, "prepared", "direct"}:    {tps: 12000, p50: 1200, p99: 3000, proxyCPU: nan, machineCPU: 150},
			{16, "prepared", "pgbouncer"}: {tps: 9000, p50: 1700, p99: 3900, proxyCPU: 12, machineCPU: 200},
			{16, "prepared", "pgrollup"}:  {tps: 9100, p50: 1650, p99: 3800, proxyCPU: 11.5, machineCPU: 190},
		},
	}
	// Rounds paired in the prepared cells (the ratios of the medians differ
	// from the medians of the ratios), and not in the simple ones.
	r.cells[cell{16, "prepared", "pgbouncer"}] = withRounds(r.cells[cell{16, "prepared", "pgbouncer"}], []float64{9000, 10000, 8000}, []float64{12, 11, 13})
	r.cells[cell{16, "prepared", "pgrollup"}] = withRounds(r.cells[cell{16, "prepared", "pgrollup"}], []float64{9100, 9000, 9200}, []float64{11.5, 11.0, 11.7})
	r.cells[cell{16, "simple", "pgrollup"}] = withRounds(r.cells[cell{16, "simple", "pgrollup"}], []float64{6000}, []float64{24.6})
	var b strings.Builder
	r.print(&b)
	out := b.String()
	for _, want := range []string{
		"**pgbench -S, 5 s per run, scale 10, median of 3 round(s).** `bin/pgrollup-bench -rounds 3` on 2026-12-07 01:02 UTC: 2 CPUs, load average 1.00 2.00 3.00 before the runs, 2.00 2.00 3.00 after.",
		"| 16 | simple | 10000 | 8000 | 6000 | 0.75× | 12.9 | 24.6 | +400 / +1000 | +500 / +2000 | MISS (tps, CPU) |",
		"| 16 | prepared | 12000 | 9000 | 9100 | 1.01× | 12.0 | 11.5 | +500 / +450 | +900 / +800 | PASS |",
		"| 1 | simple | direct | error | | | | | | |", // not measured: 1 client has no cells
		"| 16 | simple | direct | 10000 | 1.600 | 1.500 | 4.000 | — | 190.0 | 0 |",
		"both protocols): 1 of 2 PASS",
		"- 16 clients, simple: MISS (tps, CPU) (tps 0.75× PgBouncer's; CPU 24.6 vs 12.9 µs/tx)\n",
		"- 16 clients, prepared: PASS (tps 1.01× PgBouncer's; CPU 11.5 vs 12.0 µs/tx); round by round, pgrollup / PgBouncer: tps 1.01 0.90 1.15, CPU 0.96 1.00 0.90\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "| 1 | simple | — | — | — | — | — | — | — / — | — / — | — |") {
		t.Errorf("a client count without figures is not all dashes:\n%s", out)
	}
	if strings.Contains(out, "Every proxy against PgBouncer") {
		t.Errorf("the table of other proxies without any:\n%s", out)
	}

	// A relay target adds a column pair to the table of every proxy.
	r.targets = []string{"pgbouncer", "pgrollup", "relay-epoll"}
	r.clients = []int{16}
	r.cells[cell{16, "simple", "relay-epoll"}] = figures{tps: 8800, proxyCPU: 11.1}
	b.Reset()
	r.print(&b)
	out = b.String()
	for _, want := range []string{
		"| clients | protocol | pgbouncer tps × | pgbouncer CPU µs/tx | pgrollup tps × | pgrollup CPU µs/tx | relay-epoll tps × | relay-epoll CPU µs/tx |",
		"| 16 | simple | 1.00× | 12.9 | 0.75× | 24.6 | 1.10× | 11.1 |",
		"| 16 | prepared | 1.00× | 12.0 | 1.01× | 11.5 | — | — |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "pgrollup-1p (GOMAXPROCS=1)") {
		t.Errorf("a goal line for pgrollup-1p, which did not run:\n%s", out)
	}

	// pgrollup-goroutines and pgrollup-1p get a goal line each.
	r.targets = []string{"pgbouncer", "pgrollup", "pgrollup-goroutines", "pgrollup-1p"}
	r.cells[cell{16, "simple", "pgrollup-1p"}] = figures{tps: 8100, proxyCPU: 12.0}
	r.cells[cell{16, "prepared", "pgrollup-1p"}] = figures{tps: 8900, proxyCPU: 11.0}
	r.cells[cell{16, "simple", "pgrollup-goroutines"}] = figures{tps: 7000, proxyCPU: 14.0}
	r.cells[cell{16, "prepared", "pgrollup-goroutines"}] = figures{tps: 9000, proxyCPU: 11.9}
	b.Reset()
	r.print(&b)
	for _, want := range []string{
		"The same goal for pgrollup-goroutines (event_loop: false): 1 of 2 PASS (16 simple MISS (tps, CPU); 16 prepared PASS)",
		"The same goal for pgrollup-1p (GOMAXPROCS=1): 1 of 2 PASS (16 simple PASS; 16 prepared MISS (tps))",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, b.String())
		}
	}

	// -rows names its workload.
	r.rows = 1000
	b.Reset()
	r.print(&b)
	if want := "**pgbench, 1000 rows per transaction, 5 s per run,"; !strings.Contains(b.String(), want) {
		t.Errorf("the report lacks %q:\n%s", want, b.String())
	}
}

func TestParsePgbenchOutput(t *testing.T) {
	out, err := parsePgbenchOutput(`transaction type: <builtin: select only>
number of transactions actually processed: 50123
number of failed transactions: 0 (0.000%)
latency average = 1.596 ms
initial connection time = 40.123 ms
tps = 10024.612345 (without initial connection time)
`)
	if err != nil {
		t.Fatal(err)
	}
	if out.tps != 10024.612345 || out.latencyMS != 1.596 || out.failed != 0 {
		t.Fatalf("parsePgbenchOutput = %+v", out)
	}
	if _, err := parsePgbenchOutput("pgbench: error: connection refused"); err == nil {
		t.Fatal("parsePgbenchOutput without figures: no error")
	}
}

func TestCPUPerTx(t *testing.T) {
	base := time.Unix(1_000, 0)
	var samples []sample
	for i := 0; i <= 50; i++ { // 5 s: the proxy uses 2 ms and the machine 1 tick per 100 ms
		samples = append(samples, sample{
			at:          base.Add(time.Duration(i) * samplePeriod),
			proxy:       procCPU{tasks: map[int]int64{7: int64(i) * 2_000_000}},
			machineBusy: int64(i),
		})
	}
	// 100 transactions per 100 ms, all through the run.
	var txs txLog
	for us := int64(0); us < 5_000_000; us += 1000 {
		txs.latencies = append(txs.latencies, 1000)
		txs.ends = append(txs.ends, base.UnixMicro()+us+1)
	}
	proxy, machine := cpuPerTx(samples, &txs, true)
	if math.Abs(proxy-20) > 0.01 || math.Abs(machine-100) > 0.01 {
		t.Fatalf("cpuPerTx = %v µs proxy, %v µs machine; want 20 and 100", proxy, machine)
	}
	if proxy, _ := cpuPerTx(samples, &txs, false); !math.IsNaN(proxy) {
		t.Fatalf("cpuPerTx for direct = %v, want NaN", proxy)
	}
}
