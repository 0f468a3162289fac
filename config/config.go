package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/internal/parselimit"
)

// Config is the whole pgrollup configuration file (docs/configuration.md).
type Config struct {
	// Path is the file the configuration was loaded from; empty when parsed from memory.
	Path string `yaml:"-"`

	Listen          string        `yaml:"listen"`
	Warehouse       Warehouse     `yaml:"warehouse"`
	NATS            NATS          `yaml:"nats"`
	DataDir         string        `yaml:"data_dir"`
	Storage         Storage       `yaml:"storage"`
	Worker          Worker        `yaml:"worker"`
	Routing         Routing       `yaml:"routing"`
	ProxyProtocol   ProxyProtocol `yaml:"proxy_protocol"`
	TLS             TLS           `yaml:"tls"`
	Auth            Auth          `yaml:"auth"`
	MaxMessageBytes ByteSize      `yaml:"max_message_bytes"`
	// EventLoop serves sessions on plain sockets from one shared event
	// loop instead of a goroutine pair each (Linux).
	EventLoop bool `yaml:"event_loop"`
	// SchedPolicy is the Linux scheduling policy of the proxy's threads:
	// SchedBatch (default) or SchedNormal.
	SchedPolicy   string   `yaml:"sched_policy"`
	Limits        Limits   `yaml:"limits"`
	BuildTimezone string   `yaml:"build_timezone"`
	Admin         Admin    `yaml:"admin"`
	Tables        []Table  `yaml:"tables"`
	Rollups       []Rollup `yaml:"rollups"`

	// src remembers the line of every field so that Validate can name it; nil for a
	// Config assembled in Go.
	src *source
}

// Warehouse is the real Postgres that pgrollup fronts.
type Warehouse struct {
	// DSN is the service account used for builds and privilege checks.
	// Client sessions connect to the same host, port and TLS mode with their own credentials.
	DSN string `yaml:"dsn"`
}

// NATS says where jobs, queries and the catalog travel.
type NATS struct {
	// URL of an external NATS server; empty starts the embedded server.
	URL string `yaml:"url"`
}

// Storage says where rollup Parquet files live.
type Storage struct {
	URL string `yaml:"url"` // file://path or s3://bucket/prefix
	S3  S3     `yaml:"s3"`
}

// S3 holds the S3 (or MinIO, or GCS through HMAC keys) connection settings.
type S3 struct {
	Endpoint       string `yaml:"endpoint"`
	Region         string `yaml:"region"`
	AccessKey      string `yaml:"access_key"`
	SecretKey      string `yaml:"secret_key"`
	ForcePathStyle bool   `yaml:"force_path_style"`
}

// Worker configures rollup builds and rollup query serving.
type Worker struct {
	CacheDir          string   `yaml:"cache_dir"`
	CacheMaxBytes     ByteSize `yaml:"cache_max_bytes"`
	DuckDBMemoryLimit ByteSize `yaml:"duckdb_memory_limit"`
	Concurrency       int      `yaml:"concurrency"`
}

// Routing configures how statements are routed.
type Routing struct {
	RollupOnly        bool     `yaml:"rollup_only"`
	WorkerTimeout     Duration `yaml:"worker_timeout"`
	MaxStaleness      Duration `yaml:"max_staleness"` // zero: no limit
	PrivilegeCacheTTL Duration `yaml:"privilege_cache_ttl"`
	// ResultCacheBytes bounds the answers kept for repeated rollup queries; 0
	// keeps none. A rollup version never changes, so a kept answer is exact.
	ResultCacheBytes ByteSize `yaml:"result_cache_bytes"`
	// FinishMaxRows bounds the rows of an aggregate core answered from a
	// rollup for a statement the warehouse finishes; a larger core passes
	// the statement through unchanged. 0 finishes none.
	FinishMaxRows int `yaml:"finish_max_rows"`
	// VerifyFraction is the share of rollup hits re-run on the warehouse in
	// the background to check them (continuous verification); 0 checks none.
	VerifyFraction float64 `yaml:"verify_fraction"`
	// VerifyMaxPerMinute bounds those checks per proxy; samples beyond it
	// are dropped.
	VerifyMaxPerMinute int `yaml:"verify_max_per_minute"`
	// AnswerOn says who answers rollup queries when nats.url is set: auto
	// (workers that take the query within a short deadline, else this
	// proxy's own DuckDB), local (always this proxy) or workers (only
	// workers; without one the statement goes to the warehouse). Without
	// nats.url the proxy always answers itself.
	AnswerOn string `yaml:"answer_on"`
}

