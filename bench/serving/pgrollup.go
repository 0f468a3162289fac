package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/internal/benchkit"
	"github.com/pgrollup/pgrollup/internal/proc"
	"github.com/pgrollup/pgrollup/internal/promtext"
)

// pgrollup is the running `pgrollup serve`.
type pgrollup struct {
	proc     *proc.Process
	port     int
	adminURL string
	dataDir  string
}

// rollupsYAML declares the benchmark's rollups: three typical shapes (daily,
// hourly, monthly by a joined dimension). Every dashboard statement is
// answered by one of them; which one is pgrollup's choice (the fewest rows
// that can answer).
func rollupsYAML(w *warehouse) string {
	q := strconv.Quote
	return `tables:
  - name: public.orders
    joins:
      - table: public.customers
        on: orders.customer_id = customers.id
        type: left
        relationship: many_to_one
rollups:
  - name: orders_daily_by_status
    table: public.orders
    dimensions: [status]
    time_dimension: created_at
    granularity: day
    measures: [sum(amount), count(*), sum(quantity), avg(amount), min(amount), max(amount)]
  - name: orders_monthly_by_country
    table: public.orders
    dimensions: [customers.country, status]
    time_dimension: created_at
    granularity: month
    measures: [sum(amount), count(*), sum(quantity), avg(amount)]
  - name: orders_hourly_by_status
    table: public.orders
    dimensions: [status]
    time_dimension: created_at
    granularity: hour
    measures: [sum(amount), count(*), sum(quantity)]
    partition_granularity: month
    build_range:
      start: ` + q("SELECT timestamptz '"+w.start.Format("2006-01-02 15:04:05Z07:00")+"'") + `
      end: ` + q("SELECT timestamptz '"+w.end.Format("2006-01-02 15:04:05Z07:00")+"'") + `
`
}

// startPgrollup writes a config in dir, runs `pgrollup serve` and waits until
// it accepts connections.
func startPgrollup(ctx context.Context, bin, dir string, w *warehouse, resultCache string) (*pgrollup, error) {
	benchkit.Step("Starting pgrollup")
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	ports, err := proc.FreePorts(2)
	if err != nil {
		return nil, err
	}
	port, adminPort := ports[0], ports[1]
	cfg := proc.Config{
		Writer: "bench/serving", Listen: fmt.Sprintf("127.0.0.1:%d", port), Admin: fmt.Sprintf("127.0.0.1:%d", adminPort),
		WarehouseDSN: w.serviceDSN(), DataDir: dataDir,
	}.YAML(`routing:
  result_cache_bytes: ` + strconv.Quote(resultCache) + `
auth:
  cleartext_without_tls: loopback
build_timezone: UTC
` + rollupsYAML(w))
	fmt.Printf("%s\n", benchkit.Indent(rollupsYAML(w)))
	p := &pgrollup{
		port:     port,
		adminURL: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		dataDir:  dataDir,
	}
	// The log is appended to: a restart keeps the first run's log.
	if p.proc, err = proc.StartPgrollup(bin, dir, cfg, "--shutdown-timeout", "5s"); err != nil {
		return nil, err
	}
	command(p.proc.Cmd.Args...)
	err = proc.WaitReady(ctx, p.proc, p.adminURL+"/readyz", 60*time.Second)
	if err == nil {
		err = proc.WaitSession(ctx, p.proc, p.clientDSN(w), 60*time.Second)
	}
	if err != nil {
		p.proc.Stop(5 * time.Second)
		return nil, err
	}
	benchkit.Done("pgrollup on 127.0.0.1:%d, admin %s, log %s", port, p.adminURL, p.proc.LogPath)
	return p, nil
}

func (p *pgrollup) clientDSN(w *warehouse) string {
	return p.dsnFor(benchUser, benchPassword)
}

// superDSN connects through pgrollup as the cluster's superuser, the only
// role EXPLAIN (ROLLUP) shows the rollup's files to, which running the same
// SQL on DuckDB alone needs.
func (p *pgrollup) superDSN(w *warehouse) string {
	return p.dsnFor(w.cluster.SuperUser, w.cluster.SuperPassword)
}

