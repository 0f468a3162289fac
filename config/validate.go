package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/robfig/cron/v3"
)

// Validate checks the whole configuration and returns every problem as Errors, or nil.
// A Config from Load or Parse has already been validated; Validate is for configurations
// assembled in Go (start from Default). Lines are known only for configurations read from a file.
func (c *Config) Validate() error {
	return c.validate().finish(c).orNil()
}

// finish puts problems in file order and makes sure no secret of c appears in them.
func (es Errors) finish(c *Config) Errors {
	return es.redacted(c.secrets()).sorted()
}

// validator collects problems; it never stops at the first, so a user fixes a file in one round.
type validator struct {
	c    *Config
	src  *source
	errs Errors
}

func (c *Config) validate() Errors {
	v := &validator{c: c, src: c.src}
	v.address("listen", c.Listen)
	v.warehouse()
	v.storage()
	v.worker()
	v.routing()
	v.tls()
	v.auth()
	v.proxyProtocol()
	v.positiveSize("max_message_bytes", c.MaxMessageBytes)
	switch p := c.SchedPolicy; p {
	case SchedBatch, SchedNormal:
	default:
		v.addf("sched_policy", "unknown value %q (want batch or normal)", p)
	}
	v.limits()
	v.zone("build_timezone", c.BuildTimezone)
	v.address("admin.listen", c.Admin.Listen)
	scopes := v.tables()
	v.rollups(scopes)
	return v.errs
}

func (v *validator) addf(path, format string, args ...any) {
	if v.src.failedAt(path) {
		return // the decoder already reported this field; a second message would only confuse
	}
	msg := fmt.Sprintf(format, args...)
	if name := v.src.envName(path); name != "" {
		msg += " (set by " + name + ")"
	}
	v.errs = append(v.errs, Error{File: v.src.fileName(), Line: v.src.line(path), Field: path, Msg: msg})
}

// at names where a field is for "first at ..." messages: its line when read from a file,
// its path otherwise.
func (v *validator) at(path string) string {
	if line := v.src.line(path); line > 0 {
		return fmt.Sprintf("line %d", line)
	}
	return path
}

// address checks a listen address: host:port with a numeric port (an empty host listens
// on every interface, as net.Listen does).
func (v *validator) address(path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.addf(path, "invalid address %q: want host:port, e.g. 127.0.0.1:7432", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.addf(path, "invalid port %q: want a number from 0 to 65535", port)
	}
}

func (v *validator) warehouse() {
	dsn := v.c.Warehouse.DSN
	if strings.TrimSpace(dsn) == "" {
		v.addf("warehouse.dsn", "required: the connection string of the service account that builds rollups (or set PGROLLUP_WAREHOUSE_DSN)")
		return
	}
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		v.addf("warehouse.dsn", "invalid connection string: %s", dsnProblem(err))
	}
}

// dsnProblem is pgconn's reason without the connection string it quotes. pgconn already
// masks the password there, but a message that never quotes the DSN cannot leak any part of it.
func dsnProblem(err error) string {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	return strings.TrimPrefix(pe.Error(), "cannot parse `"+pe.ConnString+"`: ")
}

func (v *validator) storage() {
	s := v.c.Storage
	switch scheme, rest, _ := strings.Cut(s.URL, "://"); {
	case s.URL == "":
		v.addf("storage.url", "required: file://path or s3://bucket/prefix")
	case scheme == "file" && rest == "":
		v.addf("storage.url", "file:// needs a directory, e.g. file://./data/rollups")
	case scheme == "file":
	case scheme == "s3" && (strings.Trim(rest, "/") == "" || strings.HasPrefix(rest, "/")):
		v.addf("storage.url", "s3:// needs a bucket, e.g. s3://bucket/prefix")
	case scheme == "s3":
	default:
		v.addf("storage.url", "unsupported storage URL (want file://path or s3://bucket/prefix)")
	}
	if s.S3.Endpoint != "" {
		u, err := url.Parse(s.S3.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.addf("storage.s3.endpoint", "want an http:// or https:// URL, e.g. http://127.0.0.1:9000")
		}
	}
}

