package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/internal/promtext"
)

// diffStmt is one statement of the differential suite and what it takes to
// compare its answers.
type diffStmt struct {
	Kind   string // where it comes from: rewrite, duckdb, fuzz-seed, generated, regression
	Name   string
	Zone   string // the session's TimeZone
	Flavor string // other session settings, see diffFlavors
	SQL    string
	Params []diffParam // bound in text format through the extended protocol
	// MustHit: a rollup can answer the statement (the generator built it from
	// answerable parts, or rewrite's tests expect a match); it must be answered
	// from a rollup, not by the warehouse.
	MustHit bool
	Why     string     // what MustHit rests on, for the failure message
	Order   *diffOrder // nil: the rows are a multiset
	// Limit is the LIMIT of a statement without ORDER BY (0: none): if as
	// many rows come back, which ones is up to the server. So it is with
	// an OFFSET and no ORDER BY.
	Limit  int64
	Offset bool
	// Compare says how much of the answer is determined: see the cmp* levels.
	Compare int
}

// Comparison levels: a statement that reads the clock or a random number
// gives two different answers even from the same server.
const (
	diffCmpAll     = iota
	diffCmpColumns // column descriptions and the error, if any; not the rows
)

type diffParam struct {
	OID   uint32
	Value *string // nil is NULL
}

// diffOrder says which output columns an ORDER BY sorts by: rows with equal
// keys may come in any order, and a LIMIT (or OFFSET) may cut a group of
// equal keys anywhere, so the rows of such a group compare only by their keys.
type diffOrder struct {
	Keys   []int
	Limit  int64 // 0: none
	Offset bool
}

// diffFlavors are session settings besides TimeZone; each changes how
// Postgres writes values in text, which the proxy must follow (DESIGN §4).
var diffFlavors = map[string]map[string]string{
	"":       {},
	"sql":    {"DateStyle": "SQL, DMY", "IntervalStyle": "postgres_verbose", "extra_float_digits": "0"},
	"german": {"DateStyle": "German", "extra_float_digits": "-3"},
	// pgjdbc with assumeMinServerVersion 9.0 or later: extra_float_digits 3
	// in the startup packet.
	"pgjdbc": {"extra_float_digits": "3"},
	// pgjdbc's default: extra_float_digits 2 in the startup packet, then
	// SET extra_float_digits = 3 (see diffFlavorInit).
	"pgjdbc-set": {"extra_float_digits": "2"},
	// Sequelize's sessions: its default timezone option '+00:00' set as
	// an interval on every connect (see diffFlavorInit).
	"sequelize": {},
}

// diffFlavorInit are statements a flavor's sessions run once after connecting.
var diffFlavorInit = map[string][]string{
	"pgjdbc-set": {"SET extra_float_digits = 3"},
	// sequelize 6, lib/dialects/postgres/connection-manager.js.
	"sequelize": {"SET client_min_messages TO warning; SET TIME ZONE INTERVAL '+00:00' HOUR TO MINUTE"},
}

// diffResult is what one execution returned, as raw as pgconn gives it.
type diffResult struct {
	fields []pgconn.FieldDescription
	rows   [][][]byte
	tag    string
	err    error
}

// diffMode is one way a client runs a statement.
type diffMode struct {
	name    string
	simple  bool  // simple Query protocol (psql, psycopg2); else Parse/Bind/Execute
	results int16 // result format code for every column (extended protocol only)
}

var (
	diffModeSimpleText = diffMode{name: "simple/text", simple: true}
	diffModeExtBinary  = diffMode{name: "extended/binary", results: 1}
	diffModeExtText    = diffMode{name: "extended/text", results: 0}
	// Bind with no result format codes: all text, as pgjdbc binds.
	diffModeExtDefault = diffMode{name: "extended/no format codes", results: -1}
)