func (p *pgrollup) dsnFor(user, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		Path:     "/" + benchDB,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// rollupState is an element of GET /api/rollups.
type rollupState struct {
	Name       string  `json:"name"`
	Status     string  `json:"status"`
	Version    string  `json:"version"`
	Rows       int64   `json:"rows"`
	Bytes      int64   `json:"bytes"`
	Partitions int     `json:"partitions"`
	Progress   string  `json:"progress"`
	LastError  *string `json:"last_error"`
	Truncated  bool    `json:"truncated"`
}

// waitBuilds polls the admin API until every rollup has an active version,
// printing each change of status or progress.
func (p *pgrollup) waitBuilds(ctx context.Context, limit time.Duration) error {
	benchkit.Step("Waiting for the rollup builds (GET %s/api/rollups)", p.adminURL)
	t0 := time.Now()
	deadline := t0.Add(limit)
	last := map[string]string{}
	for {
		var states []rollupState
		if err := p.getJSON(ctx, "/api/rollups", &states); err != nil {
			return p.proc.Failed(err)
		}
		sort.Slice(states, func(i, j int) bool { return states[i].Name < states[j].Name })
		active := 0
		for _, s := range states {
			line := s.Status
			if s.Progress != "" {
				line += " (" + s.Progress + ")"
			}
			if s.Status == "active" {
				active++
				line = fmt.Sprintf("active, version %s: %d rows, %d bytes, %d partition(s)", s.Version, s.Rows, s.Bytes, s.Partitions)
				if s.Truncated {
					line += ", TRUNCATED"
				}
			}
			if line != last[s.Name] {
				benchkit.Done("%6s  %-26s %s", benchkit.Since(t0), s.Name, line)
				last[s.Name] = line
			}
			if s.Status == "failed" {
				msg := ""
				if s.LastError != nil {
					msg = *s.LastError
				}
				return p.proc.Failed(fmt.Errorf("the build of rollup %s failed: %s", s.Name, msg))
			}
		}
		if len(states) > 0 && active == len(states) {
			benchkit.Done("all %d rollups active (%s)", len(states), benchkit.Since(t0))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.proc.Exited:
			return p.proc.Failed(errors.New("while building"))
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return p.proc.Failed(fmt.Errorf("rollups not all active after %s", limit))
		}
	}
}

func (p *pgrollup) getJSON(ctx context.Context, path string, into any) error {
	body, err := proc.Get(ctx, p.adminURL+path)
	if err != nil || into == nil {
		return err
	}
	return json.Unmarshal(body, into)
}

// metrics is one scrape of /metrics: series (name with labels, as
// exposed) to value.
type metrics map[string]float64

func (p *pgrollup) metrics(ctx context.Context) (metrics, error) {
	body, err := proc.Get(ctx, p.adminURL+"/metrics")
	if err != nil {
		return nil, err
	}
	m, err := promtext.Parse(body)
	return metrics(m), err
}

// sum adds the series of metric name whose labels include every label given
// as `key="value"`.
func (m metrics) sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(series, l) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// routeCounts is what the benchmark checks after each measured piece of work:
// how many statements pgrollup answered from a rollup (and from which one),
// passed through, or fell back on.
type routeCounts struct {
	rollup, passthrough, errors, fallbacks float64
	hits                                   map[string]float64
}

func (p *pgrollup) routeCounts(ctx context.Context) (routeCounts, error) {
	m, err := p.metrics(ctx)
	if err != nil {
		return routeCounts{}, err
	}
	rc := routeCounts{
		rollup:      m.sum("pgrollup_queries_total", `route="rollup"`),
		passthrough: m.sum("pgrollup_queries_total", `route="passthrough"`),
		errors:      m.sum("pgrollup_queries_total", `route="error"`),
		fallbacks:   m.sum("pgrollup_rollup_fallbacks_total"),
		hits:        map[string]float64{},
	}
	for series, v := range m {
		if strings.HasPrefix(series, "pgrollup_rollup_hits_total{") {
			if i := strings.Index(series, `rollup="`); i >= 0 {
				name := series[i+len(`rollup="`):]
				name = name[:strings.IndexByte(name, '"')]
				rc.hits[name] += v
			}
		}
	}
	return rc, nil
}

// settle returns the counts since before, scraping again for up to two
// seconds until enough(delta) holds: pgrollup counts a statement once it has
// answered it, which may be just after the client has read the answer.
func (p *pgrollup) settle(ctx context.Context, before routeCounts, enough func(routeCounts) bool) (routeCounts, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		after, err := p.routeCounts(ctx)
		if err != nil {
			return routeCounts{}, err
		}
		d := after.delta(before)
		if enough(d) || time.Now().After(deadline) {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return routeCounts{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// delta is after minus before.
func (after routeCounts) delta(before routeCounts) routeCounts {
	d := routeCounts{
		rollup:      after.rollup - before.rollup,
		passthrough: after.passthrough - before.passthrough,
		errors:      after.errors - before.errors,
		fallbacks:   after.fallbacks - before.fallbacks,
		hits:        map[string]float64{},
	}
	for name, v := range after.hits {
		if x := v - before.hits[name]; x != 0 {
			d.hits[name] = x
		}
	}
	return d
}

func (d routeCounts) String() string {
	var hits []string
	for name, v := range d.hits {
		hits = append(hits, fmt.Sprintf("%s=%.0f", name, v))
	}
	sort.Strings(hits)
	return fmt.Sprintf("rollup %.0f, passthrough %.0f, error %.0f, fallbacks %.0f, hits {%s}",
		d.rollup, d.passthrough, d.errors, d.fallbacks, strings.Join(hits, " "))
}