func (v *validator) worker() {
	w := v.c.Worker
	if w.CacheDir == "" {
		v.addf("worker.cache_dir", "required")
	}
	v.positiveSize("worker.cache_max_bytes", w.CacheMaxBytes)
	v.positiveSize("worker.duckdb_memory_limit", w.DuckDBMemoryLimit)
	if w.Concurrency < 1 {
		v.addf("worker.concurrency", "must be at least 1, got %d", w.Concurrency)
	}
}

func (v *validator) routing() {
	r := v.c.Routing
	if r.WorkerTimeout <= 0 {
		v.addf("routing.worker_timeout", "must be greater than zero, got %s", r.WorkerTimeout)
	}
	v.notNegative("routing.max_staleness", r.MaxStaleness)
	v.notNegative("routing.privilege_cache_ttl", r.PrivilegeCacheTTL)
	switch r.AnswerOn {
	case AnswerAuto, AnswerLocal, AnswerWorkers:
	default:
		v.addf("routing.answer_on", "unknown value %q (want auto, local or workers)", r.AnswerOn)
	}
	if r.FinishMaxRows < 0 || r.FinishMaxRows > maxFinishRows {
		v.addf("routing.finish_max_rows", "must be 0 to %d, got %d", maxFinishRows, r.FinishMaxRows)
	}
	if r.VerifyFraction < 0 || r.VerifyFraction > 1 || r.VerifyFraction != r.VerifyFraction {
		v.addf("routing.verify_fraction", "must be from 0 to 1, got %v", r.VerifyFraction)
	}
	if r.VerifyMaxPerMinute < 1 || r.VerifyMaxPerMinute > maxVerifyPerMinute {
		v.addf("routing.verify_max_per_minute", "must be 1 to %d, got %d", maxVerifyPerMinute, r.VerifyMaxPerMinute)
	}
}

// maxVerifyPerMinute bounds routing.verify_max_per_minute: each check runs
// the statement on the warehouse again.
const maxVerifyPerMinute = 100_000

// maxFinishRows bounds routing.finish_max_rows: the core's rows are written
// into one statement's text, which Postgres takes up to 1GB.
const maxFinishRows = 10_000_000

// Bounds of the parse limits. Deeper statements than maxParseDepth crash
// libpg_query on the usual 8 MB thread stack (near 11,000) or fail in its
// decoding anyway; a parse costs up to about 500 bytes a token.
const (
	maxParseDepth  = 5000
	maxParseTokens = 10_000_000
	maxParseBytes  = 1 * GB
)

func (v *validator) limits() {
	l := v.c.Limits
	if l.ParseMaxBytes <= 0 || l.ParseMaxBytes > maxParseBytes {
		v.addf("limits.parse_max_bytes", "must be greater than zero and at most %s, got %s", maxParseBytes, l.ParseMaxBytes)
	}
	if l.ParseMaxDepth < 1 || l.ParseMaxDepth > maxParseDepth {
		v.addf("limits.parse_max_depth", "must be from 1 to %d (deeper statements crash the SQL parser), got %d", maxParseDepth, l.ParseMaxDepth)
	}
	if l.ParseMaxTokens < 1 || l.ParseMaxTokens > maxParseTokens {
		v.addf("limits.parse_max_tokens", "must be from 1 to %d, got %d", maxParseTokens, l.ParseMaxTokens)
	}
}

func (v *validator) tls() {
	t := v.c.TLS
	if t.CertFile != "" && t.KeyFile == "" {
		v.addf("tls.cert_file", "set without tls.key_file: both are needed for TLS")
	}
	if t.KeyFile != "" && t.CertFile == "" {
		v.addf("tls.key_file", "set without tls.cert_file: both are needed for TLS")
	}
}

func (v *validator) proxyProtocol() {
	for i, a := range v.c.ProxyProtocol.Trusted {
		if _, err := parseTrusted(a); err != nil {
			v.addf(fmt.Sprintf("proxy_protocol.trusted[%d]", i), "%v", err)
		}
	}
}