func diffExec(ctx context.Context, conn *pgconn.PgConn, st *diffStmt, mode diffMode) diffResult {
	if mode.simple && len(st.Params) == 0 {
		mrr := conn.Exec(ctx, st.SQL)
		var res diffResult
		for mrr.NextResult() {
			res = diffReadResult(mrr.ResultReader())
		}
		if err := mrr.Close(); err != nil && res.err == nil {
			res.err = err
		}
		return res
	}
	var vals [][]byte
	var oids []uint32
	for _, p := range st.Params {
		oids = append(oids, p.OID)
		if p.Value == nil {
			vals = append(vals, nil)
		} else {
			vals = append(vals, []byte(*p.Value))
		}
	}
	formats := []int16{mode.results}
	if mode.results < 0 {
		formats = nil
	}
	return diffReadResult(conn.ExecParams(ctx, st.SQL, vals, oids, nil, formats))
}

// diffReadResult drains a result. pgconn's Result.Read leaves the field
// descriptions out when there are no rows, so this reads them itself: an
// empty answer's columns must match too.
func diffReadResult(rr *pgconn.ResultReader) diffResult {
	var res diffResult
	for rr.NextRow() {
		row := make([][]byte, len(rr.Values()))
		for i, v := range rr.Values() {
			if v != nil {
				row[i] = append([]byte{}, v...)
			}
		}
		res.rows = append(res.rows, row)
	}
	res.fields = append([]pgconn.FieldDescription(nil), rr.FieldDescriptions()...)
	tag, err := rr.Close()
	res.tag, res.err = tag.String(), err
	return res
}

// isFloatOID says whether values of a type compare with a tolerance.
func isFloatOID(oid uint32) bool { return oid == pgtype.Float4OID || oid == pgtype.Float8OID }

// Floating-point aggregates may differ in their last bits (DESIGN §4: the
// order of additions differs, as in Postgres's own parallel aggregation).
// The relative tolerance allows for that after tens of thousands of
// additions; the absolute one for sums that cancel to nearly zero, whose
// relative error is unbounded (prices have two decimals, so a real error is
// at least 0.005).
const (
	diffFloatRelTol = 1e-12
	diffFloatAbsTol = 1e-9
)

func diffFloatOf(v []byte, oid uint32, format int16) (float64, bool) {
	if format == 1 {
		switch {
		case oid == pgtype.Float8OID && len(v) == 8:
			return math.Float64frombits(binary.BigEndian.Uint64(v)), true
		case oid == pgtype.Float4OID && len(v) == 4:
			return float64(math.Float32frombits(binary.BigEndian.Uint32(v))), true
		}
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		// Postgres spells infinity "Infinity"; ParseFloat knows it.
		return 0, false
	}
	return f, true
}

func diffFloatsClose(a, b float64) bool {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		return a == b
	}
	return math.Abs(a-b) <= diffFloatAbsTol+diffFloatRelTol*math.Max(math.Abs(a), math.Abs(b))
}

// diffCellsEqual compares one value: exactly, or floats with the tolerance.
func diffCellsEqual(a, b []byte, oid uint32, format int16) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if isFloatOID(oid) {
		fa, oka := diffFloatOf(a, oid, format)
		fb, okb := diffFloatOf(b, oid, format)
		if oka && okb {
			if diffFloatsClose(fa, fb) {
				return true
			}
			if format == 0 {
				// With extra_float_digits below 1 Postgres rounds to fewer
				// digits, and a last-bit difference may round the other
				// way: one unit of the last printed digit apart is equal.
				return math.Abs(fa-fb) <= 1.000001*math.Max(diffPrintedUnit(string(a)), diffPrintedUnit(string(b)))
			}
		}
	}
	return bytes.Equal(a, b)
}

// diffPrintedUnit is the value of one unit in the last digit of a float's text:
// 1e-8 for "5028.90257812", 1e+10 for "1.2345e+14".
func diffPrintedUnit(s string) float64 {
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return 0
		}
		exp = e
	}
	decimals := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		decimals = len(mant) - i - 1
	}
	return math.Pow(10, float64(exp-decimals))
}

