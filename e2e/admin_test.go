package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// metricValue finds one sample in Prometheus text format: the metric name and
// exactly the given labels.
func metricValue(body []byte, name string, labels map[string]string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		got := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			for _, kv := range splitLabels(rest[1:end]) {
				k, v, _ := strings.Cut(kv, "=")
				got[k], _ = strconv.Unquote(v)
			}
			rest = rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // a longer metric name with this prefix
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		return v, err == nil
	}
	return 0, false
}

// splitLabels splits `a="x",b="y,z"` at commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func scrape(t *testing.T, p *proxyProc) []byte {
	t.Helper()
	code, body, err := p.adminGet("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v\n%s", code, err, body)
	}
	return body
}

func mustMetric(t *testing.T, body []byte, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := metricValue(body, name, labels)
	if !ok {
		t.Fatalf("metric %s%v not found in /metrics:\n%s", name, labels, clip(string(body)))
	}
	return v
}

func TestAdminEndpoints(t *testing.T) {
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		code, body, err := env.proxy.adminGet(path)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s: %d %v %s", path, code, err, clip(string(body)))
		}
	}
}

// TestMetrics runs a known workload through the proxy and checks the
// passthrough counter and the connection gauge.
func TestMetrics(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	passthrough := map[string]string{"route": "passthrough"}
	before := mustMetric(t, scrape(t, env.proxy), "pgrollup_queries_total", passthrough)

	conn := connect(t, ctx, env.proxy.DSN(userScram, dbMain))
	const simple, extended = 15, 10
	for i := 0; i < simple; i++ {
		if _, err := conn.Exec(ctx, fmt.Sprintf("SELECT %d AS metrics_simple", i), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < extended; i++ {
		var v int
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT $1::int + %d AS metrics_extended", i), pgx.QueryExecModeExec, i).Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	after := mustMetric(t, scrape(t, env.proxy), "pgrollup_queries_total", passthrough)
	if after-before < simple+extended {
		t.Errorf("pgrollup_queries_total{route=\"passthrough\"} went from %v to %v after %d statements", before, after, simple+extended)
	}

	// The gauge counts open client sessions: three more, then three fewer.
	gauge := func() float64 { return mustMetric(t, scrape(t, env.proxy), "pgrollup_client_connections", nil) }
	waitGauge := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			got := gauge()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("pgrollup_client_connections = %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Sessions of earlier tests may still be winding down: take the base once
	// the gauge has held still for a moment.
	base := gauge()
	for stable := 0; stable < 5; {
		time.Sleep(40 * time.Millisecond)
		if g := gauge(); g == base {
			stable++
		} else {
			base, stable = g, 0
		}
	}
	if base < 1 {
		t.Errorf("pgrollup_client_connections = %v with a session open", base)
	}
	var extra []*pgx.Conn
	for i := 0; i < 3; i++ {
		c, err := pgx.Connect(ctx, env.proxy.DSN(userTrust, dbMain))
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, c)
	}
	waitGauge(base + 3)
	for _, c := range extra {
		c.Close(ctx)
	}
	waitGauge(base)
}