func (v *validator) auth() {
	a := v.c.Auth
	switch p := a.CleartextWithoutTLS; p {
	case CleartextNever, CleartextLoopback, CleartextAlways:
	default:
		v.addf("auth.cleartext_without_tls", "unknown value %q (want never, loopback or always)", p)
	}
	if a.Query != "" {
		if err := checkAuthQuery(a.Query); err != nil {
			v.addf("auth.query", "%v", err)
		}
	}
	if a.DSN != "" {
		if a.Query == "" {
			v.addf("auth.dsn", "set without auth.query, which is all it is used for")
		} else if _, err := pgconn.ParseConfig(a.DSN); err != nil {
			v.addf("auth.dsn", "invalid connection string: %s", dsnProblem(err))
		}
	}
	if a.Refresh <= 0 {
		v.addf("auth.refresh", "must be greater than zero, got %s", a.Refresh)
	}
}

func (v *validator) positiveSize(path string, b ByteSize) {
	if b <= 0 {
		v.addf(path, "must be greater than zero")
	}
}

func (v *validator) notNegative(path string, d Duration) {
	if d < 0 {
		v.addf(path, "must not be negative, got %s", d)
	}
}

// zone checks a time zone name the way builds will use it: in Go here, and as the
// session TimeZone on the warehouse, which knows IANA names but not Go's "Local".
func (v *validator) zone(path, name string) {
	if name == "" {
		v.addf(path, "required: an IANA zone name such as UTC or Europe/Berlin")
		return
	}
	if name == "Local" {
		v.addf(path, "Local is not a zone name Postgres knows; name the zone, e.g. Europe/Berlin")
		return
	}
	if _, err := time.LoadLocation(name); err != nil {
		v.addf(path, "unknown time zone %q (want an IANA name such as UTC or Europe/Berlin)", name)
	}
}

// relationName checks a table name and returns its parsed form.
func (v *validator) relationName(path, name string) (relation, bool) {
	if name == "" {
		v.addf(path, "required: a table name such as public.orders")
		return relation{}, false
	}
	parts, err := parseRelationName(name)
	if err != nil {
		v.addf(path, "invalid table name %q: %v (want table or schema.table)", name, err)
		return relation{}, false
	}
	return relation{name: name, parts: parts}, true
}

// tables checks the declared tables and returns, per table key, the tables whose columns a
// rollup over it may reference: the table itself and its joins.
func (v *validator) tables() map[string]scope {
	scopes := map[string]scope{}
	first := map[string]string{} // table key -> path of its first declaration
	for i := range v.c.Tables {
		t := &v.c.Tables[i]
		path := fmt.Sprintf("tables[%d]", i)
		fact, ok := v.relationName(path+".name", t.Name)
		sc := v.joins(path, t, fact, ok)
		if !ok {
			continue
		}
		key := relationKey(t.Name)
		if prev, dup := first[key]; dup {
			v.addf(path+".name", "table %s is declared twice (first at %s)", t.Name, v.at(prev))
			continue
		}
		first[key] = path
		scopes[key] = sc
	}
	return scopes
}

func (v *validator) joins(path string, t *Table, fact relation, factOK bool) scope {
	var sc scope
	if factOK {
		sc = append(sc, fact)
	}
	for j := range t.Joins {
		join := &t.Joins[j]
		jp := fmt.Sprintf("%s.joins[%d]", path, j)
		if rel, ok := v.relationName(jp+".table", join.Table); ok {
			if sc.resolves(rel.parts) {
				v.addf(jp+".table", "%s is already part of this table's joins (a table can be joined once; there are no aliases)", join.Table)
			} else {
				sc = append(sc, rel)
			}
		}
		v.join(jp, join, sc)
	}
	return sc
}

// join checks one join; sc holds the fact table, this join's table and earlier joins,
// which are the tables its condition may reference.
func (v *validator) join(path string, j *Join, sc scope) {
	if strings.TrimSpace(j.On) == "" {
		v.addf(path+".on", "required: the join condition, e.g. orders.customer_id = customers.id")
	} else if err := checkCondition(j.On, sc); err != nil {
		v.addf(path+".on", "%v", err)
	}
	switch j.Type {
	case JoinLeft, JoinInner, "": // empty is the documented default (Load fills it in)
	default:
		v.addf(path+".type", "unknown join type %q (want left or inner)", j.Type)
	}
	switch j.Relationship {
	case RelationshipManyToOne, RelationshipOneToOne, "":
	default:
		v.addf(path+".relationship", "unknown relationship %q (want many_to_one or one_to_one)", j.Relationship)
	}
}