// diffSortKey orders rows for the multiset comparison: exact columns first, then
// floats rounded, so that rows whose floats differ in the last bits still
// meet their counterpart.
func diffSortKey(row [][]byte, fields []pgconn.FieldDescription) string {
	var b strings.Builder
	for pass := 0; pass < 2; pass++ {
		for i, v := range row {
			fl := i < len(fields) && isFloatOID(fields[i].DataTypeOID)
			if fl != (pass == 1) {
				continue
			}
			if v == nil {
				b.WriteString("\x00N")
			} else if fl {
				f, ok := diffFloatOf(v, fields[i].DataTypeOID, fields[i].Format)
				if f == 0 {
					f = 0 // -0 sorts with 0: which zero a float aggregate ends on is order's
				}
				if ok {
					fmt.Fprintf(&b, "\x00F%.9g", f)
				} else {
					b.WriteString("\x00V" + string(v))
				}
			} else {
				b.WriteString("\x00V" + string(v))
			}
		}
	}
	return b.String()
}

func diffRowsEqual(a, b [][]byte, fields []pgconn.FieldDescription, cols []int) bool {
	if len(a) != len(b) {
		return false
	}
	if cols == nil {
		for i := range a {
			cols = append(cols, i)
		}
	}
	for _, i := range cols {
		if i >= len(a) {
			return false
		}
		var oid uint32
		var format int16
		if i < len(fields) {
			oid, format = fields[i].DataTypeOID, fields[i].Format
		}
		if !diffCellsEqual(a[i], b[i], oid, format) {
			return false
		}
	}
	return true
}

func diffRenderRow(row [][]byte) string {
	var b strings.Builder
	for i, v := range row {
		if i > 0 {
			b.WriteString(" | ")
		}
		if v == nil {
			b.WriteString("NULL")
		} else {
			fmt.Fprintf(&b, "%q", v)
		}
	}
	return b.String()
}

func diffFieldList(fds []pgconn.FieldDescription) string {
	var b strings.Builder
	renderFields(&b, fds)
	return strings.TrimSuffix(b.String(), "\n")
}

// diffErrFields is what a client sees of an error, minus the server's source
// location (file, line, routine), which only Postgres itself can know.
func diffErrFields(err error) string {
	if err == nil {
		return "<none>"
	}
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return "non-Postgres error: " + err.Error()
	}
	return fmt.Sprintf("%s %s %q detail=%q hint=%q position=%d where=%q", e.Severity, e.Code, e.Message, e.Detail, e.Hint, e.Position, e.Where)
}

// Kinds of difference, for telling known bugs from new ones.
const (
	diffKindError   = "error"
	diffKindColumns = "columns"
	diffKindOrigin  = "column origin" // only the table OID and attribute number of columns differ
	diffKindRows    = "rows"
)

// diffCompare lists every difference between the direct and the proxied
// answer, and the kinds of difference found; nil means equal.
func diffCompare(st *diffStmt, d, p diffResult) ([]string, map[string]bool) {
	var diffs []string
	kinds := map[string]bool{}
	if de, pe := diffErrFields(d.err), diffErrFields(p.err); de != pe {
		diffs = append(diffs, fmt.Sprintf("error:\n  direct: %s\n  proxy:  %s", de, pe))
		kinds[diffKindError] = true
	}
	if d.err != nil || p.err != nil {
		// Rows sent before an error are not part of the answer a client keeps.
		return diffs, kinds
	}
	if dl, pl := diffFieldList(d.fields), diffFieldList(p.fields); dl != pl {
		diffs = append(diffs, fmt.Sprintf("columns:\n  direct:\n%s\n  proxy:\n%s", diffIndent(dl), diffIndent(pl)))
		if diffSameExceptOrigin(d.fields, p.fields) {
			kinds[diffKindOrigin] = true
		} else {
			kinds[diffKindColumns] = true
		}
	}
	if st.Compare == diffCmpColumns {
		return diffs, kinds
	}
	n := len(diffs)
	defer func() {
		if len(diffs) > n {
			kinds[diffKindRows] = true
		}
	}()
	if d.tag != p.tag {
		diffs = append(diffs, fmt.Sprintf("command tag: direct %q, proxy %q", d.tag, p.tag))
	}
	if len(d.rows) != len(p.rows) {
		diffs = append(diffs, fmt.Sprintf("row count: direct %d, proxy %d", len(d.rows), len(p.rows)))
	}
	if st.Order == nil {
		if st.limitCut(len(d.rows)) {
			// LIMIT without ORDER BY and as many rows as the limit: which
			// rows is up to the server.
			return diffs, kinds
		}
		diffs = append(diffs, diffCompareMultiset(d, p)...)
	} else {
		diffs = append(diffs, diffCompareOrdered(st.Order, d, p)...)
	}
	return diffs, kinds
}

