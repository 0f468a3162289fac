package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/pgrollup/pgrollup/internal/ascii"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/proxy/pgfmt"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/rollup"
)

// Results of a verification, the result label of pgrollup_verifications_total.
const (
	verifyMatch    = "match"
	verifyMismatch = "mismatch"
	verifySkipped  = "skipped"
)

// Verification's bounds.
const (
	// verifyQueue is how many sampled hits may wait for the checker; more are
	// dropped.
	verifyQueue = 16
	// verifyMaxRows bounds the rows of a checked answer on either side; a
	// larger answer is skipped rather than held in memory.
	verifyMaxRows = 10_000
	// verifyStatementTimeout bounds the warehouse's run of a checked statement.
	verifyStatementTimeout = "60s"
	// defaultSettleDelay is how long a mismatch waits before the counters are
	// read again: the statistics collector publishes a backend's counts up to
	// about ten seconds late, so a change made just before the check may show
	// only then.
	defaultSettleDelay = 11 * time.Second
)

// VerifyWarehouse is the service account's pool that checks run on (a
// *pgxpool.Pool satisfies it).
type VerifyWarehouse interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// VerifyOptions configure continuous verification (routing.verify_fraction,
// routing.verify_max_per_minute).
type VerifyOptions struct {
	// Fraction is the share of hits checked; 0 checks none. SetBudget
	// changes it and MaxPerMinute.
	Fraction float64
	// MaxPerMinute bounds the checks started a minute.
	MaxPerMinute int
	// Warehouse is the service account's pool.
	Warehouse VerifyWarehouse
	// Database is the service account's database: hits of sessions on
	// another one are skipped.
	Database string
	// Executor runs the hit's rollup query again; the router's executor.
	Executor executor.Executor
	// Baseline returns the modification counters the build of a rollup's
	// version recorded (rollup.Version.Counters); ok false when there are
	// none or the version is no longer known.
	Baseline func(rollup, version string) (counters map[string]int64, ok bool)
	// Quarantine takes a rollup's version out of service everywhere with
	// detail as its error (rollup.State.MarkQuarantined in the catalog).
	Quarantine func(ctx context.Context, rollup, version, detail string) error
	// SettleDelay is how long a mismatch waits before the counters are read
	// again; 0 is defaultSettleDelay.
	SettleDelay time.Duration
	// Registerer receives pgrollup_verifications_total; nil a private registry.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Verifier checks a sample of rollup hits against the warehouse in the
// background: the statement runs again on the warehouse with the service
// account, within the range where the rollup claims to be exact (the source
// tables' modification counters have not moved since the build), and the
// rows are compared as the differential tests compare them. A mismatch
// quarantines the version. Offer never blocks: sampling, the rate limit and
// a full queue decide at once, and what is not taken is dropped.
type Verifier struct {
	o        VerifyOptions
	fraction atomic.Uint64 // math.Float64bits of the share checked; SetBudget changes it
	limiter  *rate.Limiter
	queue    chan *verifyJob
	results  *prometheus.CounterVec
}

// verifyJob is one sampled hit.
type verifyJob struct {
	decision rewrite.Decision
	sql      string
	params   []proxy.Param
	settings map[string]string // the session's TimeZone, DateStyle, IntervalStyle, ...
	ordered  bool              // the statement has a top-level ORDER BY
	limited  bool              // ... or a LIMIT or OFFSET
	skip     string            // why it cannot be checked, decided when it was sampled
	names    map[string]string // the session's name -> table resolution
	// below, for a lambda hit, writes the statement of the rows below the
	// version's cutoff that the rollup's part is checked against; nil for
	// a hit answered whole.
	below func() (string, error)
}

// NewVerifier returns a Verifier; Run checks what Offer takes. A Fraction of
// 0 gives a Verifier whose Offer takes nothing.
func NewVerifier(o VerifyOptions) *Verifier {
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SettleDelay <= 0 {
		o.SettleDelay = defaultSettleDelay
	}
	limit, burst := budget(o.MaxPerMinute)
	v := &Verifier{
		o:       o,
		limiter: rate.NewLimiter(limit, burst), // starts with a full burst
		queue:   make(chan *verifyJob, verifyQueue),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgrollup_verifications_total",
			Help: "Rollup hits checked against the warehouse, by rollup and result: match, mismatch (the version was quarantined) or skipped (the source tables changed since the build, or the statement cannot be checked).",
		}, []string{"rollup", "result"}),
	}
	o.Registerer.MustRegister(v.results)
	v.SetBudget(o.Fraction, o.MaxPerMinute)
	return v
}

