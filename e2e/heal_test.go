package e2e

// Broken rollup files (DESIGN.md §7): a Parquet file of an active version
// deleted from storage, or corrupted there (same size, other bytes), takes
// that version out of service with the file named in its last error, no
// answer comes from it afterwards, and the rollup is rebuilt and answers
// again. Once with file:// storage read in place by the single binary, once
// with S3 (MinIO) in the scaled-out topology, where both workers hold the
// file in their caches when it breaks.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/pgrollup/pgrollup/internal/minio"
)

// The heal tests' rollups: one file per version (no partitions), each
// broken once, so that every break is the first of its rollup.
const (
	healCategory = "heal_by_category"
	healQty      = "heal_by_qty"
)

// healRollups is the config's rollups list.
func healRollups() []any {
	return []any{
		map[string]any{
			"name": healCategory, "table": "public.items", "dimensions": []string{"category"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"sum(amount)", "count(*)"}, "refresh": map[string]any{"every": "1h"},
		},
		map[string]any{
			"name": healQty, "table": "public.items", "dimensions": []string{"qty"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)"}, "refresh": map[string]any{"every": "1h"},
		},
	}
}

// healStatement is a statement that rollup answers; each n gives new text,
// which no result cache holds yet.
func healStatement(rollup string, n int) string {
	if rollup == healCategory {
		return fmt.Sprintf("SELECT category, sum(amount), count(*) FROM items WHERE category <> 'heal-%d' GROUP BY category ORDER BY category", n)
	}
	return fmt.Sprintf("SELECT qty, count(*), sum(amount) FROM items WHERE qty <> %d GROUP BY qty ORDER BY qty", -n)
}

// healSide is one deployment under test: its proxy, connections through it
// and straight to Postgres, and how to break a stored file.
type healSide struct {
	p    *opsProc
	conn *pgx.Conn
	// super is the cluster's superuser through pgrollup: EXPLAIN (ROLLUP)
	// and SHOW ROLLUPS show file names to superusers only.
	super  *pgx.Conn
	direct *pgx.Conn
	// breakFile deletes the object under key, or replaces it with the same
	// number of bytes, some of them flipped.
	breakFile func(t *testing.T, key string, corrupt bool)
	n         int
}

// healDetail is the part of GET /api/rollups/{name} the tests read.
type healDetail struct {
	rollupStatus
	State struct {
		Active *struct {
			ID         string `json:"id"`
			Partitions []struct {
				File string `json:"file"`
			} `json:"partitions"`
		} `json:"active"`
		Broken []struct {
			Version string `json:"version"`
			File    string `json:"file"`
			Kind    string `json:"kind"`
		} `json:"broken"`
	} `json:"state"`
}

func (s *healSide) detail(t *testing.T, name string) healDetail {
	t.Helper()
	code, body, err := s.p.adminGet("/api/rollups/" + name)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/rollups/%s: %d %v\n%s", name, code, err, body)
	}
	var d healDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("GET /api/rollups/%s: %v\n%s", name, err, body)
	}
	return d
}

// same runs sql through the proxy and on Postgres and requires equal rows.
func (s *healSide) same(t *testing.T, sql string) {
	t.Helper()
	want := queryText(t, s.direct, sql, pgx.QueryExecModeSimpleProtocol)
	if got := queryText(t, s.conn, sql, pgx.QueryExecModeSimpleProtocol); got != want {
		t.Errorf("%s: through pgrollup\n%s\nwarehouse\n%s", sql, got, want)
	}
}