// diffSameExceptOrigin reports whether two column lists differ only in the
// table OID and attribute number Postgres gives plain column references.
func diffSameExceptOrigin(a, b []pgconn.FieldDescription) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.TableOID, x.TableAttributeNumber, y.TableOID, y.TableAttributeNumber = 0, 0, 0, 0
		if x.Name != y.Name || x != y {
			return false
		}
	}
	return true
}

// limitCut reports whether an unordered statement's LIMIT may have chosen
// which rows to return.
func (st *diffStmt) limitCut(rows int) bool {
	return st.Offset || (st.Limit > 0 && int64(rows) >= st.Limit)
}

func diffIndent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

const diffMaxRowDiffs = 8

func diffCompareMultiset(d, p diffResult) []string {
	type keyed struct {
		key string
		row [][]byte
	}
	sorted := func(rows [][][]byte) []keyed {
		out := make([]keyed, len(rows))
		for i, r := range rows {
			out[i] = keyed{diffSortKey(r, d.fields), r}
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].key < out[j].key })
		return out
	}
	ds, ps := sorted(d.rows), sorted(p.rows)
	var diffs []string
	i, j := 0, 0
	for (i < len(ds) || j < len(ps)) && len(diffs) < diffMaxRowDiffs {
		switch {
		case i < len(ds) && j < len(ps) && diffRowsEqual(ds[i].row, ps[j].row, d.fields, nil):
			i++
			j++
		case j >= len(ps) || (i < len(ds) && ds[i].key < ps[j].key):
			diffs = append(diffs, "only direct: "+diffRenderRow(ds[i].row))
			i++
		default:
			diffs = append(diffs, "only proxy:  "+diffRenderRow(ps[j].row))
			j++
		}
	}
	return diffs
}

// diffCompareOrdered compares rows as a sequence of groups of equal sort keys,
// each group a multiset; a group that a LIMIT or OFFSET may have cut compares
// only by its keys.
func diffCompareOrdered(o *diffOrder, d, p diffResult) []string {
	if len(d.rows) != len(p.rows) {
		// A positional diff would be noise: show which rows differ.
		var diffs []string
		for _, s := range diffCompareMultiset(d, p) {
			diffs = append(diffs, "as multisets: "+s)
		}
		return diffs
	}
	var diffs []string
	for start := 0; start < len(d.rows) && len(diffs) < diffMaxRowDiffs; {
		end := start + 1
		for end < len(d.rows) && diffRowsEqual(d.rows[start], d.rows[end], nil, o.Keys) {
			end++ // exact bytes on Postgres's side delimit a group of ties
		}
		cut := (o.Limit > 0 && end == len(d.rows) && int64(len(d.rows)) >= o.Limit) || (o.Offset && start == 0)
		if cut || end-start == 1 {
			for k := start; k < end; k++ {
				cols := o.Keys
				if !cut {
					cols = nil
				}
				if !diffRowsEqual(d.rows[k], p.rows[k], d.fields, cols) {
					diffs = append(diffs, fmt.Sprintf("row %d:\n  direct: %s\n  proxy:  %s", k+1, diffRenderRow(d.rows[k]), diffRenderRow(p.rows[k])))
				}
			}
		} else {
			sub := diffCompareMultiset(diffResult{fields: d.fields, rows: d.rows[start:end]}, diffResult{fields: d.fields, rows: p.rows[start:end]})
			for _, s := range sub {
				diffs = append(diffs, fmt.Sprintf("rows %d-%d (equal sort keys): %s", start+1, end, s))
			}
		}
		start = end
	}
	return diffs
}

// diffSession is one pair of sessions with the same settings: one straight
// to Postgres, one through pgrollup.
type diffSession struct {
	direct, proxy *pgconn.PgConn
	zone          string // the TimeZone last set, for the SET flavor
}