// SetBudget changes the share of hits checked and the checks a minute
// (a reloaded routing.verify_fraction and routing.verify_max_per_minute)
// for the hits from now on.
func (v *Verifier) SetBudget(fraction float64, perMinute int) {
	if v == nil {
		return
	}
	limit, burst := budget(perMinute)
	v.fraction.Store(math.Float64bits(fraction))
	v.limiter.SetLimit(limit)
	v.limiter.SetBurst(burst)
}

// budget is the rate limit of perMinute checks a minute, with a burst of at
// most the queue.
func budget(perMinute int) (rate.Limit, int) {
	perMinute = max(perMinute, 1)
	return rate.Limit(float64(perMinute) / 60), min(perMinute, verifyQueue)
}

// sampling is the share of hits checked now.
func (v *Verifier) sampling() float64 { return math.Float64frombits(v.fraction.Load()) }

// Series makes every result's series of a rollup exist at 0, so that rates
// and alerts over them are defined before the first check.
func (v *Verifier) Series(rollup string) {
	if v == nil {
		return
	}
	for _, r := range []string{verifyMatch, verifyMismatch, verifySkipped} {
		v.results.WithLabelValues(rollup, r)
	}
}

// offer samples a hit that was just answered from d; it returns at once.
func (v *Verifier) offer(d *rewrite.Decision, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo, params []proxy.Param, view *sessionView) {
	v.sample(d, sql, tree, sess, params, view, nil)
}

// sample is offer, with below for a lambda hit (verifyJob.below).
func (v *Verifier) sample(d *rewrite.Decision, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo, params []proxy.Param, view *sessionView, below func() (string, error)) {
	if v == nil {
		return
	}
	if f := v.sampling(); f <= 0 || rand.Float64() >= f {
		return
	}
	if len(v.queue) == cap(v.queue) {
		// Full: drop it before making the job (the send below drops too,
		// should another hit fill the last place meanwhile).
		v.o.Log.Debug("verification queue full; sample dropped", "rollup", d.Rollup)
		return
	}
	if !v.limiter.Allow() {
		return
	}
	j := &verifyJob{decision: *d, sql: sql, params: slices.Clone(params), settings: map[string]string{}, below: below}
	for k, val := range sess.Parameters {
		j.settings[k] = val
	}
	j.ordered, j.limited = orderAndLimit(tree)
	j.skip = uncheckable(sql, sess, v.o.Database, view)
	if view != nil {
		j.names = view.tables
	}
	select {
	case v.queue <- j:
	default:
		v.o.Log.Debug("verification queue full; sample dropped", "rollup", d.Rollup)
	}
}

// uncheckable says why a hit cannot be checked against the warehouse by
// running its text again with the service account, or "".
func uncheckable(sql string, sess *proxy.SessionInfo, database string, view *sessionView) string {
	if database != "" && sess.Database != database {
		return "the session's database is not the service account's"
	}
	if enc := sess.Parameters["client_encoding"]; enc != "" && !strings.EqualFold(enc, "UTF8") {
		return "client_encoding " + enc
	}
	for _, w := range []string{"now(", "now (", "current_date", "current_time", "localtime", "transaction_timestamp", "statement_timestamp", "clock_timestamp", "timeofday"} {
		if ascii.ContainsFold(sql, w) {
			return "the statement reads the clock"
		}
	}
	if view != nil && len(view.rowFilters) > 0 {
		return "row-level security applies to the session"
	}
	return ""
}

