package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testFile = "t.yaml"

func noEnv(string) string { return "" }

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func q(s string) string { return strconv.Quote(s) }

// head is a valid file start; its 7 lines end with the declared join.
var head = lines(
	"warehouse:",                         // 1
	"  dsn: postgres://svc@db:5432/shop", // 2
	"tables:",                            // 3
	"  - name: public.orders",            // 4
	"    joins:",                         // 5
	"      - table: public.customers",    // 6
	"        on: orders.customer_id = customers.id", // 7
)

// withTop appends top-level lines from line 8.
func withTop(ls ...string) string { return head + lines(ls...) }

// rollupYAML adds one rollup: name on line 9, table on 10, a count(*) measure on 11, ls from 12.
func rollupYAML(name, table string, ls ...string) string {
	return head + lines(append([]string{
		"rollups:",                 // 8
		"  - name: " + q(name),     // 9
		"    table: " + q(table),   // 10
		"    measures: [count(*)]", // 11
	}, ls...)...)
}

// withRollup is rollupYAML for rollup r over public.orders.
func withRollup(ls ...string) string { return rollupYAML("r", "public.orders", ls...) }

// withMeasure puts m on line 13 as rollups[0].measures[1].
func withMeasure(m string) string {
	return head + lines("rollups:", "  - name: r", "    table: public.orders", "    measures:", "      - count(*)", "      - "+q(m))
}

// withItem puts item on line 13 as rollups[0].<key>[0].
func withItem(key, item string) string {
	return withRollup("    "+key+":", "      - "+q(item))
}

// withTable declares one table (name on line 4) with one join (table on 6, on on 7); ls from 8.
func withTable(name, joinTable, on string, ls ...string) string {
	return lines(append([]string{
		"warehouse:",
		"  dsn: postgres://svc@db:5432/shop",
		"tables:",
		"  - name: " + q(name),
		"    joins:",
		"      - table: " + q(joinTable),
		"        on: " + q(on),
	}, ls...)...)
}

func parseErrors(t *testing.T, src string, getenv func(string) string) Errors {
	t.Helper()
	_, err := ParseWithEnv([]byte(src), testFile, getenv)
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %T is not Errors: %v", err, err)
	}
	return es
}

func mustParse(t *testing.T, src, path string, getenv func(string) string) *Config {
	t.Helper()
	c, err := ParseWithEnv([]byte(src), path, getenv)
	if err != nil {
		t.Fatalf("unexpected errors:\n%v", err)
	}
	return c
}