// diffRunner runs statements on both sides and keeps the score.
type diffRunner struct {
	t        *testing.T // the top-level test, for cleanup and metrics
	fx       *diffFixture
	sessions map[string]*diffSession
	stats    map[string]*diffKindStats
	failures int
	// reported caps the detailed failure messages; every failure still counts.
	reported int
	metrics  diffMetrics
	total    time.Duration
	// lightMisses runs statements that EXPLAIN says pass through in one
	// execution mode only, most of the time.
	lightMisses bool
	// knownOnly: failures that are only a known bug (diffKnownBugs) are counted
	// in known rather than reported one by one.
	knownOnly    bool
	known        map[string]int
	knownExample map[string]string
}

type diffKindStats struct {
	statements, executions, hits, mustHit, fallbacks, errors int
	reasons                                                  map[string]int
	chosen                                                   map[string]int
	unexpectedHits                                           int
	elapsed                                                  time.Duration
	// Where the time went: EXPLAIN (ROLLUP), executions (both sides at
	// once), metrics.
	explainTime, execTime, scrapeTime time.Duration
	directTime, proxyTime             time.Duration
}

func newDiffRunner(t *testing.T, fx *diffFixture) *diffRunner {
	r := &diffRunner{t: t, fx: fx, sessions: map[string]*diffSession{}, stats: map[string]*diffKindStats{},
		known: map[string]int{}, knownExample: map[string]string{}}
	t.Cleanup(r.close)
	r.resync(t)
	return r
}

// resync takes a new baseline of the proxy's metrics, after other clients
// (psql, pgjdbc) ran statements through it.
func (r *diffRunner) resync(t *testing.T) {
	m, err := diffScrape(r.fx.proxy)
	if err != nil {
		t.Fatal(err)
	}
	r.metrics = m
}

func (r *diffRunner) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range r.sessions {
		s.direct.Close(ctx)
		s.proxy.Close(ctx)
	}
	r.sessions = map[string]*diffSession{}
}

func diffSessionKey(zone, flavor string) string {
	if flavor == diffSetFlavor {
		return flavor
	}
	return zone + "|" + flavor
}

func (r *diffRunner) session(ctx context.Context, zone, flavor string) (*diffSession, error) {
	key := diffSessionKey(zone, flavor)
	if s := r.sessions[key]; s != nil && (s.direct.IsClosed() || s.proxy.IsClosed()) {
		// Through a pgrollup that died (and was restarted) since.
		s.direct.Close(ctx)
		s.proxy.Close(ctx)
		delete(r.sessions, key)
	}
	if s := r.sessions[key]; s != nil {
		if s.zone != zone {
			// Only the SET flavor gets here: switch both sessions' zone.
			for _, c := range []*pgconn.PgConn{s.direct, s.proxy} {
				if _, err := c.Exec(ctx, "SET TIME ZONE '"+zone+"'").ReadAll(); err != nil {
					return nil, fmt.Errorf("SET TIME ZONE: %w", err)
				}
			}
			s.zone = zone
		}
		return s, nil
	}
	settings := map[string]string{"TimeZone": zone}
	for k, v := range diffFlavors[flavor] {
		settings[k] = v
	}
	s := diffSession{zone: zone}
	for _, side := range []struct {
		tg  target
		dst **pgconn.PgConn
	}{{r.fx.direct, &s.direct}, {r.fx.via, &s.proxy}} {
		conn, err := diffConnect(ctx, side.tg, settings)
		if err != nil {
			if s.direct != nil {
				s.direct.Close(ctx)
			}
			return nil, fmt.Errorf("%s: %w", side.tg.name, err)
		}
		*side.dst = conn.PgConn()
		for _, init := range diffFlavorInit[flavor] {
			if _, err := conn.PgConn().Exec(ctx, init).ReadAll(); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", side.tg.name, init, err)
			}
		}
	}
	r.sessions[key] = &s
	return &s, nil
}

// diffOutcome is what happened to one statement.
type diffOutcome struct {
	fields   []pgconn.FieldDescription // Postgres's, of the first execution
	rows     int
	directPg *pgconn.PgError // Postgres's error, if any
	proxyErr bool
	diffs    []string
	kinds    map[string]bool
	explain  string // chosen rollup, or "" with reason
	reason   string
	hits     map[string]float64 // rollup -> executions it answered
	// finished: rollup -> executions the warehouse finished around the
	// aggregate core it answered.
	finished  map[string]float64
	executed  int
	fallbacks float64
	directErr bool
	crashed   bool
	// missReason is the reason label of pgrollup_rollup_misses_total that
	// grew while the statement ran.
	missReason string
}