// orderAndLimit reports whether the statement's top level has an ORDER BY,
// and a LIMIT or OFFSET.
func orderAndLimit(tree *pg_query.ParseResult) (ordered, limited bool) {
	if tree == nil || len(tree.Stmts) != 1 {
		return false, false
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil {
		return false, false
	}
	return len(sel.SortClause) > 0, sel.LimitCount != nil || sel.LimitOffset != nil
}

// Run checks sampled hits one at a time until ctx ends.
func (v *Verifier) Run(ctx context.Context) {
	if v == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-v.queue:
			result, detail := v.check(ctx, j)
			if ctx.Err() != nil {
				return
			}
			v.results.WithLabelValues(j.decision.Rollup, result).Inc()
			switch result {
			case verifySkipped:
				v.o.Log.Debug("verification skipped", "rollup", j.decision.Rollup, "version", j.decision.Version, "why", detail)
			case verifyMismatch:
				v.o.Log.Error("a rollup hit disagrees with the warehouse; the version is quarantined and rebuilt",
					"rollup", j.decision.Rollup, "version", j.decision.Version, "difference", detail)
				if err := v.o.Quarantine(ctx, j.decision.Rollup, j.decision.Version, detail); err != nil {
					v.o.Log.Error("quarantine", "rollup", j.decision.Rollup, "version", j.decision.Version, "err", err)
				}
			}
		}
	}
}

