package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/pgrollup/pgrollup/internal/benchkit"
)

var (
	tpsRE     = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	latencyRE = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	failedRE  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

// pgbenchOutput is what pgbench prints at the end of a run.
type pgbenchOutput struct {
	tps, latencyMS float64
	failed         int64
}

// parsePgbenchOutput reads tps (without the initial connection time), the
// average latency and the failed transactions from pgbench's summary.
func parsePgbenchOutput(text string) (pgbenchOutput, error) {
	tps := tpsRE.FindStringSubmatch(text)
	lat := latencyRE.FindStringSubmatch(text)
	if tps == nil || lat == nil {
		return pgbenchOutput{}, fmt.Errorf("cannot read tps and latency from pgbench's output:\n%s", benchkit.Indent(text))
	}
	var out pgbenchOutput
	out.tps, _ = strconv.ParseFloat(tps[1], 64)
	out.latencyMS, _ = strconv.ParseFloat(lat[1], 64)
	if m := failedRE.FindStringSubmatch(text); m != nil {
		out.failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return out, nil
}

// measureRun runs pgbench once with args and a per-transaction log in
// logDir, sampling the CPU of the proxy process proxyPID (0 for direct) and
// of the machine while it runs.
func measureRun(ctx context.Context, pgbench string, args []string, logDir string, proxyPID int) result {
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return result{err: err}
	}
	prefix := filepath.Join(logDir, "tx")
	args = append([]string{"-l", "--log-prefix", prefix}, args...)
	cmd := exec.CommandContext(ctx, pgbench, args...)
	cmd.Env = pgEnv()
	cmd.Dir = logDir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	s := startSampler(proxyPID)
	err := cmd.Run()
	samples, sampleErr := s.finish()
	text := out.String()
	if err != nil {
		return result{err: fmt.Errorf("%w\n%s", err, benchkit.Indent(text))}
	}
	summary, err := parsePgbenchOutput(text)
	if err != nil {
		return result{err: err}
	}
	r := result{tps: summary.tps, latencyMS: summary.latencyMS, failed: summary.failed}
	switch txs, err := readTxLogs(prefix); {
	case r.failed > 0:
		r.err = fmt.Errorf("%d failed transactions\n%s", r.failed, benchkit.Indent(text))
	case sampleErr != nil:
		r.err = fmt.Errorf("reading CPU counters: %w", sampleErr)
	case err != nil:
		r.err = err
	default:
		ps := txs.percentiles(50, 99)
		r.p50, r.p99 = ps[0], ps[1]
		r.proxyCPU, r.machineCPU = cpuPerTx(samples, &txs, proxyPID != 0)
	}
	return r
}

// cpuPerTx is the proxy's and the machine's CPU per transaction in µs over
// the steady part of a run: from half a second (at most a tenth of the run)
// after the first transaction to as long before the last, which leaves out
// the clients' connections and disconnections, as pgbench's tps does.
func cpuPerTx(samples []sample, txs *txLog, proxy bool) (proxyCPU, machineCPU float64) {
	first, last := txs.span()
	skip := min(500*time.Millisecond, time.Duration(last-first)*time.Microsecond/10)
	win, ok := steadyWindow(samples, first, last, skip)
	if !ok {
		return math.NaN(), math.NaN()
	}
	tx := txs.completedIn(win.from.at.UnixMicro(), win.to.at.UnixMicro())
	machineCPU = perTx(time.Duration(win.to.machineBusy-win.from.machineBusy)*tick, tx)
	proxyCPU = math.NaN()
	if proxy {
		proxyCPU = perTx(cpuBetween(win.from.proxy, win.to.proxy), tx)
	}
	return proxyCPU, machineCPU
}