func (o diffOutcome) hitAll() bool { return allExecutions(o.hits, o) }

// finishedAll: the warehouse finished every execution around a rollup's
// answer.
func (o diffOutcome) finishedAll() bool { return allExecutions(o.finished, o) }

func allExecutions(by map[string]float64, o diffOutcome) bool {
	n := 0.0
	for _, v := range by {
		n += v
	}
	return int(n) == o.executed && o.fallbacks == 0
}

// run compares one statement in every execution mode and checks what
// answered it. It reports failures itself and returns the outcome.
func (r *diffRunner) run(t *testing.T, ctx context.Context, st *diffStmt, modes []diffMode) diffOutcome {
	t.Helper()
	start := time.Now()
	var out diffOutcome
	ks := r.stats[st.Kind]
	if ks == nil {
		ks = &diffKindStats{reasons: map[string]int{}, chosen: map[string]int{}}
		r.stats[st.Kind] = ks
	}
	ks.statements++
	defer func() {
		d := time.Since(start)
		ks.elapsed += d
		r.total += d
	}()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	s, err := r.session(sctx, st.Zone, st.Flavor)
	if err != nil {
		r.fail(t, st, fmt.Sprintf("cannot open sessions: %v", err))
		return out
	}
	out.kinds = map[string]bool{}
	t0 := time.Now()
	out.explain, out.reason = diffExplain(sctx, s.proxy, st)
	t1 := time.Now()
	ks.explainTime += t1.Sub(t0)
	if r.lightMisses && out.explain == "" && len(st.Params) == 0 && len(modes) > 1 && ks.statements%4 != 0 {
		// Passed through, both answers are Postgres's: one mode checks
		// the relay; every fourth such statement still gets all modes.
		modes = modes[:1]
	}
	for _, m := range modes {
		var d, p diffResult
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			d = diffExec(sctx, s.direct, st, m)
			ks.directTime += time.Since(t)
		}()
		tp := time.Now()
		p = diffExec(sctx, s.proxy, st, m)
		ks.proxyTime += time.Since(tp)
		wg.Wait()
		if out.executed == 0 {
			out.fields, out.rows = d.fields, len(d.rows)
		}
		out.executed++
		if d.err != nil {
			out.directErr = true
			errors.As(d.err, &out.directPg)
		}
		out.proxyErr = out.proxyErr || p.err != nil
		diffs, kinds := diffCompare(st, d, p)
		for _, df := range diffs {
			out.diffs = append(out.diffs, m.name+": "+df)
		}
		for k := range kinds {
			out.kinds[k] = true
		}
		if s.proxy.IsClosed() {
			// Perhaps pgrollup is dying: give it a moment to be seen exiting.
			select {
			case <-r.fx.proxy.exited:
			case <-time.After(3 * time.Second):
			}
		}
		if s.direct.IsClosed() || s.proxy.IsClosed() {
			out.diffs = append(out.diffs, m.name+": a connection was closed: the session is gone")
			out.kinds["connection"] = true
			delete(r.sessions, diffSessionKey(st.Zone, st.Flavor))
			break
		}
	}
	ks.executions += out.executed
	if last, died := r.fx.crashed(ctx, t); died {
		// Every session through the old process is gone.
		r.close()
		r.resync(t)
		out.diffs = append(out.diffs, "pgrollup CRASHED running this statement (it was restarted):\n"+last)
		out.kinds["crash"] = true
		out.crashed = true
	}
	t2 := time.Now()
	ks.execTime += t2.Sub(t1)
	after, err := diffScrape(r.fx.proxy)
	ks.scrapeTime += time.Since(t2)
	if err != nil {
		r.fail(t, st, err.Error())
		return out
	}
	// Answers computed whole from a rollup; a statement the warehouse
	// finishes is the warehouse's answer (differential_finish_test.go).
	out.hits = after.withLabel("mode", "duckdb").deltaByLabel(r.metrics, "pgrollup_rollup_hits_total", "rollup")
	out.finished = after.withLabel("mode", "finished_by_warehouse").deltaByLabel(r.metrics, "pgrollup_rollup_hits_total", "rollup")
	out.fallbacks = after.sum("pgrollup_rollup_fallbacks_total") - r.metrics.sum("pgrollup_rollup_fallbacks_total")
	if misses := after.deltaByLabel(r.metrics, "pgrollup_rollup_misses_total", "reason"); len(misses) > 0 {
		// The engine's own reason for passing the statement through.
		out.missReason = strings.Join(diffSortedKeys(misses), "+")
	}
	r.metrics = after

	if out.directErr {
		ks.errors++
	}
	hit := out.hitAll()
	if hit {
		ks.hits++
		ks.chosen[strings.Join(diffSortedKeys(out.hits), "+")]++
	} else {
		switch {
		case out.fallbacks > 0:
			ks.reasons["fell back"]++
		case out.missReason != "":
			ks.reasons[out.missReason]++
		default:
			ks.reasons["not a rollup table"]++
		}
	}
	if out.fallbacks > 0 {
		ks.fallbacks++
	}
	var problems []string
	if len(out.diffs) > 0 {
		if bug := diffKnownBugOf(st, out); bug != "" && r.knownOnly {
			// Counted, and failed once by its own minimised case in
			// regressions, rather than once per statement here.
			r.known[bug]++
			if r.knownExample[bug] == "" {
				r.knownExample[bug] = fmt.Sprintf("%s %s (TimeZone %s): %s", st.Kind, st.Name, st.Zone, st.SQL)
			}
		} else {
			problems = append(problems, "WRONG ANSWER (direct vs proxy):\n"+strings.Join(out.diffs, "\n"))
		}
	}
	// EXPLAIN (ROLLUP) and the execution must agree on what answers; it
	// cannot know a parameter's value.
	nHits := 0.0
	for rollup, n := range out.hits {
		nHits += n
		if rollup != out.explain && len(st.Params) == 0 {
			problems = append(problems, fmt.Sprintf("answered by rollup %s %v time(s), but EXPLAIN (ROLLUP) said %q (%s)", rollup, n, out.explain, out.reason))
		}
	}
	if out.explain != "" && nHits == 0 && out.fallbacks == 0 {
		problems = append(problems, fmt.Sprintf("EXPLAIN (ROLLUP) chose %s but no execution was answered from it", out.explain))
	}
	if out.fallbacks > 0 && !out.directErr {
		problems = append(problems, fmt.Sprintf("%v execution(s) fell back to the warehouse although Postgres answers without an error", out.fallbacks))
	}
	if st.MustHit {
		ks.mustHit++
		if !hit && !out.directErr {
			reason := out.reason
			if out.missReason != "" {
				reason = out.missReason + ": " + reason
			}
			problems = append(problems, fmt.Sprintf("must be answered from a rollup (%s) but was not: %s", st.Why, reason))
		}
	} else if hit && st.Kind == "rewrite" {
		ks.unexpectedHits++
	}
	if len(problems) > 0 {
		r.fail(t, st, strings.Join(problems, "\n"))
	}
	return out
}

