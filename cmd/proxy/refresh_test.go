package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app"
	"github.com/pgrollup/pgrollup/internal/pgcluster"
)

// TestBuildsAPIAndCLI starts the build machinery as serve does and drives it through
// the admin API and the status and refresh commands.
func TestBuildsAPIAndCLI(t *testing.T) {
	ctx := context.Background()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		pgcluster.Unavailable(t, err)
	}
	defer pg.Stop()
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`DROP TABLE IF EXISTS cli_orders`,
		`CREATE TABLE cli_orders (id int, status text, amount numeric(10,2))`,
		`INSERT INTO cli_orders SELECT i, (ARRAY['a','b'])[1 + i % 2], i FROM generate_series(1, 1000) i`,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)
	dir := t.TempDir()
	y := fmt.Sprintf("warehouse: {dsn: %q}\ndata_dir: %q\nworker: {concurrency: 2}\nrollups:\n  - {name: by_status, table: public.cli_orders, dimensions: [status], measures: [sum(amount), count(*)]}\n", pg.DSN("postgres"), dir)
	cfg, err := config.ParseWithEnv([]byte(y), filepath.Join(dir, "pgrollup.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b, err := app.StartBuilds(ctx, cfg, slog.New(slog.DiscardHandler), reg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	srv := httptest.NewServer(b.APIHandler())
	defer srv.Close()
	deadline := time.Now().Add(60 * time.Second)
	for !b.Ready() || b.Rollups()[0].Version == "" {
		if time.Now().After(deadline) {
			t.Fatalf("start-up build did not finish: %+v", b.Rollups())
		}
		time.Sleep(100 * time.Millisecond)
	}

	resp, err := http.Get(srv.URL + "/api/rollups")
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(list) != 1 || list[0]["name"] != "by_status" || list[0]["status"] != "active" || list[0]["rows"] != float64(2) {
		t.Fatalf("GET /api/rollups: %v", list)
	}
	for _, k := range []string{"version", "bytes", "built_at", "last_error"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("GET /api/rollups lacks %s", k)
		}
	}
	if resp, _ := http.Get(srv.URL + "/api/rollups/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown rollup: %s", resp.Status)
	}

	var out, errb bytes.Buffer
	if code := runStatus([]string{"--admin", srv.URL}, &out, &errb); code != 0 || !strings.Contains(out.String(), "by_status") || !strings.Contains(out.String(), "active") {
		t.Fatalf("status: %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	before := b.Rollups()[0].Version
	if code := runRefresh([]string{"--admin", srv.URL, "--wait", "--poll", "50ms", "--timeout", "60s", "by_status"}, &out, &errb); code != 0 {
		t.Fatalf("refresh --wait: %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "refresh queued") || !strings.Contains(out.String(), "done: version") {
		t.Errorf("refresh output:\n%s", out.String())
	}
	if after := b.Rollups()[0].Version; after == before {
		t.Errorf("refresh --wait returned before a new version: %s", after)
	}
	if code := runRefresh([]string{"--admin", srv.URL, "nope"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "unknown rollup") {
		t.Errorf("refresh of an unknown rollup: %d %s", code, errb.String())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, n := range []string{"pgrollup_builds_total", "pgrollup_build_duration_seconds", "pgrollup_rollup_rows", "pgrollup_rollup_bytes", "pgrollup_rollup_age_seconds"} {
		if !seen[n] {
			t.Errorf("metric %s missing", n)
		}
	}
}