// chosen is the rewritten SQL EXPLAIN (ROLLUP) gives for sql, "" when no
// rollup answers it.
func (s *healSide) chosen(t *testing.T, sql string) string {
	t.Helper()
	rows, err := s.super.Query(testCtx(t, 30*time.Second), "EXPLAIN (ROLLUP) "+sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rollup, decision, reason, rewritten *string
		if err := rows.Scan(&rollup, &decision, &reason, &rewritten); err != nil {
			t.Fatal(err)
		}
		if decision != nil && *decision == "chosen" && rewritten != nil {
			return *rewritten
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("EXPLAIN (ROLLUP): %v", err)
	}
	return ""
}

// hits is pgrollup_rollup_hits_total of rollup at the proxy.
func (s *healSide) hits(t *testing.T, rollup string) float64 {
	t.Helper()
	n, _ := metricSum(scrape(t, s.p.proxyProc), "pgrollup_rollup_hits_total", map[string]string{"rollup": rollup})
	return n
}

// waitServing waits until rollup has an active version other than not and
// the proxy answers its statements from it, and returns the version and its
// file.
func (s *healSide) waitServing(t *testing.T, ctx context.Context, rollup, not string) (version, file string) {
	t.Helper()
	for {
		d := s.detail(t, rollup)
		if a := d.State.Active; d.Status == "active" && a != nil && a.ID != not && len(a.Partitions) == 1 {
			s.n++
			if strings.Contains(s.chosen(t, healStatement(rollup, s.n)), a.ID) {
				return a.ID, a.Partitions[0].File
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("rollup %s not serving a version other than %q in time; last %+v", rollup, not, d.rollupStatus)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// heal breaks the one file of rollup's active version and checks what
// DESIGN.md §7 promises. detect makes pgrollup look at the file: a statement
// that reads it, or whatever else finds it.
func (s *healSide) heal(t *testing.T, ctx context.Context, rollup string, corrupt bool, kind string, detect func(t *testing.T)) {
	v1, key := s.waitServing(t, ctx, rollup, "")
	// Answered from the rollup, and kept: the proxy's result cache, DuckDB's
	// tables in memory and the workers' caches hold it now.
	cached := healStatement(rollup, 0)
	before := s.hits(t, rollup)
	for range 3 {
		s.same(t, cached)
	}
	if got := s.hits(t, rollup) - before; got != 3 {
		t.Fatalf("%v of 3 statements answered from %s before its file broke", got, rollup)
	}

	s.breakFile(t, key, corrupt)
	detect(t)

	// The version is out of service, with the file named: in the API at once,
	// then in SHOW ROLLUPS and `pgrollup status` too unless the rebuild has
	// finished meanwhile (it clears the last error).
	var seen healDetail
	for {
		seen = s.detail(t, rollup)
		if seen.LastError != nil && strings.Contains(*seen.LastError, key) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no last error naming %s in time; last %+v", rollup, key, seen.rollupStatus)
		case <-time.After(20 * time.Millisecond):
		}
	}
	switch seen.Status {
	case "failed":
	case "building":
		t.Logf("%s: the rebuild had started when the failure was first seen", rollup)
	default:
		t.Errorf("%s: status %q with last error %q, want failed (or building: the rebuild)", rollup, seen.Status, *seen.LastError)
	}
	if seen.Version == v1 || (seen.State.Active != nil && seen.State.Active.ID == v1) {
		t.Errorf("%s: version %s still active after its file broke", rollup, v1)
	}
	if b := seen.State.Broken; len(b) == 0 || b[len(b)-1].Version != v1 || b[len(b)-1].File != key || b[len(b)-1].Kind != kind {
		t.Errorf("%s: broken record %+v, want version %s, file %s, kind %s", rollup, b, v1, key, kind)
	}
	s.checkShown(t, rollup, key, v1)

	// No answer from the broken version: until the rebuilt one serves, every
	// statement, the one whose answer was kept too, goes to the warehouse.
	for {
		s.n++
		for _, sql := range []string{cached, healStatement(rollup, s.n)} {
			if rewritten := s.chosen(t, sql); strings.Contains(rewritten, v1) {
				t.Fatalf("%s: still chosen from the broken version %s:\n%s", sql, v1, rewritten)
			}
			s.same(t, sql)
		}
		d := s.detail(t, rollup)
		if d.Status == "active" && d.Version != "" && d.Version != v1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not rebuilt in time; last %+v", rollup, d.rollupStatus)
		case <-time.After(100 * time.Millisecond):
		}
	}

	// Rebuilt: a new version answers again, the last error is gone.
	v2, _ := s.waitServing(t, ctx, rollup, v1)
	before = s.hits(t, rollup)
	s.n++
	s.same(t, cached)
	s.same(t, healStatement(rollup, s.n))
	if got := s.hits(t, rollup) - before; got != 2 {
		t.Errorf("%v of 2 statements answered from the rebuilt version %s", got, v2)
	}
	if d := s.detail(t, rollup); d.LastError != nil {
		t.Errorf("%s: last error %q after the rebuild", rollup, *d.LastError)
	}
}

// checkShown checks SHOW ROLLUPS and `pgrollup status` for the broken file,
// unless the rollup was rebuilt already.
func (s *healSide) checkShown(t *testing.T, rollup, key, v1 string) {
	t.Helper()
	rebuilt := func() bool {
		d := s.detail(t, rollup)
		return d.Status == "active" && d.Version != v1
	}
	var status, lastErr *string
	rows, err := s.super.Query(testCtx(t, 30*time.Second), "SHOW ROLLUPS", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("SHOW ROLLUPS: %v", err)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if vals[0] == rollup {
			st, _ := vals[1].(string)
			status = &st
			if e, ok := vals[6].(string); ok {
				lastErr = &e
			}
		}
	}
	rows.Close()
	if status == nil {
		t.Fatalf("SHOW ROLLUPS has no row for %s", rollup)
	}
	if (lastErr == nil || !strings.Contains(*lastErr, key) || (*status != "failed" && *status != "building")) && !rebuilt() {
		t.Errorf("SHOW ROLLUPS: %s %s, last error %v; want failed naming %s", rollup, *status, lastErr, key)
	}
	out, errOut, code := runPgrollup(t, "status", "--admin", "http://"+s.p.admin, "--token", adminTok)
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, rollup+" ") {
			line = l
		}
	}
	if code != 0 || line == "" {
		t.Fatalf("pgrollup status: exit %d\n%s%s", code, out, errOut)
	}
	if f := strings.Fields(line); (len(f) < 2 || (f[1] != "failed" && f[1] != "building") || !strings.Contains(line, key)) && !rebuilt() {
		t.Errorf("pgrollup status: %q; want %s failed naming %s", line, rollup, key)
	}
}

// flipBytes returns b with some bytes in the middle inverted: the same size,
// other content.
func flipBytes(b []byte) []byte {
	b = bytes.Clone(b)
	for i := len(b) / 3; i < len(b)/3+16 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	return b
}

// TestHealLocal: the single binary over file:// storage, whose files DuckDB
// reads in place: the next statement that reads a deleted or corrupted file
// finds it, falls back, and takes the version out of service.
func TestHealLocal(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	dir := filepath.Join(env.tmp, "heal-local")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, adminPort := mustFreePort(t), mustFreePort(t)
	storeDir := filepath.Join(dir, "data", "rollups")
	cfg := map[string]any{
		"listen":         net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"warehouse":      map[string]any{"dsn": env.pg.DSN(dbMain)},
		"data_dir":       filepath.Join(dir, "data"),
		"storage":        map[string]any{"url": "file://" + storeDir},
		"worker":         map[string]any{"cache_dir": filepath.Join(dir, "data", "cache"), "concurrency": 1, "duckdb_memory_limit": "256MB"},
		"admin":          map[string]any{"listen": net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)), "token": adminTok},
		"build_timezone": "UTC",
		"tables":         []any{map[string]any{"name": "public.items"}},
		"rollups":        healRollups(),
	}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgFile, text, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &proxyProc{name: "heal-local", host: "127.0.0.1", port: port, admin: net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		log: &syncBuffer{}, exited: make(chan struct{})}
	if _, err := p.start(ctx, cfgFile, text, "debug"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(10 * time.Second); err != nil {
			t.Errorf("pgrollup (heal-local) did not stop cleanly: %v", err)
		}
		if t.Failed() {
			t.Logf("pgrollup (heal-local) log:\n%s", tail(p.log.Bytes(), 150))
		}
	})
	s := &healSide{
		p:      &opsProc{proxyProc: p, cfgFile: cfgFile, dir: dir},
		conn:   connect(t, ctx, p.DSN(userScram, dbMain)),
		super:  connect(t, ctx, dsn(p.host, p.port, env.pg.SuperUser, env.pg.SuperPassword, dbMain, "disable")),
		direct: connect(t, ctx, directDSN(userScram, dbMain)),
		breakFile: func(t *testing.T, key string, corrupt bool) {
			path := filepath.Join(storeDir, filepath.FromSlash(key))
			if !corrupt {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, flipBytes(b), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
	// The next new statement reads the file and falls back to the warehouse
	// with the same rows.
	readIt := func(rollup string) func(t *testing.T) {
		return func(t *testing.T) {
			before, _ := metricSum(scrape(t, p), "pgrollup_rollup_fallbacks_total", nil)
			s.n++
			s.same(t, healStatement(rollup, s.n))
			if after, _ := metricSum(scrape(t, p), "pgrollup_rollup_fallbacks_total", nil); after-before != 1 {
				t.Errorf("%v fallbacks for the statement that read the broken file, want 1", after-before)
			}
		}
	}
	t.Run("deleted", func(t *testing.T) {
		s.heal(t, ctx, healCategory, false, "missing", readIt(healCategory))
		if n, _ := metricSum(scrape(t, p), "pgrollup_rollup_file_errors_total", map[string]string{"rollup": healCategory, "kind": "missing"}); n < 1 {
			t.Errorf("pgrollup_rollup_file_errors_total{kind=\"missing\"} = %v", n)
		}
	})
	t.Run("corrupted", func(t *testing.T) {
		s.heal(t, ctx, healQty, true, "checksum", readIt(healQty))
		if n, _ := metricSum(scrape(t, p), "pgrollup_rollup_file_errors_total", map[string]string{"rollup": healQty, "kind": "checksum"}); n < 1 {
			t.Errorf("pgrollup_rollup_file_errors_total{kind=\"checksum\"} = %v", n)
		}
	})
}

// TestHealScaledOut: S3 (MinIO) in the scaled-out topology, with the file in
// both workers' caches when it breaks, so that their answers stay right and
// no statement notices. A deleted file is found by the proxy's scrub of
// storage; a corrupted one by a third worker whose empty cache fetches it.
// Either way the workers that held the file drop it.
func TestHealScaledOut(t *testing.T) {
	natsBin := requireNATSServer(t)
	ctx := testCtx(t, 6*time.Minute)
	dir := t.TempDir()
	mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	m, err := minio.Start(mctx, filepath.Join(dir, "minio"))
	if err != nil {
		t.Fatalf("starting MinIO: %v", err)
	}
	t.Cleanup(m.Stop)
	workerBin := buildWorker(t)
	nats := startNATSServer(t, natsBin, filepath.Join(dir, "nats"))

	proxyPort, proxyAdmin := mustFreePort(t), mustFreePort(t)
	const prefix = "rollups"
	cfgFor := func(name string) string {
		cfg := map[string]any{
			"listen":    net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyPort)),
			"warehouse": map[string]any{"dsn": env.pg.DSN(dbMain)},
			"nats":      map[string]any{"url": nats.url},
			"data_dir":  filepath.Join(dir, name, "data"),
			"storage": map[string]any{
				"url": "s3://" + m.Bucket + "/" + prefix,
				"s3": map[string]any{
					"endpoint": m.Endpoint, "region": minio.Region, "force_path_style": true,
					"access_key": m.AccessKey, "secret_key": m.SecretKey,
				},
			},
			"worker": map[string]any{
				"cache_dir": filepath.Join(dir, name, "cache"), "concurrency": 2, "duckdb_memory_limit": "256MB",
			},
			"routing":        map[string]any{"worker_timeout": "5s"},
			"admin":          map[string]any{"listen": net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyAdmin)), "token": adminTok},
			"build_timezone": "UTC",
			"tables":         []any{map[string]any{"name": "public.items"}},
			"rollups":        healRollups(),
		}
		text, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, text, 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	startWorker := func(name string) *proxyProc {
		admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(mustFreePort(t)))
		w := startTopologyProc(t, name, workerBin, admin, 0,
			"--config", cfgFor(name), "--name", name, "--admin-listen", admin, "--log-level", "debug")
		waitReady(t, ctx, w)
		return w
	}
	workers := []*proxyProc{startWorker("worker-1"), startWorker("worker-2")}
	proxyCfg := cfgFor("proxy")
	p := startTopologyProc(t, "proxy", env.bin, net.JoinHostPort("127.0.0.1", strconv.Itoa(proxyAdmin)), proxyPort,
		"serve", "--config", proxyCfg, "--build-worker=false", "--log-level", "debug")
	waitReady(t, ctx, p)

	client, err := m.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &healSide{
		p:      &opsProc{proxyProc: p, cfgFile: proxyCfg, dir: dir},
		conn:   connect(t, ctx, p.DSN(userScram, dbMain)),
		super:  connect(t, ctx, dsn(p.host, p.port, env.pg.SuperUser, env.pg.SuperPassword, dbMain, "disable")),
		direct: connect(t, ctx, directDSN(userScram, dbMain)),
		breakFile: func(t *testing.T, key string, corrupt bool) {
			obj := aws.String(prefix + "/" + key)
			if !corrupt {
				if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(m.Bucket), Key: obj}); err != nil {
					t.Fatal(err)
				}
				return
			}
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(m.Bucket), Key: obj})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			b = flipBytes(b)
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(m.Bucket), Key: obj,
				Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b)))}); err != nil {
				t.Fatal(err)
			}
		},
	}
	// cachedBy waits until each worker holds (or no longer holds) key in its
	// cache, as the cache names its files.
	cachedBy := func(t *testing.T, key string, want bool, ws ...*proxyProc) {
		t.Helper()
		h := sha256.Sum256([]byte(key))
		name := hex.EncodeToString(h[:20]) + ".parquet"
		deadline := time.Now().Add(30 * time.Second)
		for _, w := range ws {
			path := filepath.Join(dir, w.name, "cache", "parquet", name)
			for {
				_, err := os.Stat(path)
				if (err == nil) == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s cached %v, want %v", w.name, key, err == nil, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	// statementsStayRight: with the file broken in storage but whole in the
	// workers' caches, statements are still answered, and rightly.
	statementsStayRight := func(t *testing.T, rollup string) {
		for range 4 {
			s.n++
			s.same(t, healStatement(rollup, s.n))
		}
	}

	t.Run("deleted, found by the scrub", func(t *testing.T) {
		_, key := s.waitServing(t, ctx, healCategory, "")
		cachedBy(t, key, true, workers...) // prefetched when it became active
		s.heal(t, ctx, healCategory, false, "missing", func(t *testing.T) {
			statementsStayRight(t, healCategory)
		})
		cachedBy(t, key, false, workers...)
		if n, _ := metricSum(scrape(t, p), "pgrollup_rollup_file_errors_total", map[string]string{"rollup": healCategory, "kind": "missing"}); n != 1 {
			t.Errorf("the proxy's scrub counts %v missing files, want 1", n)
		}
	})

	t.Run("corrupted, found by a new worker", func(t *testing.T) {
		_, key := s.waitServing(t, ctx, healQty, "")
		cachedBy(t, key, true, workers...)
		var third *proxyProc
		var once sync.Once
		s.heal(t, ctx, healQty, true, "checksum", func(t *testing.T) {
			statementsStayRight(t, healQty)
			once.Do(func() { third = startWorker("worker-3") })
		})
		cachedBy(t, key, false, workers...)
		cachedBy(t, key, false, third)
		n := 0.0
		for _, w := range []*proxyProc{p, third} {
			c, _ := metricSum(scrape(t, w), "pgrollup_rollup_file_errors_total", map[string]string{"rollup": healQty, "kind": "checksum"})
			n += c
		}
		if n < 1 {
			t.Errorf("neither the new worker nor the proxy's scrub counts the corrupted file")
		}
	})
}