func (r *diffRunner) fail(t *testing.T, st *diffStmt, msg string) {
	t.Helper()
	r.failures++
	r.reported++
	if r.reported > 40 {
		if r.reported == 41 {
			t.Errorf("more failures follow; only their count is reported")
		} else {
			t.Fail()
		}
		return
	}
	var params string
	if len(st.Params) > 0 {
		var ps []string
		for _, p := range st.Params {
			if p.Value == nil {
				ps = append(ps, fmt.Sprintf("NULL::%d", p.OID))
			} else {
				ps = append(ps, fmt.Sprintf("%q::%d", *p.Value, p.OID))
			}
		}
		params = "\nparams: " + strings.Join(ps, ", ")
	}
	flavor := ""
	if st.Flavor != "" {
		flavor = fmt.Sprintf(" %v", diffFlavors[st.Flavor])
	}
	t.Errorf("%s %s (TimeZone %s%s):\n%s%s\n%s", st.Kind, st.Name, st.Zone, flavor, st.SQL, params, msg)
}

// diffExplain asks the proxy what it would do with st, in st's session.
func diffExplain(ctx context.Context, conn *pgconn.PgConn, st *diffStmt) (chosen, reason string) {
	if len(st.Params) > 0 {
		// EXPLAIN decides without the parameters' values.
		return "", "parameters"
	}
	results, err := conn.Exec(ctx, "EXPLAIN (ROLLUP) "+st.SQL).ReadAll()
	if err != nil {
		return "", "explain failed: " + err.Error()
	}
	if len(results) != 1 {
		return "", "explain: no result"
	}
	var reasons []string
	for _, row := range results[0].Rows {
		if len(row) < 3 {
			continue
		}
		if string(row[1]) == "chosen" {
			return string(row[0]), "chosen"
		}
		if string(row[1]) == "top_n" {
			continue // the subquery's rollup; the chosen row follows
		}
		if row[0] == nil {
			return "", string(row[2])
		}
		reasons = append(reasons, string(row[0])+": "+string(row[2]))
	}
	return "", strings.Join(reasons, "; ")
}