func TestExampleFromDesignLoads(t *testing.T) {
	path := filepath.Join("testdata", "example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, string(data), path, noEnv)
	r := c.Rollup("orders_daily_by_status")
	if r == nil {
		t.Fatal("rollup orders_daily_by_status missing")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"dsn", c.Warehouse.DSN, "postgres://pgrollup@db:5432/shop"},
		{"tables", len(c.Tables), 1},
		{"table line", c.Tables[0].Line, 28},
		{"join line", c.Tables[0].Joins[0].Line, 30},
		{"join type", c.Tables[0].Joins[0].Type, JoinLeft},
		{"rollup line", r.Line, 35},
		{"dimensions", r.Dimensions, []string{"status", "customers.country"}},
		{"granularity", r.Granularity, Day},
		{"partition", r.PartitionGranularity, Month},
		{"measures", len(r.Measures), 6},
		{"max_rows", r.MaxRows, int64(1000000)},
		{"every", r.Refresh.Every.Std(), time.Hour},
		{"incremental", r.Refresh.Incremental, true},
		{"update_window", r.Refresh.UpdateWindow.Std(), 72 * time.Hour},
		{"refresh timezone defaults to build_timezone", r.Refresh.Timezone, "UTC"},
		{"build_range end", r.BuildRange.End, "SELECT now()"},
		{"max_staleness empty is zero", c.Routing.MaxStaleness, Duration(0)},
		{"path", c.Path, path},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(path, []byte(withRollup("    dimensions: [status]")), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Rollup("r") == nil || c.Path != path {
		t.Errorf("Load returned %+v", c)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "read config") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a wrapped not-exist error", err)
	}
}

func TestDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc")
	c := mustParse(t, lines("warehouse:", "  dsn: postgres://svc@db/shop"), filepath.Join(dir, "p.yaml"), noEnv)
	want := expectedDefaults(dir)
	want.Warehouse.DSN = "postgres://svc@db/shop"
	want.Path = filepath.Join(dir, "p.yaml")
	c.src = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestDefaultWithoutFile(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := defaults(), expectedDefaults(wd); !reflect.DeepEqual(got, want) {
		t.Errorf("defaults():\n got %+v\nwant %+v", got, want)
	}
	c := defaults()
	var es Errors
	if err := c.Validate(); !errors.As(err, &es) || len(es) != 1 || es[0].Field != "warehouse.dsn" {
		t.Errorf("defaults().Validate() = %v, want only the missing DSN", err)
	}
	if es[0].Error() != "<config>: warehouse.dsn: "+es[0].Msg {
		t.Errorf("error without a file reads %q", es[0].Error())
	}
	c.Warehouse.DSN = "postgres://svc@db/shop"
	if err := c.Validate(); err != nil {
		t.Errorf("defaults() with a DSN does not validate: %v", err)
	}
	r := Rollup{Name: "r", Table: "public.orders", Measures: []string{"count(*)"}}
	c.Rollups = []Rollup{r, r}
	want := `<config>: rollups[1].name: duplicate rollup name "r" (first at rollups[0])`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
}

func expectedDefaults(base string) *Config {
	data := filepath.Join(base, "data")
	return &Config{
		Listen:  "127.0.0.1:7432",
		DataDir: data,
		Storage: Storage{URL: "file://" + filepath.Join(data, "rollups"), S3: S3{Region: "us-east-1"}},
		Worker:  Worker{CacheDir: filepath.Join(data, "cache"), CacheMaxBytes: 10 << 30, DuckDBMemoryLimit: 2 << 30, Concurrency: 8},
		Routing: Routing{WorkerTimeout: Duration(5 * time.Second), PrivilegeCacheTTL: Duration(30 * time.Second), ResultCacheBytes: 64 * MB, FinishMaxRows: 100_000,
			VerifyFraction: 0.01, VerifyMaxPerMinute: 60, AnswerOn: "auto"},
		Auth:            Auth{CleartextWithoutTLS: "loopback", OutageLogins: true, Refresh: Duration(time.Minute)},
		MaxMessageBytes: 64 << 20,
		EventLoop:       true,
		SchedPolicy:     "batch",
		Limits:          Limits{ParseMaxBytes: 1 << 20, ParseMaxDepth: 500, ParseMaxTokens: 100000},
		BuildTimezone:   "UTC",
		Admin:           Admin{Listen: "127.0.0.1:7480"},
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"PGROLLUP_WAREHOUSE_DSN": "postgres://other@warehouse:5433/dw",
		"PGROLLUP_NATS_URL":      "nats://nats:4222",
		"PGROLLUP_S3_ACCESS_KEY": "AKIA123",
		"PGROLLUP_S3_SECRET_KEY": "s3-secret",
		"PGROLLUP_S3_ENDPOINT":   "http://minio:9000",
		"PGROLLUP_ADMIN_TOKEN":   "tok",
		"PGROLLUP_LISTEN":        "0.0.0.0:5432",
		"PGROLLUP_ADMIN_LISTEN":  "0.0.0.0:9090",
		"PGROLLUP_AUTH_DSN":      "postgres://lookup:pw@warehouse/dw",
	}
	c := mustParse(t, withTop("listen: 127.0.0.1:1", "admin: {listen: 127.0.0.1:2, token: file-token}", "auth: {query: 'SELECT * FROM pgrollup.user_lookup($1)'}"), testFile, envOf(env))
	got := map[string]string{
		"PGROLLUP_WAREHOUSE_DSN": c.Warehouse.DSN,
		"PGROLLUP_NATS_URL":      c.NATS.URL,
		"PGROLLUP_S3_ACCESS_KEY": c.Storage.S3.AccessKey,
		"PGROLLUP_S3_SECRET_KEY": c.Storage.S3.SecretKey,
		"PGROLLUP_S3_ENDPOINT":   c.Storage.S3.Endpoint,
		"PGROLLUP_ADMIN_TOKEN":   c.Admin.Token,
		"PGROLLUP_LISTEN":        c.Listen,
		"PGROLLUP_ADMIN_LISTEN":  c.Admin.Listen,
		"PGROLLUP_AUTH_DSN":      c.Auth.DSN,
	}
	if !reflect.DeepEqual(got, env) {
		t.Errorf("overrides not applied:\n got %v\nwant %v", got, env)
	}

	c = mustParse(t, withTop("admin: {token: file-token}"), testFile, envOf(map[string]string{"PGROLLUP_ADMIN_TOKEN": ""}))
	if c.Admin.Token != "file-token" {
		t.Errorf("an empty variable replaced the file's token: %q", c.Admin.Token)
	}

	// The file may leave the DSN out entirely when the environment supplies it.
	c = mustParse(t, lines("listen: 127.0.0.1:7432"), testFile, envOf(map[string]string{"PGROLLUP_WAREHOUSE_DSN": "postgres://svc@db/shop"}))
	if c.Warehouse.DSN != "postgres://svc@db/shop" {
		t.Errorf("DSN from environment = %q", c.Warehouse.DSN)
	}
}

func TestEnvOverrideErrorsNameTheVariable(t *testing.T) {
	es := parseErrors(t, withTop(), envOf(map[string]string{
		"PGROLLUP_WAREHOUSE_DSN": "postgres://svc@db:notaport/shop",
		"PGROLLUP_LISTEN":        "nowhere",
	}))
	want := []string{
		`t.yaml: listen: invalid address "nowhere": want host:port, e.g. 127.0.0.1:7432 (set by PGROLLUP_LISTEN)`,
		"t.yaml: warehouse.dsn: invalid connection string: invalid port (set by PGROLLUP_WAREHOUSE_DSN)",
	}
	if got := strings.Split(es.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}

func TestRelativePaths(t *testing.T) {
	root := t.TempDir()
	src := withTop(
		"data_dir: ./state",
		"storage: {url: file://rollups}",
		"worker: {cache_dir: ../cache}",
		"tls: {cert_file: certs/server.crt, key_file: /etc/pgrollup/server.key}",
	)
	conf := filepath.Join(root, "conf")
	c := mustParse(t, src, filepath.Join(conf, "pgrollup.yaml"), noEnv)
	checks := []struct{ name, got, want string }{
		{"data_dir", c.DataDir, filepath.Join(conf, "state")},
		{"storage.url", c.Storage.URL, "file://" + filepath.Join(conf, "rollups")},
		{"cache_dir", c.Worker.CacheDir, filepath.Join(root, "cache")},
		{"cert_file", c.TLS.CertFile, filepath.Join(conf, "certs", "server.crt")},
		{"key_file", c.TLS.KeyFile, "/etc/pgrollup/server.key"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if dir, ok := c.Storage.LocalDir(); !ok || dir != filepath.Join(conf, "rollups") {
		t.Errorf("LocalDir() = %q, %v", dir, ok)
	}

	// Derived defaults follow an absolute data_dir; s3 URLs are left alone.
	c = mustParse(t, withTop("data_dir: /var/lib/pgrollup"), filepath.Join(conf, "p.yaml"), noEnv)
	if c.Storage.URL != "file:///var/lib/pgrollup/rollups" || c.Worker.CacheDir != "/var/lib/pgrollup/cache" {
		t.Errorf("derived paths: storage %q cache %q", c.Storage.URL, c.Worker.CacheDir)
	}
	c = mustParse(t, withTop("storage: {url: s3://bucket/some/prefix/}"), filepath.Join(conf, "p.yaml"), noEnv)
	if b, p, ok := c.Storage.S3Location(); c.Storage.URL != "s3://bucket/some/prefix/" || b != "bucket" || p != "some/prefix" || !ok {
		t.Errorf("s3 URL %q -> %q %q %v", c.Storage.URL, b, p, ok)
	}

	// A relative config path is anchored at the working directory.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c = mustParse(t, withTop(), filepath.Join("conf", "p.yaml"), noEnv)
	if want := filepath.Join(wd, "conf", "data"); c.DataDir != want {
		t.Errorf("data_dir = %q, want %q", c.DataDir, want)
	}
}

type errCase struct {
	name  string
	yaml  string
	line  int
	field string
	msg   string // must occur in the message
}

func TestValidationErrors(t *testing.T) {
	cases := []errCase{
		// Structure and types.
		{"unknown key", withTop("listn: 127.0.0.1:7432"), 8, "listn", "unknown key (did you mean listen?)"},
		{"unknown nested key", withTop("worker:", "  concurency: 4"), 9, "worker.concurency", "unknown key (did you mean concurrency?)"},
		{"unknown rollup key", withRollup("    granularty: day"), 12, "rollups[0].granularty", "did you mean granularity?"},
		{"unknown key without suggestion", withTop("colour: blue"), 8, "colour", "unknown key"},
		{"duplicate key", withTop("listen: 127.0.0.1:1", "listen: 127.0.0.1:2"), 9, "listen", "duplicate key (first set at line 8)"},
		{"integer expected", withTop("worker:", "  concurrency: many"), 9, "worker.concurrency", `want an integer, got "many"`},
		{"bool expected", withTop("routing:", "  rollup_only: sometimes"), 9, "routing.rollup_only", `want true or false, got "sometimes"`},
		{"mapping expected", withTop("worker: 8"), 8, "worker", "want a mapping, got a number"},
		{"list expected", withRollup("    dimensions: status"), 12, "rollups[0].dimensions", "want a list, got a string"},
		{"string expected", withTop("listen: [a, b]"), 8, "listen", "want a string, got a list"},
		{"rollup entry not a mapping", head + lines("rollups:", "  - just_a_name"), 9, "rollups[0]", "want a mapping, got a string"},
		{"yaml syntax", lines("listen: 1", "  bad: 2"), 2, "", "invalid YAML: mapping values are not allowed in this context"},
		{"two documents", lines("listen: 127.0.0.1:1", "---", "listen: 127.0.0.1:2"), 2, "", "only one YAML document is allowed"},
		{"root not a mapping", lines("- a"), 1, "", "the config must be a mapping of settings, got a list"},

		// Top-level settings.
		{"missing dsn", lines("listen: 127.0.0.1:7432"), 1, "warehouse.dsn", "required"},
		{"empty dsn", lines("warehouse:", `  dsn: ""`), 2, "warehouse.dsn", "required"},
		{"bad dsn port", lines("warehouse:", "  dsn: postgres://svc@db:notaport/shop"), 2, "warehouse.dsn", "invalid connection string: invalid port"},
		{"bad dsn sslmode", lines("warehouse:", "  dsn: host=db sslmode=sometimes"), 2, "warehouse.dsn", "sslmode is invalid"},
		{"bad dsn keyword syntax", lines("warehouse:", "  dsn: not a dsn"), 2, "warehouse.dsn", "invalid connection string"},
		{"listen without port", withTop("listen: localhost"), 8, "listen", `invalid address "localhost"`},
		{"listen port range", withTop("listen: 127.0.0.1:99999"), 8, "listen", `invalid port "99999"`},
		{"admin listen port", withTop("admin:", `  listen: ":http"`), 9, "admin.listen", `invalid port "http"`},
		{"storage scheme", withTop("storage:", "  url: gs://bucket/rollups"), 9, "storage.url", "unsupported storage URL (want file://path or s3://bucket/prefix)"},
		{"storage plain path", withTop("storage:", "  url: /srv/rollups"), 9, "storage.url", "unsupported storage URL"},
		{"s3 without bucket", withTop("storage:", "  url: s3://"), 9, "storage.url", "s3:// needs a bucket"},
		{"file without path", withTop("storage:", "  url: file://"), 9, "storage.url", "file:// needs a directory"},
		{"s3 endpoint", withTop("storage:", "  s3:", "    endpoint: minio:9000"), 10, "storage.s3.endpoint", "want an http:// or https:// URL"},
		{"concurrency zero", withTop("worker:", "  concurrency: 0"), 9, "worker.concurrency", "must be at least 1, got 0"},
		{"size unit", withTop("worker:", "  cache_max_bytes: 10 parsecs"), 9, "worker.cache_max_bytes", `unknown unit "parsecs"`},
		{"size zero", withTop("worker:", "  duckdb_memory_limit: 0"), 9, "worker.duckdb_memory_limit", "must be greater than zero"},
		{"size negative", withTop("max_message_bytes: -5MB"), 8, "max_message_bytes", `invalid size "-5MB"`},
		{"timeout zero", withTop("routing:", "  worker_timeout: 0s"), 9, "routing.worker_timeout", "must be greater than zero"},
		{"verify fraction above 1", withTop("routing:", "  verify_fraction: 1.5"), 9, "routing.verify_fraction", "must be from 0 to 1, got 1.5"},
		{"verify fraction negative", withTop("routing:", "  verify_fraction: -0.1"), 9, "routing.verify_fraction", "must be from 0 to 1"},
		{"verify fraction text", withTop("routing:", "  verify_fraction: often"), 9, "routing.verify_fraction", `want a number, got "often"`},
		{"verify rate zero", withTop("routing:", "  verify_max_per_minute: 0"), 9, "routing.verify_max_per_minute", "must be 1 to 100000, got 0"},
		{"duration without unit", withTop("routing:", "  worker_timeout: 30"), 9, "routing.worker_timeout", "duration 30 needs a unit"},
		{"duration negative", withTop("routing:", "  max_staleness: -2h"), 9, "routing.max_staleness", "must not be negative, got -2h"},
		{"duration unit", withTop("routing:", "  privilege_cache_ttl: 3 fortnights"), 9, "routing.privilege_cache_ttl", `unknown unit "fortnights"`},
		{"duration months", withTop("routing:", "  max_staleness: 1 month"), 9, "routing.max_staleness", "months and years have no fixed length"},
		{"duration mapping", withTop("routing:", "  max_staleness: {hours: 2}"), 9, "routing.max_staleness", "want a duration"},
		{"cert without key", withTop("tls:", "  cert_file: server.crt"), 9, "tls.cert_file", "set without tls.key_file"},
		{"key without cert", withTop("tls: {key_file: server.key}"), 8, "tls.key_file", "set without tls.cert_file"},
		{"cleartext policy", withTop("auth:", "  cleartext_without_tls: sometimes"), 9, "auth.cleartext_without_tls", `unknown value "sometimes" (want never, loopback or always)`},
		{"sched policy", withTop("sched_policy: fifo"), 8, "sched_policy", `unknown value "fifo" (want batch or normal)`},
		{"answer on", withTop("routing:", "  answer_on: everywhere"), 9, "routing.answer_on", `unknown value "everywhere" (want auto, local or workers)`},
		{"proxy protocol trusted", withTop("proxy_protocol:", "  trusted: [10.0.0.0/8, balancer]"), 9, "proxy_protocol.trusted[1]", `want a CIDR prefix such as 10.0.0.0/8 or an address, got "balancer"`},
		{"auth query syntax", withTop("auth:", "  query: SELECT usename passwd FROM", "  dsn: postgres://lookup@db/shop"), 9, "auth.query", "cannot parse"},
		{"auth query not a select", withTop("auth:", "  query: DELETE FROM pg_authid WHERE rolname = $1"), 9, "auth.query", "is not a single SELECT statement"},
		{"auth query columns", withTop("auth:", "  query: SELECT rolpassword FROM pg_authid WHERE rolname = $1"), 9, "auth.query", "must return two columns"},
		{"auth query without $1", withTop("auth:", "  query: SELECT rolname, rolpassword FROM pg_authid"), 9, "auth.query", "must take the role name as $1"},
		{"auth query with $2", withTop("auth:", "  query: SELECT rolname, rolpassword FROM pg_authid WHERE rolname = $1 AND $2"), 9, "auth.query", "and no other parameter"},
		{"auth query two statements", withTop("auth:", "  query: SELECT 1, 2 WHERE $1 = ''; SELECT 3"), 9, "auth.query", "is not a single SELECT statement"},
		{"auth dsn without query", withTop("auth:", "  dsn: postgres://lookup@db/shop"), 9, "auth.dsn", "set without auth.query"},
		{"auth dsn", withTop("auth:", "  query: SELECT * FROM pgrollup.user_lookup($1)", "  dsn: postgres://lookup@db:notaport/shop"), 10, "auth.dsn", "invalid connection string: invalid port"},
		{"auth refresh", withTop("auth:", "  refresh: 0s"), 9, "auth.refresh", "must be greater than zero"},
		{"build timezone", withTop("build_timezone: Mars/Olympus_Mons"), 8, "build_timezone", `unknown time zone "Mars/Olympus_Mons"`},
		{"build timezone Local", withTop("build_timezone: Local"), 8, "build_timezone", "Local is not a zone name Postgres knows"},
		{"parse bytes zero", withTop("limits:", "  parse_max_bytes: 0"), 9, "limits.parse_max_bytes", "must be greater than zero and at most 1GB, got 0B"},
		{"parse bytes unit", withTop("limits:", "  parse_max_bytes: 2 pages"), 9, "limits.parse_max_bytes", `unknown unit "pages"`},
		{"parse depth zero", withTop("limits:", "  parse_max_depth: 0"), 9, "limits.parse_max_depth", "must be from 1 to 5000 (deeper statements crash the SQL parser), got 0"},
		{"parse depth too deep", withTop("limits: {parse_max_depth: 30000}"), 8, "limits.parse_max_depth", "must be from 1 to 5000"},
		{"parse tokens negative", withTop("limits:", "  parse_max_tokens: -1"), 9, "limits.parse_max_tokens", "must be from 1 to 10000000, got -1"},
		{"parse limits key", withTop("limits:", "  parse_max_dept: 10"), 9, "limits.parse_max_dept", "unknown key (did you mean parse_max_depth?)"},

		// Tables and joins.
		{"table name three parts", withTable("db.public.orders", "public.customers", "customers.id > 0"), 4, "tables[0].name", `invalid table name "db.public.orders": want table or schema.table`},
		{"table name digit", withTable("1orders", "public.customers", "customers.id > 0"), 4, "tables[0].name", "invalid table name"},
		{"table name missing", withTable("", "public.customers", "customers.id > 0"), 4, "tables[0].name", "required"},
		{"table declared twice", withTable("public.orders", "public.customers", "orders.customer_id = customers.id", "  - name: Public.Orders"), 8, "tables[1].name", "table Public.Orders is declared twice (first at line 4)"},
		{"join table name", withTable("public.orders", "customers x", "orders.customer_id > 0"), 6, "tables[0].joins[0].table", `invalid table name "customers x"`},
		{"join table twice", withTable("public.orders", "public.customers", "orders.customer_id = customers.id", "      - table: customers", "        on: orders.customer_id = customers.id"), 8, "tables[0].joins[1].table", "already part of this table's joins"},
		{"join on syntax", withTable("public.orders", "public.customers", "orders.customer_id ="), 7, "tables[0].joins[0].on", `cannot parse "orders.customer_id =": syntax error at end of input`},
		{"join on arithmetic", withTable("public.orders", "public.customers", "orders.customer_id + customers.id"), 7, "tables[0].joins[0].on", "an arithmetic expression (+) is not a condition"},
		{"join on unknown table", withTable("public.orders", "public.customers", "orders.customer_id = clients.id"), 7, "tables[0].joins[0].on", `unknown table "clients" in clients.id (want one of: public.orders, public.customers)`},
		{"join on subquery", withTable("public.orders", "public.customers", "orders.customer_id IN (SELECT id FROM customers)"), 7, "tables[0].joins[0].on", "subqueries are not allowed in a condition"},
		{"join on second statement", withTable("public.orders", "public.customers", "orders.customer_id = customers.id; DROP TABLE orders"), 7, "tables[0].joins[0].on", "is not a single SQL expression"},
		{"join on missing", withTable("public.orders", "public.customers", ""), 7, "tables[0].joins[0].on", "required: the join condition"},
		{"join type", withTable("public.orders", "public.customers", "orders.customer_id = customers.id", "        type: outer"), 8, "tables[0].joins[0].type", `unknown join type "outer" (want left or inner)`},
		{"join relationship", withTable("public.orders", "public.customers", "orders.customer_id = customers.id", "        relationship: many_to_many"), 8, "tables[0].joins[0].relationship", `unknown relationship "many_to_many" (want many_to_one or one_to_one)`},

		// Rollup names and tables.
		{"rollup name digit", rollupYAML("9lives", "public.orders"), 9, "rollups[0].name", `invalid name "9lives": use letters, digits and underscores, not starting with a digit`},
		{"rollup name dash", rollupYAML("orders-daily", "public.orders"), 9, "rollups[0].name", `invalid name "orders-daily"`},
		{"rollup name missing", rollupYAML("", "public.orders"), 9, "rollups[0].name", "required"},
		{"rollup name duplicate", withRollup("  - name: R", "    table: public.orders", "    measures: [sum(amount)]"), 12, "rollups[1].name", `duplicate rollup name "R" (first at line 9)`},
		{"rollup table syntax", rollupYAML("r", "public..orders"), 10, "rollups[0].table", `invalid table name "public..orders"`},
		{"rollup table missing", rollupYAML("r", ""), 10, "rollups[0].table", "required"},
		{"column of a table not joined", rollupYAML("r", "public.payments", "    dimensions: [customers.country]"), 12, "rollups[0].dimensions[0]", `unknown table "customers" in customers.country (want one of: public.payments)`},
		{"rollup stores nothing", head + lines("rollups:", "  - name: r", "    table: public.orders"), 9, "rollups[0]", "declares no dimensions, time_dimension or measures"},

		// Time.
		{"unknown granularity", withRollup("    time_dimension: created_at", "    granularity: fortnight"), 13, "rollups[0].granularity", `unknown granularity "fortnight" (want hour, day, week, month, quarter or year)`},
		{"time dimension without granularity", withRollup("    time_dimension: created_at"), 12, "rollups[0].time_dimension", "needs a granularity"},
		{"granularity without time dimension", withRollup("    granularity: day"), 12, "rollups[0].granularity", "needs a time_dimension"},
		{"time dimension expression", withRollup("    time_dimension: date_trunc('day', created_at)", "    granularity: day"), 12, "rollups[0].time_dimension", "is not a column reference"},
		{"unknown partition granularity", withRollup("    time_dimension: created_at", "    granularity: day", "    partition_granularity: decade"), 14, "rollups[0].partition_granularity", `unknown granularity "decade"`},
		{"partition finer than granularity", withRollup("    time_dimension: created_at", "    granularity: month", "    partition_granularity: day"), 14, "rollups[0].partition_granularity", "day partitions cannot hold whole month buckets (want month, quarter, year)"},
		{"month partitions split weeks", withRollup("    time_dimension: created_at", "    granularity: week", "    partition_granularity: month"), 14, "rollups[0].partition_granularity", "month partitions cannot hold whole week buckets (want week)"},
		{"partition without time dimension", withRollup("    partition_granularity: month"), 12, "rollups[0].partition_granularity", "needs a time_dimension"},

		// Measures.
		{"measure unknown aggregate", withMeasure("median(amount)"), 13, "rollups[0].measures[1]", "median is not a supported aggregate (want sum, count, avg, min or max)"},
		{"measure other aggregate", withMeasure("string_agg(status, ',')"), 13, "rollups[0].measures[1]", "string_agg is not a supported aggregate"},
		{"measure schema", withMeasure("myschema.sum(amount)"), 13, "rollups[0].measures[1]", "myschema.sum is not a supported aggregate"},
		{"measure ratio", withMeasure("sum(amount) / count(*)"), 13, "rollups[0].measures[1]", "is not an aggregate call"},
		{"measure cast", withMeasure("sum(amount)::numeric"), 13, "rollups[0].measures[1]", "is not an aggregate call"},
		{"measure column", withMeasure("amount"), 13, "rollups[0].measures[1]", "is not an aggregate call"},
		{"measure window", withMeasure("sum(amount) OVER ()"), 13, "rollups[0].measures[1]", "window functions (OVER) are not measures"},
		{"measure nested", withMeasure("sum(max(amount))"), 13, "rollups[0].measures[1]", "aggregate max is not allowed inside a measure"},
		{"measure distinct sum", withMeasure("sum(DISTINCT amount)"), 13, "rollups[0].measures[1]", "DISTINCT is only supported in count"},
		{"measure star", withMeasure("sum(*)"), 13, "rollups[0].measures[1]", "sum(*) is not valid; only count accepts *"},
		{"measure order by", withMeasure("max(amount ORDER BY amount)"), 13, "rollups[0].measures[1]", "ORDER BY inside an aggregate"},
		{"measure two arguments", withMeasure("max(amount, tax)"), 13, "rollups[0].measures[1]", "max takes exactly one argument"},
		{"measure filter not boolean", withMeasure("count(*) FILTER (WHERE amount + 1)"), 13, "rollups[0].measures[1]", "FILTER: an arithmetic expression (+) is not a condition"},
		{"measure filter subquery", withMeasure("count(*) FILTER (WHERE status IN (SELECT s FROM x))"), 13, "rollups[0].measures[1]", "FILTER: subqueries are not allowed in FILTER"},
		{"measure syntax", withMeasure("sum(amount"), 13, "rollups[0].measures[1]", `cannot parse "sum(amount": syntax error at end of input`},
		{"measure alias", withMeasure("sum(amount) AS total"), 13, "rollups[0].measures[1]", `unexpected "total"`},
		{"measure from clause", withMeasure("sum(amount) FROM orders"), 13, "rollups[0].measures[1]", "is not a single SQL expression"},
		{"measure second statement", withMeasure("sum(amount); DROP TABLE orders"), 13, "rollups[0].measures[1]", "is not a single SQL expression"},
		{"measure two expressions", withMeasure("sum(amount), count(*)"), 13, "rollups[0].measures[1]", "is not a single SQL expression"},
		{"measure unknown table", withMeasure("sum(suppliers.cost)"), 13, "rollups[0].measures[1]", `unknown table "suppliers" in suppliers.cost`},
		{"measure duplicate", withMeasure("COUNT( * )"), 13, "rollups[0].measures[1]", `duplicate measure "COUNT( * )"`},
		{"measure empty", withMeasure(""), 13, "rollups[0].measures[1]", "empty"},

		// Dimensions.
		{"dimension function", withItem("dimensions", "lower(status)"), 13, "rollups[0].dimensions[0]", `"lower(status)" is not a column reference (want column or table.column)`},
		{"dimension star", withItem("dimensions", "orders.*"), 13, "rollups[0].dimensions[0]", "is not a column reference"},
		{"dimension too qualified", withItem("dimensions", "a.b.c.d"), 13, "rollups[0].dimensions[0]", "is not a column reference"},
		{"dimension unknown table", withItem("dimensions", "suppliers.name"), 13, "rollups[0].dimensions[0]", `unknown table "suppliers" in suppliers.name (want one of: public.orders, public.customers)`},
		{"dimension list in one item", withItem("dimensions", "status, region"), 13, "rollups[0].dimensions[0]", "is not a single SQL expression"},
		{"dimension duplicate", withRollup("    dimensions: [status, STATUS]"), 12, "rollups[0].dimensions[1]", `duplicate dimension "STATUS"`},

		// Filters.
		{"filter syntax", withItem("filters", "status <>"), 13, "rollups[0].filters[0]", "cannot parse"},
		{"filter arithmetic", withItem("filters", "amount + 1"), 13, "rollups[0].filters[0]", "an arithmetic expression (+) is not a condition"},
		{"filter number", withItem("filters", "42"), 13, "rollups[0].filters[0]", "a number is not a condition"},
		{"filter cast", withItem("filters", "amount::int"), 13, "rollups[0].filters[0]", "a value cast to int4 is not a condition"},
		{"filter aggregate", withItem("filters", "sum(amount) > 0"), 13, "rollups[0].filters[0]", "aggregate sum is not allowed in a condition"},
		{"filter window", withItem("filters", "rank() OVER () = 1"), 13, "rollups[0].filters[0]", "window functions are not allowed in a condition"},
		{"filter parameter", withItem("filters", "status = $1"), 13, "rollups[0].filters[0]", "parameters ($n) are not allowed"},
		{"filter trailing clause", withItem("filters", "status = 'x' ORDER BY 1"), 13, "rollups[0].filters[0]", "is not a single SQL expression"},
		{"filter unknown table", withItem("filters", "suppliers.active"), 13, "rollups[0].filters[0]", `unknown table "suppliers"`},
		{"max_rows negative", withRollup("    max_rows: -1"), 12, "rollups[0].max_rows", "must not be negative, got -1"},

		// Refresh.
		{"every negative", withRollup("    refresh:", "      every: -1h"), 13, "rollups[0].refresh.every", "must not be negative"},
		{"every unit", withRollup("    refresh:", "      every: 1 fortnight"), 13, "rollups[0].refresh.every", `unknown unit "fortnight"`},
		{"cron range", withRollup("    refresh:", `      cron: "61 * * * *"`), 13, "rollups[0].refresh.cron", `invalid cron schedule "61 * * * *"`},
		{"cron four fields", withRollup("    refresh:", `      cron: "0 6 * *"`), 13, "rollups[0].refresh.cron", "invalid cron schedule"},
		{"cron seconds field", withRollup("    refresh:", `      cron: "0 0 6 * * *"`), 13, "rollups[0].refresh.cron", "invalid cron schedule"},
		{"cron descriptor", withRollup("    refresh:", `      cron: "@fortnightly"`), 13, "rollups[0].refresh.cron", "invalid cron schedule"},
		{"cron inline zone", withRollup("    refresh:", `      cron: "TZ=Europe/Berlin 0 6 * * *"`), 13, "rollups[0].refresh.cron", "set the zone with refresh.timezone"},
		{"refresh timezone", withRollup("    refresh:", `      cron: "0 6 * * *"`, "      timezone: Nowhere/Land"), 14, "rollups[0].refresh.timezone", `unknown time zone "Nowhere/Land"`},
		{"refresh sql not select", withRollup("    refresh:", "      sql: DELETE FROM orders"), 13, "rollups[0].refresh.sql", `"DELETE FROM orders" is not a single SELECT statement`},
		{"refresh sql two statements", withRollup("    refresh:", "      sql: SELECT 1; SELECT 2"), 13, "rollups[0].refresh.sql", "is not a single SELECT statement"},
		{"refresh sql into", withRollup("    refresh:", "      sql: SELECT * INTO t FROM orders"), 13, "rollups[0].refresh.sql", "SELECT INTO is not allowed"},
		{"refresh sql writes", withRollup("    refresh:", "      sql: WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d"), 13, "rollups[0].refresh.sql", "must not modify data"},
		{"refresh sql locks", withRollup("    refresh:", "      sql: SELECT max(updated_at) FROM orders FOR UPDATE"), 13, "rollups[0].refresh.sql", "must not lock rows"},
		{"refresh sql syntax", withRollup("    refresh:", "      sql: SELEC max(updated_at) FROM orders"), 13, "rollups[0].refresh.sql", "cannot parse"},
		{"incremental without partitions", withRollup("    refresh:", "      incremental: true"), 13, "rollups[0].refresh.incremental", "needs partition_granularity"},
		{"update window without partitions", withRollup("    refresh:", "      update_window: 3 days"), 13, "rollups[0].refresh.update_window", "needs partition_granularity"},
		{"update window in months", withRollup("    time_dimension: created_at", "    granularity: day", "    partition_granularity: month", "    refresh:", "      update_window: 1 month"), 16, "rollups[0].refresh.update_window", "months and years have no fixed length"},

		// Build range.
		{"build range without end", withRollup("    time_dimension: created_at", "    granularity: day", "    build_range:", "      start: SELECT now() - interval '1 year'"), 14, "rollups[0].build_range.end", "required: a SELECT returning one timestamp"},
		{"build range two columns", withRollup("    time_dimension: created_at", "    granularity: day", "    build_range:", "      start: SELECT now(), 1", "      end: SELECT now()"), 15, "rollups[0].build_range.start", "must return exactly one column"},
		{"build range expression", withRollup("    time_dimension: created_at", "    granularity: day", "    build_range:", "      start: SELECT now()", "      end: now()"), 16, "rollups[0].build_range.end", `cannot parse "now()"`},
		{"build range without time dimension", withRollup("    build_range: {start: SELECT now(), end: SELECT now()}"), 12, "rollups[0].build_range", "needs a time_dimension"},

		// Lambda.
		{"lambda on an expression", withRollup("    time_dimension: created_at", "    granularity: day", "    lambda:", "      column: id + 1"), 15, "rollups[0].lambda.column", `must be the rollup's time_dimension "created_at" or an id column`},
		{"lambda on a qualified id", withRollup("    lambda:", "      column: orders.id"), 13, "rollups[0].lambda.column", "named without a qualifier"},
		{"lambda without column", withRollup("    lambda:", "      late_ids: 5"), 12, "rollups[0].lambda.column", "required"},
		{"lambda id with late window", withRollup("    lambda:", "      column: id", "      late_window: 1h"), 14, "rollups[0].lambda.late_window", `for the id column "id", set late_ids`},
		{"lambda time with late ids", withRollup("    time_dimension: created_at", "    granularity: day", "    lambda:", "      column: created_at", "      late_ids: 100"), 16, "rollups[0].lambda.late_ids", "for a lambda on the time column"},
		{"lambda late ids negative", withRollup("    lambda:", "      column: id", "      late_ids: -1"), 14, "rollups[0].lambda.late_ids", "must not be negative, got -1"},
		{"lambda late window negative", withRollup("    time_dimension: created_at", "    granularity: day", "    lambda: {column: created_at, late_window: -1h}"), 14, "rollups[0].lambda.late_window", "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			es := parseErrors(t, tc.yaml, noEnv)
			if len(es) != 1 {
				t.Fatalf("want exactly one error, got %d:\n%v\n--- input ---\n%s", len(es), es, tc.yaml)
			}
			e := es[0]
			if e.File != testFile || e.Line != tc.line || e.Field != tc.field || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got  %s\nwant %s:%d: %s: ...%s...\n--- input ---\n%s", e, testFile, tc.line, tc.field, tc.msg, tc.yaml)
			}
			want := fmt.Sprintf("%s:%d: %s: %s", testFile, tc.line, tc.field, e.Msg)
			if tc.field == "" {
				want = fmt.Sprintf("%s:%d: %s", testFile, tc.line, e.Msg)
			}
			if e.Error() != want || es.Error() != want {
				t.Errorf("Error() = %q, want %q", es.Error(), want)
			}
		})
	}
}

func TestErrorTextIsWhatUsersSee(t *testing.T) {
	src := withRollup(
		"    time_dimension: created_at", // 12
		"    granularity: fortnight",     // 13
		"  - name: r2",                   // 14
		"    table: public.orders",       // 15
		"    dimensions: [lower(x)]",     // 16
		"    max_rows: -5",               // 17
	) + lines("listen: nowhere", "bogus: 1") // 18, 19
	_, err := ParseWithEnv([]byte(src), "shop.yaml", noEnv)
	want := strings.Join([]string{
		`shop.yaml:13: rollups[0].granularity: unknown granularity "fortnight" (want hour, day, week, month, quarter or year)`,
		`shop.yaml:16: rollups[1].dimensions[0]: "lower(x)" is not a column reference (want column or table.column)`,
		`shop.yaml:17: rollups[1].max_rows: must not be negative, got -5`,
		`shop.yaml:18: listen: invalid address "nowhere": want host:port, e.g. 127.0.0.1:7432`,
		`shop.yaml:19: bogus: unknown key`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("all errors, in file order:\n got %v\nwant %s", err, want)
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	const secret = "hunter2-S3cret"
	dsns := []string{
		"postgres://svc:" + secret + "@db:notaport/shop",
		"postgres://svc:" + secret + "@db:5432/shop?sslmode=sometimes",
		"postgres://svc:" + secret + "@db:5432/shop?connect_timeout=soon",
		"postgresql://svc:hunter2%2DS3cret@db:5432/shop%zz",
		"postgres://svc:" + secret + "@db:5432/shop?pool=%zz",
		"postgres://svc@db:notaport/shop?password=" + secret,
		"host=db user=svc password=" + secret + " port=notaport",
		"host=db user=svc password='" + secret + "' sslmode=sometimes",
		"host=db user=svc password=" + secret + " = broken",
	}
	misplaced := lines("warehouse: postgres://svc:" + secret + "@db/shop")
	if text := parseErrors(t, misplaced, noEnv).Error(); strings.Contains(text, "S3cret") || !strings.Contains(text, "warehouse: want a mapping, got a string") {
		t.Errorf("misplaced DSN: %q", text)
	}
	for _, dsn := range dsns {
		fromFile := lines("warehouse:", "  dsn: "+q(dsn), "listen: nowhere")
		fromEnv := lines("listen: nowhere")
		for name, es := range map[string]Errors{
			"file": parseErrors(t, fromFile, noEnv),
			"env":  parseErrors(t, fromEnv, envOf(map[string]string{"PGROLLUP_WAREHOUSE_DSN": dsn})),
		} {
			text := es.Error()
			if !strings.Contains(text, "warehouse.dsn") {
				t.Errorf("%s %q: no DSN error in %q", name, dsn, text)
			}
			if strings.Contains(text, "hunter2") || strings.Contains(text, "S3cret") {
				t.Errorf("%s %q: password in error text %q", name, dsn, text)
			}
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	c := mustParse(t, withTop(), testFile, envOf(map[string]string{
		"PGROLLUP_WAREHOUSE_DSN": "postgres://svc:pw-secret@db/shop",
		"PGROLLUP_S3_SECRET_KEY": "s3-secret",
		"PGROLLUP_ADMIN_TOKEN":   "admin-secret",
	}))
	out := c.String()
	for _, s := range []string{"pw-secret", "s3-secret", "admin-secret"} {
		if strings.Contains(out, s) {
			t.Errorf("String() shows %q:\n%s", s, out)
		}
	}
	if c.Warehouse.DSN != "postgres://svc:pw-secret@db/shop" {
		t.Errorf("Redacted modified the original: %q", c.Warehouse.DSN)
	}
	redacted := []struct{ in, want string }{
		{"postgres://svc:pw@db:5432/shop?sslmode=disable", "postgres://svc:xxxxx@db:5432/shop?sslmode=disable"},
		{"postgres://svc@db/shop?password=pw", "postgres://svc@db/shop?password=xxxxx"},
		{"host=db password='p w' user=svc", "host=db password=xxxxx user=svc"},
		{"postgres://svc:pw@db:bad port/shop", "postgres://xxxxx"},
		{"postgres://svc@db/shop", "postgres://svc@db/shop"},
	}
	for _, r := range redacted {
		if got := RedactDSN(r.in); got != r.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", r.in, got, r.want)
		}
	}
	es := Errors{{File: "f", Line: 1, Field: "x", Msg: "leaked s3-secret and admin-secret"}}.finish(c)
	if strings.Contains(es.Error(), "secret") {
		t.Errorf("finish left a secret in %q", es.Error())
	}
}

func TestValidConfigs(t *testing.T) {
	cases := []struct{ name, yaml string }{
		{"measures", withRollup("    dimensions: [status, orders.region, public.customers.country]",
			"    filters: [\"status <> 'cancelled'\", \"amount > 0 AND customers.country IS NOT NULL\", \"is_test\", \"NOT is_test\"]",
			"  - name: r2",
			"    table: public.orders",
			"    measures:",
			"      - count(*) FILTER (WHERE status = 'paid')",
			"      - count(distinct customer_id)",
			"      - sum(orders.amount * quantity)",
			"      - pg_catalog.sum(amount)",
			"      - max(customers.signup_date)",
			"      - avg(amount::numeric)",
		)},
		{"undeclared table", rollupYAML("r", "public.payments", "    dimensions: [payments.method, method]")},
		{"quoted table name", rollupYAML("r", `"Sales"."Orders"`, `    dimensions: ['"Orders".region']`)},
		{"time", withRollup("    time_dimension: created_at", "    granularity: hour", "    partition_granularity: week",
			"    refresh: {cron: \"@daily\", timezone: Europe/Berlin, incremental: true, update_window: 2 weeks, sql: \"SELECT max(updated_at) FROM public.orders\"}")},
		{"anchors and merge keys", withRollup("    refresh: &hourly {every: 1h}",
			"  - &base",
			"    name: r2",
			"    table: public.orders",
			"    measures: [sum(amount)]",
			"    refresh: *hourly",
			"  - <<: *base",
			"    name: r3",
		)},
		{"s3", withTop("storage: {url: s3://bucket/prefix, s3: {endpoint: http://127.0.0.1:9000, force_path_style: true}}")},
		{"inner one_to_one join", withTable("public.orders", "public.shipments", "shipments.order_id = orders.id", "        type: inner", "        relationship: one_to_one")},
		{"sizes and durations", withTop("max_message_bytes: 1048576", "worker: {cache_max_bytes: 1.5GB, duckdb_memory_limit: 512MiB}", "routing: {worker_timeout: 1h30m, max_staleness: 2 hours, privilege_cache_ttl: 0}")},
		{"empty rollups", withTop("rollups: []")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustParse(t, tc.yaml, testFile, noEnv)
		})
	}
}

func TestMergeKeysOverride(t *testing.T) {
	c := mustParse(t, withRollup("    refresh: &hourly {every: 1h, incremental: false}",
		"  - &base",
		"    name: r2",
		"    table: public.orders",
		"    measures: [sum(amount)]",
		"    refresh: *hourly",
		"  - <<: *base",
		"    name: r3",
		"    refresh: {every: 2h}",
	), testFile, noEnv)
	r3 := c.Rollup("r3")
	if r3 == nil || r3.Table != "public.orders" || r3.Refresh.Every.Std() != 2*time.Hour || !reflect.DeepEqual(r3.Measures, []string{"sum(amount)"}) {
		t.Errorf("r3 = %+v", r3)
	}
	if r2 := c.Rollup("r2"); r2 == nil || r2.Refresh.Every.Std() != time.Hour {
		t.Errorf("r2 = %+v", r2)
	}
}

func TestLookups(t *testing.T) {
	c := mustParse(t, withRollup("    dimensions: [status]"), testFile, noEnv)
	if r := c.Rollup("r"); r == nil || r.Line != 9 {
		t.Errorf("Rollup(r) = %+v", r)
	}
	if c.Rollup("R") != nil || c.Rollup("missing") != nil {
		t.Error("Rollup matched a name that differs")
	}
	for _, name := range []string{"public.orders", "PUBLIC.Orders", `"public"."orders"`} {
		if tb := c.Table(name); tb == nil || tb.Name != "public.orders" || tb.Line != 4 || tb.Joins[0].Line != 6 {
			t.Errorf("Table(%q) = %+v", name, tb)
		}
	}
	for _, name := range []string{"orders", `public."Orders"`, "public.customers"} {
		if tb := c.Table(name); tb != nil {
			t.Errorf("Table(%q) found %q", name, tb.Name)
		}
	}
	if c.BuildLocation() != time.UTC && c.BuildLocation().String() != "UTC" {
		t.Errorf("BuildLocation() = %v", c.BuildLocation())
	}
	if c.TLS.Enabled() {
		t.Error("TLS enabled without files")
	}
}

func TestStringRoundTrips(t *testing.T) {
	path := filepath.Join("testdata", "example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, string(data), path, noEnv)
	again := mustParse(t, c.String(), path, noEnv)
	for _, cfg := range []*Config{c, again} {
		cfg.src = nil
		for i := range cfg.Tables {
			cfg.Tables[i].Line = 0
			for j := range cfg.Tables[i].Joins {
				cfg.Tables[i].Joins[j].Line = 0
			}
		}
		for i := range cfg.Rollups {
			cfg.Rollups[i].Line = 0
		}
	}
	if !reflect.DeepEqual(c, again) {
		t.Errorf("String() does not parse back to the same config:\n%s", c.String())
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"", 0, ""},
		{"0", 0, ""},
		{"90s", 90 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"3 days", 72 * time.Hour, ""},
		{"1 day", 24 * time.Hour, ""},
		{"2 hours", 2 * time.Hour, ""},
		{"1 week", 7 * 24 * time.Hour, ""},
		{"30 minutes", 30 * time.Minute, ""},
		{"30 min", 30 * time.Minute, ""},
		{"1 day 12 hours", 36 * time.Hour, ""},
		{"3d", 72 * time.Hour, ""},
		{"1.5 hours", 90 * time.Minute, ""},
		{"2 Hours", 2 * time.Hour, ""},
		{"500 ms", 500 * time.Millisecond, ""},
		{"-1 day", -24 * time.Hour, ""},
		{"1 month", 0, "no fixed length"},
		{"2 years", 0, "no fixed length"},
		{"3 fortnights", 0, `unknown unit "fortnights"`},
		{"days", 0, "invalid duration"},
		{"1 day and 2 hours", 0, "invalid duration"},
		{"10000000 weeks", 0, "out of range"},
	}
	for _, tc := range cases {
		got, err := ParseDuration(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseDuration(%q) error = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got.Std() != tc.want):
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", tc.in, got.Std(), err, tc.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Second, "1m30s"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{24 * time.Hour, "1 day"},
		{72 * time.Hour, "3 days"},
		{36 * time.Hour, "36h"},
		{1500 * time.Millisecond, "1.5s"},
		{-2 * time.Hour, "-2h"},
	}
	for _, tc := range cases {
		got := Duration(tc.d).String()
		if got != tc.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.d, got, tc.want)
		}
		back, err := ParseDuration(got)
		if err != nil || back.Std() != tc.d {
			t.Errorf("ParseDuration(%q) = %v, %v; does not round-trip", got, back.Std(), err)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"512B", 512, ""},
		{"64MB", 64 << 20, ""},
		{"64 MB", 64 << 20, ""},
		{"64mb", 64 << 20, ""},
		{"10GB", 10 << 30, ""},
		{"512KiB", 512 << 10, ""},
		{"512kB", 512 << 10, ""},
		{"2MiB", 2 << 20, ""},
		{"1.5GB", 3 << 29, ""},
		{"1TB", 1 << 40, ""},
		{"-1MB", 0, "invalid size"},
		{"MB", 0, "invalid size"},
		{"10 parsecs", 0, `unknown unit "parsecs"`},
		{"10PB", 0, `unknown unit "PB"`},
		{"9999999999TB", 0, "out of range"},
		{"99999999999999999999", 0, "out of range"},
	}
	for _, tc := range cases {
		got, err := ParseByteSize(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseByteSize(%q) error = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got.Int64() != tc.want):
			t.Errorf("ParseByteSize(%q) = %d, %v, want %d", tc.in, got.Int64(), err, tc.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	cases := []struct {
		b    ByteSize
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{512 << 10, "512kB"},
		{64 << 20, "64MB"},
		{3 << 29, "1536MB"},
		{10 << 30, "10GB"},
		{1 << 40, "1TB"},
		{1000, "1000B"},
	}
	for _, tc := range cases {
		got := tc.b.String()
		if got != tc.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", tc.b, got, tc.want)
		}
		if back, err := ParseByteSize(got); err != nil || back != tc.b {
			t.Errorf("ParseByteSize(%q) = %d, %v; does not round-trip", got, back, err)
		}
	}
}

func TestGranularityCanRollUpTo(t *testing.T) {
	// Every pair, as a matrix: row = fine, column = coarse (hour day week month quarter year).
	want := map[Granularity]string{
		Hour:    "111111",
		Day:     "011111",
		Week:    "001000",
		Month:   "000111",
		Quarter: "000011",
		Year:    "000001",
	}
	for _, fine := range Granularities() {
		for j, coarse := range Granularities() {
			if got, w := fine.CanRollUpTo(coarse), want[fine][j] == '1'; got != w {
				t.Errorf("%s.CanRollUpTo(%s) = %v, want %v", fine, coarse, got, w)
			}
		}
	}
	if Granularity("fortnight").Valid() || Day.CanRollUpTo("fortnight") || !Quarter.Valid() {
		t.Error("Valid/CanRollUpTo accept an unknown granularity")
	}
}

func TestAliasBombIsBounded(t *testing.T) {
	// 300 rollups aliasing one 1000-column list expand to 300,000 nodes from 15 kB of YAML.
	var b strings.Builder
	b.WriteString(head + "rollups:\n")
	b.WriteString("  - {name: a, table: public.orders, dimensions: &d [" + strings.TrimSuffix(strings.Repeat("status, ", 1000), ", ") + "]}\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  - {name: b%d, table: public.orders, dimensions: *d}\n", i)
	}
	es := parseErrors(t, b.String(), noEnv)
	if len(es) != 1 || !strings.Contains(es[0].Msg, "too many nodes") {
		t.Errorf("alias expansion not bounded: %d errors, first %v", len(es), es[0])
	}
}

func TestParseLimits(t *testing.T) {
	c := mustParse(t, withTop("limits:", "  parse_max_bytes: 64kB", "  parse_max_depth: 100", "  parse_max_tokens: 5000"), testFile, noEnv)
	want := Limits{ParseMaxBytes: 64 * KB, ParseMaxDepth: 100, ParseMaxTokens: 5000}
	if c.Limits != want {
		t.Errorf("limits %+v, want %+v", c.Limits, want)
	}
}