// check runs one sampled hit again on both sides and compares; detail says
// why it was skipped, or names the first differing row.
func (v *Verifier) check(ctx context.Context, j *verifyJob) (result, detail string) {
	if j.skip != "" {
		return verifySkipped, j.skip
	}
	if j.below != nil {
		return v.checkBelow(ctx, j)
	}
	d := &j.decision
	base, ok := v.o.Baseline(d.Rollup, d.Version)
	if !ok || base == nil { // nil would read no counters (warehouseRows)
		return verifySkipped, "the version recorded no modification counters"
	}
	tables := make([]string, 0, len(base))
	for t := range base {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	want, err := v.rollupRows(ctx, j)
	if err != nil {
		return verifySkipped, err.Error()
	}
	got, moved, err := v.warehouseRows(ctx, j, base, tables)
	if err != nil {
		return verifySkipped, err.Error()
	}
	if moved {
		return verifySkipped, "the source tables changed since the build"
	}
	diff := compareRows(want, got, d.Columns, j.ordered)
	if diff == "" {
		return verifyMatch, ""
	}
	if j.limited && len(want) == len(got) {
		// A LIMIT may cut through rows that sort equal: which of them come
		// back is the server's choice.
		return verifySkipped, "a LIMIT may cut through equal rows: " + diff
	}
	// The collector may publish a change made just before the check late:
	// read the counters again after it surely has.
	select {
	case <-ctx.Done():
		return verifySkipped, ctx.Err().Error()
	case <-time.After(v.o.SettleDelay):
	}
	now, ok, err := rollup.Counters(ctx, v.o.Warehouse, tables)
	if err != nil || !ok || !rollup.SameCounters(now, base) {
		return verifySkipped, "the source tables changed since the build"
	}
	return verifyMismatch, diff
}

// rollupRows runs the hit's rollup query again and renders its values as
// Postgres's text output would, with three extra float digits.
func (v *Verifier) rollupRows(ctx context.Context, j *verifyJob) ([][]*string, error) {
	set, err := pgfmt.SettingsFromParams(verifySettings(j.settings))
	if err != nil {
		return nil, fmt.Errorf("session settings: %w", err)
	}
	rows, err := rowsAsText(ctx, v.o.Executor, &j.decision, set, verifyMaxRows, func() error { return fmt.Errorf("more than %d rows", verifyMaxRows) })
	if err != nil {
		return nil, fmt.Errorf("rollup query: %w", err)
	}
	return rows, nil
}

// verifySettings are the session's output settings with all float digits,
// the same on both sides.
func verifySettings(session map[string]string) map[string]string {
	out := map[string]string{"extra_float_digits": "3"}
	for _, k := range []string{"TimeZone", "DateStyle", "IntervalStyle"} {
		if val, ok := session[k]; ok {
			out[k] = val
		}
	}
	return out
}

// warehouseRows runs the statement on the warehouse in a read-only
// transaction whose snapshot the counters are read in first: moved reports
// that they differ from base, and then nothing is run. A nil base reads
// no counters.
func (v *Verifier) warehouseRows(ctx context.Context, j *verifyJob, base map[string]int64, tables []string) (rows [][]*string, moved bool, err error) {
	tx, err := v.o.Warehouse.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, false, fmt.Errorf("warehouse: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// A standby's counters miss the changes it replays.
	var standby bool
	if err := tx.QueryRow(ctx, "SELECT pg_catalog.pg_is_in_recovery()").Scan(&standby); err != nil {
		return nil, false, fmt.Errorf("warehouse: %w", err)
	}
	if standby {
		return nil, false, errors.New("the warehouse is a standby, whose counters miss replayed changes")
	}
	if base != nil {
		now, ok, err := rollup.Counters(ctx, tx, tables)
		if err != nil {
			return nil, false, err
		}
		if !ok || !rollup.SameCounters(now, base) {
			return nil, true, nil
		}
	}
	// Names must mean the same tables to the service account as to the
	// session whose hit this was.
	for name, table := range j.names {
		if name == table {
			continue // a qualified name: the same table for every role
		}
		var same bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT DISTINCT FROM to_regclass($2)", sqlquote.Ident(name), table).Scan(&same); err != nil {
			return nil, false, fmt.Errorf("name %s: %w", name, err)
		}
		if !same {
			return nil, false, fmt.Errorf("%s is another table for the service account", name)
		}
	}
	set := verifySettings(j.settings)
	set["statement_timeout"] = verifyStatementTimeout
	for _, k := range []string{"TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits", "statement_timeout", "standard_conforming_strings"} {
		val, ok := set[k]
		if !ok {
			val, ok = j.settings[k]
		}
		if !ok {
			continue
		}
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config($1, $2, true)", k, val); err != nil {
			return nil, false, fmt.Errorf("set %s: %w", k, err)
		}
	}
	values := make([][]byte, len(j.params))
	oids := make([]uint32, len(j.params))
	formats := make([]int16, len(j.params))
	for i, p := range j.params {
		values[i], oids[i], formats[i] = p.Value, p.TypeOID, p.Format
	}
	rr := tx.Conn().PgConn().ExecParams(ctx, j.sql, values, oids, formats, nil)
	for rr.NextRow() {
		if len(rows) >= verifyMaxRows {
			rr.Close()
			return nil, false, fmt.Errorf("more than %d rows", verifyMaxRows)
		}
		raw := rr.Values()
		row := make([]*string, len(raw))
		for i, b := range raw {
			if b != nil {
				s := string(b)
				row[i] = &s
			}
		}
		rows = append(rows, row)
	}
	if _, err := rr.Close(); err != nil {
		return nil, false, fmt.Errorf("warehouse: %w", err)
	}
	return rows, false, nil
}

// compareRows compares the rollup's rows with the warehouse's as the
// differential tests do: values as text, floats within a tolerance for
// their last bits, as a multiset unless ordered. It returns "" when they
// agree, else the first differing row.
func compareRows(rollupRows, warehouse [][]*string, cols []rewrite.ResultColumn, ordered bool) string {
	oids := make([]uint32, len(cols))
	for i, c := range cols {
		oids[i] = c.Type.OID
	}
	if !ordered {
		rollupRows = sortedRows(rollupRows, oids)
		warehouse = sortedRows(warehouse, oids)
	}
	for i := range max(len(rollupRows), len(warehouse)) {
		switch {
		case i >= len(rollupRows):
			return fmt.Sprintf("the warehouse has %d rows, the rollup %d; first missing: %s", len(warehouse), len(rollupRows), renderRow(warehouse[i], cols))
		case i >= len(warehouse):
			return fmt.Sprintf("the rollup has %d rows, the warehouse %d; first extra: %s", len(rollupRows), len(warehouse), renderRow(rollupRows[i], cols))
		case !rowsEqual(rollupRows[i], warehouse[i], oids):
			return fmt.Sprintf("row %d: rollup %s, warehouse %s", i+1, renderRow(rollupRows[i], cols), renderRow(warehouse[i], cols))
		}
	}
	return ""
}