// Who answers rollup queries, for Routing.AnswerOn.
const (
	AnswerAuto    = "auto"
	AnswerLocal   = "local"
	AnswerWorkers = "workers"
)

// ProxyProtocol configures PROXY protocol (v1 and v2) on the client
// listener, as a TCP load balancer such as HAProxy's send-proxy-v2 sends it:
// connections from Trusted addresses must start with a PROXY header, whose
// source address the proxy then takes for the client's. Empty: off.
type ProxyProtocol struct {
	// Trusted are the balancers' addresses, as CIDR prefixes or single
	// addresses; a connection from elsewhere that sends a header is refused.
	Trusted []string `yaml:"trusted,omitempty"`
}

// Prefixes are the Trusted entries as prefixes; a single address is a
// prefix of its full length. A Config from Load has valid entries.
func (p ProxyProtocol) Prefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(p.Trusted))
	for i, s := range p.Trusted {
		pr, err := parseTrusted(s)
		if err != nil {
			return nil, fmt.Errorf("proxy_protocol.trusted[%d]: %w", i, err)
		}
		out = append(out, pr)
	}
	return out, nil
}

// parseTrusted reads one entry of proxy_protocol.trusted: a CIDR prefix
// (10.0.0.0/8) or a single address (10.0.0.7).
func parseTrusted(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("want a CIDR prefix such as 10.0.0.0/8 or an address, got %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want a CIDR prefix such as 10.0.0.0/8 or an address, got %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Limits bound what the proxy takes on for one statement (README, "Statement limits"):
// the SQL parser library is given only statements within them, and the
// rest pass through to the warehouse unparsed.
type Limits struct {
	// ParseMaxBytes bounds a statement's text.
	ParseMaxBytes ByteSize `yaml:"parse_max_bytes"`
	// ParseMaxDepth bounds how deep a statement nests and chains: each
	// open parenthesis, bracket or CASE, and each operator, JOIN or set
	// operation chained within one expression, counts one.
	ParseMaxDepth int `yaml:"parse_max_depth"`
	// ParseMaxTokens bounds a statement's tokens: words, literals,
	// parameters, and each punctuation or operator character.
	ParseMaxTokens int `yaml:"parse_max_tokens"`
}

// ParseLimits are the limits as the parser's guard takes them: the proxy's
// for every statement, and pgrollup explain's for its one.
func (l Limits) ParseLimits() parselimit.Limits {
	return parselimit.Limits{MaxBytes: int(l.ParseMaxBytes), MaxDepth: l.ParseMaxDepth, MaxTokens: l.ParseMaxTokens}
}

// TLS is the client-side TLS certificate; both empty answers SSLRequest with
// 'N', unless SelfSigned.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// SelfSigned: when the files do not exist, generate a self-signed
	// certificate into them (by default under data_dir/tls), so that
	// passwords never cross the network in clear even where nobody issued
	// a certificate. Clients then connect with sslmode=require.
	SelfSigned bool `yaml:"self_signed"`
}

// Scheduling policies for Config.SchedPolicy.
const (
	// SchedBatch: a thread woken by a packet does not preempt the task
	// running on its CPU; under load the proxy then wakes less often and
	// finds more to do each time (Linux SCHED_BATCH).
	SchedBatch = "batch"
	// SchedNormal leaves the threads as they start (SCHED_OTHER).
	SchedNormal = "normal"
)

// Cleartext password policies for Auth.CleartextWithoutTLS.
const (
	CleartextNever    = "never"
	CleartextLoopback = "loopback"
	CleartextAlways   = "always"
)

// Auth configures client authentication.
type Auth struct {
	// CleartextWithoutTLS says when the proxy may ask a client for its password
	// over a connection without TLS: never, loopback (default) or always.
	CleartextWithoutTLS string `yaml:"cleartext_without_tls"`
	// OutageLogins lets clients log in while the warehouse is unreachable
	// (default true): pgrollup authenticates them itself with SCRAM-SHA-256,
	// from the verifiers it holds, when a session of the same login started
	// through it before.
	OutageLogins bool `yaml:"outage_logins"`
	// Query reads the warehouse's verifier for a role, $1, as PgBouncer's
	// auth_query: it returns the role's name and its pg_authid.rolpassword,
	// or no row. Empty: pgrollup holds only the verifiers that relayed
	// SCRAM logins prove.
	Query string `yaml:"query"`
	// DSN is the connection Query runs on; empty: warehouse.dsn.
	DSN string `yaml:"dsn"`
	// Refresh is how often the verifiers held are read again through Query
	// while the warehouse is up (default 1m).
	Refresh Duration `yaml:"refresh"`
}

// Admin configures the admin and metrics HTTP listener.
type Admin struct {
	Listen string `yaml:"listen"`
	Token  string `yaml:"token"`
	// Pprof serves Go's runtime profiles under /debug/pprof/, behind Token
	// like /metrics, for profiling a proxy under its real load.
	Pprof bool `yaml:"pprof"`
}

// Table declares a fact table and the joins rollups over it may use.
type Table struct {
	Name  string `yaml:"name"` // schema-qualified: public.orders
	Joins []Join `yaml:"joins"`
	Line  int    `yaml:"-"` // line of the entry in the file
}

// Join types.
const (
	JoinLeft  = "left"
	JoinInner = "inner"
)

// Join relationships: how many dimension rows one fact row meets. Only many_to_one and
// one_to_one keep the fact table's row count, which is what makes a joined rollup's sums right.
const (
	RelationshipManyToOne = "many_to_one"
	RelationshipOneToOne  = "one_to_one"
)

// Join is one declared join from a fact table to a dimension table.
type Join struct {
	Table        string `yaml:"table"`        // schema-qualified
	On           string `yaml:"on"`           // SQL condition, e.g. orders.customer_id = customers.id
	Type         string `yaml:"type"`         // left (default) or inner
	Relationship string `yaml:"relationship"` // many_to_one (default) or one_to_one
	Line         int    `yaml:"-"`
}

// Granularity is a time bucket size.
type Granularity string

// Granularities, finest first.
const (
	Hour    Granularity = "hour"
	Day     Granularity = "day"
	Week    Granularity = "week"
	Month   Granularity = "month"
	Quarter Granularity = "quarter"
	Year    Granularity = "year"
)

// Rollup declares one pre-aggregated rollup.
type Rollup struct {
	Name                 string      `yaml:"name"`
	Table                string      `yaml:"table"` // schema-qualified fact table; must be declared in tables or is used without joins
	Dimensions           []string    `yaml:"dimensions"`
	TimeDimension        string      `yaml:"time_dimension"`
	Granularity          Granularity `yaml:"granularity"`
	Measures             []string    `yaml:"measures"`
	Filters              []string    `yaml:"filters"`
	PartitionGranularity Granularity `yaml:"partition_granularity"`
	MaxRows              int64       `yaml:"max_rows"`
	Refresh              Refresh     `yaml:"refresh"`
	BuildRange           *BuildRange `yaml:"build_range"`
	// Lambda makes the rollup answer with the warehouse's newest rows combined
	// in (docs/freshness.md); nil: answers are as of the last build.
	Lambda *Lambda `yaml:"lambda"`
	Line   int     `yaml:"-"` // line of the entry in the file
}

// Lambda configures a lambda rollup: a build holds the rows whose Column lies
// below a cutoff, and an answer adds the warehouse's aggregate of the rows at
// or above it.
type Lambda struct {
	// Column grows for new rows: the rollup's time_dimension, or an
	// increasing integer column of its table (a serial or identity id).
	Column string `yaml:"column"`
	// LateWindow is how far behind the newest rows may still arrive or
	// change: the cutoff is the build's start minus this, cut down to a
	// bucket edge. Only for a time column.
	LateWindow Duration `yaml:"late_window"`
	// LateIDs is, for an id column, how many ids below the newest one
	// may still commit later (a sequence's CACHE times the sessions that
	// insert, ids taken before the insert): the cutoff is the largest id
	// plus one minus this.
	LateIDs int64 `yaml:"late_ids"`
}

// Refresh says when a rollup is rebuilt.
type Refresh struct {
	Every        Duration `yaml:"every"`
	Cron         string   `yaml:"cron"`
	Timezone     string   `yaml:"timezone"` // zone of Cron; default build_timezone
	SQL          string   `yaml:"sql"`      // refresh key: rebuild when its result changes
	Incremental  bool     `yaml:"incremental"`
	UpdateWindow Duration `yaml:"update_window"`
}

// BuildRange bounds the time range a rollup is built over, as SQL returning one timestamp each.
type BuildRange struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// Duration is a time.Duration that reads Go durations ("90s", "1h30m") and
// Postgres-style intervals ("3 days", "2 hours").
type Duration time.Duration

// ByteSize is a size in bytes that reads "64MB", "10GB", "512KiB" or a plain number.
type ByteSize int64