func (v *validator) rollups(scopes map[string]scope) {
	first := map[string]string{} // lower-case name -> path of the rollup that has it
	for i := range v.c.Rollups {
		r := &v.c.Rollups[i]
		path := fmt.Sprintf("rollups[%d]", i)
		v.rollupName(path, r, first)
		sc := v.rollupScope(path, r, scopes)
		v.rollupColumns(path, r, sc)
		v.rollupTime(path, r)
		if r.MaxRows < 0 {
			v.addf(path+".max_rows", "must not be negative, got %d", r.MaxRows)
		}
		v.refresh(path, r)
		v.buildRange(path, r)
		v.lambda(path, r)
	}
}

// lambda checks a lambda rollup. Its column is the time dimension, whose
// buckets the cutoff falls between, so every stored bucket is whole; or an
// increasing id column of the rollup's table, which the warehouse types
// (integers only) at the build.
func (v *validator) lambda(path string, r *Rollup) {
	l := r.Lambda
	if l == nil {
		return
	}
	p := path + ".lambda"
	v.notNegative(p+".late_window", l.LateWindow)
	if l.LateIDs < 0 {
		v.addf(p+".late_ids", "must not be negative, got %d", l.LateIDs)
	}
	col := strings.TrimSpace(l.Column)
	switch {
	case col == "":
		v.addf(p+".column", "required: the rollup's time_dimension or an increasing id column, which grows for new rows")
	case col == strings.TrimSpace(r.TimeDimension):
		if l.LateIDs != 0 {
			v.addf(p+".late_ids", "counts ids: for a lambda on the time column %q, set late_window", col)
		}
	case !plainColumn.MatchString(col):
		v.addf(p+".column", "must be the rollup's time_dimension %q or an id column of its table named without a qualifier, got %q", r.TimeDimension, l.Column)
	case l.LateWindow != 0:
		// An id says nothing of time: how far behind rows arrive is a count of ids.
		v.addf(p+".late_window", "is for a time column; for the id column %q, set late_ids (a count of ids)", col)
	}
}

// rollupName checks the name's syntax and uniqueness. Uniqueness ignores case because
// names become file and KV key names, and some file systems ignore case.
func (v *validator) rollupName(path string, r *Rollup, first map[string]string) {
	switch {
	case r.Name == "":
		v.addf(path+".name", "required")
	case !rollupName.MatchString(r.Name):
		v.addf(path+".name", "invalid name %q: use letters, digits and underscores, not starting with a digit", r.Name)
	default:
		key := strings.ToLower(r.Name)
		if prev, dup := first[key]; dup {
			v.addf(path+".name", "duplicate rollup name %q (first at %s)", r.Name, v.at(prev))
			return
		}
		first[key] = path
	}
}

// rollupScope returns the tables the rollup's expressions may reference: its table and,
// when the table is declared in tables, that table's joins.
func (v *validator) rollupScope(path string, r *Rollup, scopes map[string]scope) scope {
	rel, ok := v.relationName(path+".table", r.Table)
	if !ok {
		return nil
	}
	if sc, declared := scopes[relationKey(r.Table)]; declared {
		return sc
	}
	return scope{rel}
}

func (v *validator) rollupColumns(path string, r *Rollup, sc scope) {
	if len(r.Dimensions) == 0 && r.TimeDimension == "" && len(r.Measures) == 0 {
		v.addf(path, "declares no dimensions, time_dimension or measures")
	}
	seen := map[string]bool{}
	for i, d := range r.Dimensions {
		p := fmt.Sprintf("%s.dimensions[%d]", path, i)
		key, err := checkDimension(d, sc)
		switch {
		case err != nil:
			v.addf(p, "%v", err)
		case seen[key]:
			v.addf(p, "duplicate dimension %q", d)
		}
		seen[key] = true
	}
	seen = map[string]bool{}
	for i, m := range r.Measures {
		p := fmt.Sprintf("%s.measures[%d]", path, i)
		key, err := checkMeasure(m, sc)
		switch {
		case err != nil:
			v.addf(p, "%v", err)
		case seen[key]:
			v.addf(p, "duplicate measure %q", m)
		}
		seen[key] = true
	}
	for i, f := range r.Filters {
		if err := checkCondition(f, sc); err != nil {
			v.addf(fmt.Sprintf("%s.filters[%d]", path, i), "%v", err)
		}
	}
	if r.TimeDimension != "" {
		if _, err := checkDimension(r.TimeDimension, sc); err != nil {
			v.addf(path+".time_dimension", "%v", err)
		}
	}
}