// sortedRows orders rows by their exact columns, then their floats rounded,
// so that rows whose floats differ in the last bits still meet.
func sortedRows(rows [][]*string, oids []uint32) [][]*string {
	keys := make(map[int]string, len(rows))
	idx := make([]int, len(rows))
	for i, r := range rows {
		idx[i] = i
		var b strings.Builder
		for pass := range 2 {
			for c, val := range r {
				fl := c < len(oids) && isFloat(oids[c])
				if fl != (pass == 1) {
					continue
				}
				switch f, ok := parseFloat(val); {
				case val == nil:
					b.WriteString("\x00N")
				case fl && ok:
					fmt.Fprintf(&b, "\x00F%.9g", f+0) // -0 sorts with 0
				default:
					b.WriteString("\x00V" + *val)
				}
			}
		}
		keys[i] = b.String()
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	out := make([][]*string, len(rows))
	for i, k := range idx {
		out[i] = rows[k]
	}
	return out
}

func rowsEqual(a, b []*string, oids []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !cellsEqual(a[i], b[i], i < len(oids) && isFloat(oids[i])) {
			return false
		}
	}
	return true
}

// cellsEqual compares one value: exactly, or floats allowing for the order
// of additions (DESIGN §4).
func cellsEqual(a, b *string, float bool) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if float {
		fa, oka := parseFloat(a)
		fb, okb := parseFloat(b)
		if oka && okb {
			switch {
			case math.IsNaN(fa) || math.IsNaN(fb):
				return math.IsNaN(fa) && math.IsNaN(fb)
			case math.IsInf(fa, 0) || math.IsInf(fb, 0):
				return fa == fb
			}
			return math.Abs(fa-fb) <= 1e-9+1e-12*math.Max(math.Abs(fa), math.Abs(fb))
		}
	}
	return *a == *b
}

func isFloat(oid uint32) bool { return oid == pgtype.Float4OID || oid == pgtype.Float8OID }

func parseFloat(s *string) (float64, bool) {
	if s == nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(*s, 64)
	return f, err == nil
}

// renderRow shows a row for last_error and the log: each value quoted as a
// literal, NULL as NULL, long rows cut.
func renderRow(row []*string, cols []rewrite.ResultColumn) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, val := range row {
		if i > 0 {
			b.WriteString(", ")
		}
		if i < len(cols) {
			b.WriteString(cols[i].Name + "=")
		}
		if val == nil {
			b.WriteString("NULL")
		} else {
			b.WriteString(sqlquote.Literal(*val))
		}
		if b.Len() > 400 {
			b.WriteString(", ...")
			break
		}
	}
	b.WriteByte(')')
	return b.String()
}

// verify offers a hit that was just answered from d to the Verifier, with
// what the session's context says about it.
func (r *Router) verify(d *rewrite.Decision, sql string, tree *pg_query.ParseResult, sess *proxy.SessionInfo, params []proxy.Param) {
	if r.opts.Verify == nil || r.opts.Verify.sampling() <= 0 {
		return
	}
	r.opts.Verify.offer(d, sql, tree, sess, params, r.verifyView(sess))
}

// verifyView is what the session's context says about a hit to verify:
// nil without a context watch, unknownView when it has no view yet.
func (r *Router) verifyView(sess *proxy.SessionInfo) *sessionView {
	if r.opts.Context == nil {
		return nil
	}
	if view := r.opts.Context.view(sess); view != nil {
		return view
	}
	return unknownView
}