// diffMetrics holds every sample of a /metrics page by series.
type diffMetrics map[string]float64

func diffScrape(p *proxyProc) (diffMetrics, error) {
	code, body, err := p.adminGet("/metrics")
	if err != nil || code != 200 {
		return nil, fmt.Errorf("GET /metrics: %d %v", code, err)
	}
	snap, err := promtext.Parse(body)
	return diffMetrics(snap), err
}

func (s diffMetrics) sum(name string) float64 {
	total := 0.0
	for k, v := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			total += v
		}
	}
	return total
}

// deltaByLabel returns, per value of label, how much name grew since before.
func (s diffMetrics) deltaByLabel(before diffMetrics, name, label string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if !strings.HasPrefix(k, name+"{") {
			continue
		}
		d := v - before[k]
		if d == 0 {
			continue
		}
		lv, _ := diffMetricLabel(k, label)
		out[lv] += d
	}
	return out
}

func diffMetricLabel(series, label string) (string, bool) {
	open := strings.IndexByte(series, '{')
	if open < 0 || !strings.HasSuffix(series, "}") {
		return "", false
	}
	for _, kv := range splitLabels(series[open+1 : len(series)-1]) {
		k, v, _ := strings.Cut(kv, "=")
		if k == label {
			s, err := strconv.Unquote(v)
			return s, err == nil
		}
	}
	return "", false
}

// summary prints the tally of one kind of statement and returns its hit rate.
func (r *diffRunner) summary(kind string) float64 {
	ks := r.stats[kind]
	if ks == nil || ks.statements == 0 {
		return 0
	}
	rate := float64(ks.hits) / float64(ks.statements)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d statements, %d executions per side, %d answered from a rollup (hit rate %.1f%%), %d must-hit, %d with a Postgres error, %d with a fallback, %s (EXPLAIN %s, executions %s (Postgres %s, pgrollup %s), metrics %s)",
		kind, ks.statements, ks.executions, ks.hits, 100*rate, ks.mustHit, ks.errors, ks.fallbacks, ks.elapsed.Round(time.Millisecond),
		ks.explainTime.Round(time.Millisecond), ks.execTime.Round(time.Millisecond), ks.directTime.Round(time.Millisecond), ks.proxyTime.Round(time.Millisecond), ks.scrapeTime.Round(time.Millisecond))
	if ks.unexpectedHits > 0 {
		fmt.Fprintf(&b, "\n  %d answered from a rollup although rewrite's tests expect a passthrough (with this configuration's extra rollups that can be right; the answers were compared)", ks.unexpectedHits)
	}
	b.WriteString("\n  answered by: ")
	b.WriteString(diffTally(ks.chosen))
	b.WriteString("\n  passed through because: ")
	b.WriteString(diffTally(ks.reasons))
	r.t.Log(b.String())
	return rate
}

func diffTally(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var list []kv
	for k, v := range m {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].v != list[j].v {
			return list[i].v > list[j].v
		}
		return list[i].k < list[j].k
	})
	var parts []string
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s %d", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}