const granularityList = "hour, day, week, month, quarter or year"

// rollupTime checks that time_dimension, granularity and partition_granularity fit together.
func (v *validator) rollupTime(path string, r *Rollup) {
	g, p := r.Granularity, r.PartitionGranularity
	switch {
	case g != "" && !g.Valid():
		v.addf(path+".granularity", "unknown granularity %q (want %s)", g, granularityList)
	case g != "" && r.TimeDimension == "":
		v.addf(path+".granularity", "needs a time_dimension: the column to cut into %s buckets", g)
	case g == "" && r.TimeDimension != "":
		v.addf(path+".time_dimension", "needs a granularity (%s)", granularityList)
	}
	switch {
	case p == "":
	case !p.Valid():
		v.addf(path+".partition_granularity", "unknown granularity %q (want %s)", p, granularityList)
	case r.TimeDimension == "":
		v.addf(path+".partition_granularity", "needs a time_dimension: partitions are time ranges")
	case g.Valid() && !g.CanRollUpTo(p):
		v.addf(path+".partition_granularity", "%s partitions cannot hold whole %s buckets (want %s)", p, g, coarserList(g))
	}
}

// coarserList names the granularities whose buckets are unions of whole g buckets.
func coarserList(g Granularity) string {
	var names []string
	for _, c := range Granularities() {
		if g.CanRollUpTo(c) {
			names = append(names, string(c))
		}
	}
	return strings.Join(names, ", ")
}

// cronParser reads the classic 5-field form and descriptors such as @daily; seconds are
// not offered because refreshes that often belong in refresh.every.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (v *validator) refresh(path string, r *Rollup) {
	rf := r.Refresh
	p := path + ".refresh"
	v.notNegative(p+".every", rf.Every)
	v.notNegative(p+".update_window", rf.UpdateWindow)
	if rf.Cron != "" {
		v.cronSpec(p+".cron", rf.Cron)
	}
	if rf.Timezone != "" && rf.Timezone != v.c.BuildTimezone { // empty means build_timezone, checked already
		v.zone(p+".timezone", rf.Timezone)
	}
	if rf.SQL != "" {
		if err := checkQuery(rf.SQL, false); err != nil {
			v.addf(p+".sql", "%v", err)
		}
	}
	if rf.Incremental && r.PartitionGranularity == "" {
		v.addf(p+".incremental", "needs partition_granularity: incremental builds replace whole partitions")
	}
	if rf.UpdateWindow != 0 && r.PartitionGranularity == "" {
		v.addf(p+".update_window", "needs partition_granularity: the window selects partitions to rebuild")
	}
}

func (v *validator) cronSpec(path, spec string) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		v.addf(path, "set the zone with refresh.timezone, not inside the cron string")
		return
	}
	if _, err := cronParser.Parse(spec); err != nil {
		v.addf(path, "invalid cron schedule %q: %v (want minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly, @monthly)", spec, err)
	}
}

func (v *validator) buildRange(path string, r *Rollup) {
	br := r.BuildRange
	if br == nil {
		return
	}
	p := path + ".build_range"
	if r.TimeDimension == "" {
		v.addf(p, "needs a time_dimension: the range bounds it")
	}
	for _, bound := range []struct{ key, text string }{{"start", br.Start}, {"end", br.End}} {
		if strings.TrimSpace(bound.text) == "" {
			v.addf(p+"."+bound.key, "required: a SELECT returning one timestamp")
		} else if err := checkQuery(bound.text, true); err != nil {
			v.addf(p+"."+bound.key, "%v", err)
		}
	}
}
