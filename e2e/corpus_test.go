package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// The corpus (e2e/testdata/corpus, see its README) is SQL that real
// generators and BI tools wrote, aimed at rollups a data engineer would
// declare over the differential suite's dataset for their dashboards.
// Every statement records where it came from and whether a rollup can
// answer it exactly. TestCorpus compares every statement's answer through
// pgrollup with Postgres's and measures how many of the answerable ones are
// served; `make bench-corpus` prints the measurement.

// corpusDir holds the corpus files, one per generator or tool.
const corpusDir = "testdata/corpus"

// corpusEntry is one statement of the corpus.
type corpusEntry struct {
	ID      string `json:"id"`
	Tool    string `json:"tool"`    // the generator or BI tool that wrote it
	Version string `json:"version"` // the generator's version, or the source's
	// Source is how the statement was generated (the generator's call), or
	// the file of the tool's source the template follows.
	Source string        `json:"source"`
	SQL    string        `json:"sql"`
	Params []corpusParam `json:"params,omitempty"` // bound through the extended protocol
	Zone   string        `json:"zone,omitempty"`   // the session's TimeZone; UTC if empty
	// Session is a diffFlavors key: the settings the tool's sessions carry.
	Session string `json:"session,omitempty"`
	// Answerable says whether a declared rollup (Rollup) can answer the
	// statement exactly; if not, Why says what keeps every rollup from it.
	Answerable bool   `json:"answerable"`
	Rollup     string `json:"rollup,omitempty"`
	Why        string `json:"why,omitempty"`
}

// corpusParam is a bound value in text format, of the type the driver
// gives in Parse ("unknown": none, as node-postgres sends).
type corpusParam struct {
	Type  string  `json:"type"`
	Value *string `json:"value"`
}

// corpusTypeOIDs are the parameter types the corpus's drivers declare.
var corpusTypeOIDs = map[string]uint32{
	"unknown": 0, "text": 25, "varchar": 1043, "int4": 23, "int8": 20, "numeric": 1700,
	"float8": 701, "bool": 16, "date": 1082, "timestamp": 1114, "timestamptz": 1184,
}

// corpusRollups are the rollups the corpus's dashboards are aimed at, as a
// data engineer would declare them for orders: daily by status and customer
// attributes, by store region (an inner join, so a rollup of its own),
// hourly for time series, by the order date, by the local timestamp, and
// the paid orders alone.
func corpusRollups() []map[string]any {
	return []map[string]any{
		{
			"name": "orders_daily", "table": "public.orders",
			"dimensions":     []string{"status", "customers.country", "customers.segment"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)", "count(amount)", "min(amount)", "max(amount)",
				"sum(quantity)", "count(quantity)", "sum(price)", "count(price)", "count(distinct customer_id)"},
		},
		{
			"name": "orders_region_monthly", "table": "public.orders",
			"dimensions":     []string{"stores.region", "status"},
			"time_dimension": "created_at", "granularity": "month",
			"measures": []string{"count(*)", "sum(amount)", "count(amount)"},
		},
		{
			"name": "orders_hourly", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "created_at", "granularity": "hour",
			"measures": []string{"count(*)", "sum(amount)", "count(amount)", "sum(price)", "count(price)"},
		},
		{
			"name": "orders_by_order_date", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "order_date", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)", "count(amount)", "sum(quantity)"},
		},
		{
			"name": "orders_local_daily", "table": "public.orders",
			"dimensions":     []string{"status"},
			"time_dimension": "local_ts", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)"},
		},
		{
			"name": "paid_by_country", "table": "public.orders",
			"dimensions":     []string{"customers.country"},
			"time_dimension": "created_at", "granularity": "day",
			"measures": []string{"count(*)", "sum(amount)"},
			"filters":  []string{"status = 'paid'"},
		},
	}
}

// loadCorpus reads every corpus file and checks its annotations.
func loadCorpus() ([]corpusEntry, error) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no corpus files in %s", corpusDir)
	}
	rollups := map[string]bool{}
	for _, r := range corpusRollups() {
		rollups[r["name"].(string)] = true
	}
	var all []corpusEntry
	seen := map[string]bool{}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var entries []corpusEntry
		if err := json.Unmarshal(text, &entries); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, e := range entries {
			switch {
			case e.ID == "" || seen[e.ID]:
				return nil, fmt.Errorf("%s: empty or repeated id %q", f, e.ID)
			case e.Tool == "" || e.Version == "" || e.Source == "":
				return nil, fmt.Errorf("%s: %s does not say where it came from (tool, version, source)", f, e.ID)
			case e.Answerable && !rollups[e.Rollup]:
				return nil, fmt.Errorf("%s: %s is answerable by %q, which is not a corpus rollup", f, e.ID, e.Rollup)
			case !e.Answerable && e.Why == "":
				return nil, fmt.Errorf("%s: %s is not answerable but does not say why", f, e.ID)
			case e.Session != "" && diffFlavors[e.Session] == nil:
				return nil, fmt.Errorf("%s: %s: unknown session %q", f, e.ID, e.Session)
			}
			for _, p := range e.Params {
				if _, ok := corpusTypeOIDs[p.Type]; !ok {
					return nil, fmt.Errorf("%s: %s: unknown parameter type %q", f, e.ID, p.Type)
				}
			}
			seen[e.ID] = true
			all = append(all, e)
		}
	}
	return all, nil
}

// matchingActions reads docs/matching.md's table of reasons: what the user
// can do about each.
func matchingActions() (map[string]string, error) {
	text, err := os.ReadFile(filepath.Join("..", "docs", "matching.md"))
	if err != nil {
		return nil, err
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| [^|]* \\| [^|]* \\| ([^|]*) \\|$")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(text), -1) {
		out[m[1]] = strings.TrimSpace(m[2])
	}
	if len(out) < 20 {
		return nil, fmt.Errorf("docs/matching.md: only %d reasons read from its table", len(out))
	}
	return out, nil
}

// corpusResult is what happened to one corpus statement.
type corpusResult struct {
	e      corpusEntry
	served string // the rollup that answered every execution, "" if none
	reason string // the refusal's code, "" if served
	detail string // the refusal's message (EXPLAIN (ROLLUP)), when there is one
	wrong  bool
	// cores are the rollups that answer the aggregate cores of a statement
	// that was not served, when it wraps them (a WITH query or a subquery
	// in FROM): what answering the core and letting the warehouse finish
	// the rest could serve, unless the statement also reads a table
	// itself around them (outerTable: a top-N join).
	cores      []string
	outerTable bool
}

// TestCorpus runs every corpus statement directly on Postgres and through
// pgrollup, in the simple protocol with text results and the extended one
// with binary results (bound parameters in text format, with the types the
// generator's driver declares). It requires equal answers (values, column
// names and types), and a documented reason code for every statement that
// passes through. It does not require a share of statements to be served:
// it measures it, and `make bench-corpus` (PGROLLUP_CORPUS_REPORT) prints
// the measurement.
func TestCorpus(t *testing.T) {
	entries, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	actions, err := matchingActions()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 5*time.Minute)
	// PGROLLUP_CORPUS_LOCALE measures the corpus on a database of another
	// locale (C.UTF-8, en_US.UTF-8: the official Docker image's default).
	locale := os.Getenv("PGROLLUP_CORPUS_LOCALE")
	fx := startDiffFixtureWith(t, "corpus", corpusRollups(), locale)
	r := newDiffRunner(t, fx)
	var results []corpusResult
	for _, e := range entries {
		st := &diffStmt{Kind: "corpus", Name: e.ID, Zone: e.Zone, Flavor: e.Session, SQL: e.SQL}
		if st.Zone == "" {
			st.Zone = "UTC"
		}
		for _, p := range e.Params {
			st.Params = append(st.Params, diffParam{OID: corpusTypeOIDs[p.Type], Value: p.Value})
		}
		if ok, why := diffPrepare(st); !ok {
			t.Fatalf("%s: the suite cannot run it: %s", e.ID, why)
		}
		failures := r.failures
		out := r.run(t, ctx, st, []diffMode{diffModeSimpleText, diffModeExtBinary})
		res := corpusResult{e: e, wrong: r.failures > failures && len(out.diffs) > 0}
		switch {
		case out.hitAll():
			res.served = strings.Join(diffSortedKeys(out.hits), "+")
		case out.finishedAll():
			res.served = strings.Join(diffSortedKeys(out.finished), "+") + finishedSuffix
		default:
			res.reason, res.detail = corpusReason(out)
			if res.detail == "" && len(e.Params) > 0 {
				res.detail = corpusExplainInlined(ctx, r, st, res.reason)
			}
			if len(e.Params) == 0 {
				res.cores, res.outerTable = corpusCoreRollups(ctx, r, st)
			}
			action, documented := actions[res.reason]
			switch {
			case res.reason == "":
				t.Errorf("%s passed through with no reason (EXPLAIN (ROLLUP): %q)", e.ID, out.reason)
			case !documented || action == "":
				t.Errorf("%s passed through with reason %q, which docs/matching.md does not tell the user what to do about", e.ID, res.reason)
			}
		}
		results = append(results, res)
		if ctx.Err() != nil {
			t.Fatalf("out of time after %s", e.ID)
		}
	}
	if locale == "" {
		locale = "C"
	}
	report := fmt.Sprintf("database locale: %s\n", locale) + corpusReport(results, actions)
	t.Log("\n" + report)
	if path := os.Getenv("PGROLLUP_CORPUS_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}
}

// corpusReason is the code of a passthrough's reason, and its message: the
// code from the misses counter (the engine's own decision, with the bound
// values) or else from EXPLAIN (ROLLUP), and the message of the candidate
// EXPLAIN (ROLLUP) gave that code ("rollup: code: message; ..." for
// candidates, "code: message" when there were none).
func corpusReason(out diffOutcome) (code, detail string) {
	if out.fallbacks > 0 {
		return "fell_back", "the rollup's answer failed and the warehouse answered"
	}
	code = out.missReason
	for _, cand := range strings.Split(out.reason, "; ") {
		parts := strings.SplitN(cand, ": ", 3)
		if len(parts) == 2 {
			parts = append([]string{""}, parts...)
		}
		if len(parts) != 3 || (code != "" && parts[1] != code) {
			continue
		}
		return parts[1], parts[2]
	}
	return code, ""
}

// corpusExplainInlined asks EXPLAIN (ROLLUP), in the statement's session,
// about the statement with its bound values written in as typed literals
// (EXPLAIN decides without values): the message of the reason code, for the
// report. The answer itself was decided with the values bound.
func corpusExplainInlined(ctx context.Context, r *diffRunner, st *diffStmt, code string) string {
	s, err := r.session(ctx, st.Zone, st.Flavor)
	if err != nil {
		return ""
	}
	sql := st.SQL
	for i := len(st.Params); i >= 1; i-- {
		p := st.Params[i-1]
		lit, name := "NULL", corpusTypeName(p.OID)
		_, isInt := strconv.ParseInt(deref(p.Value), 10, 64)
		switch {
		case p.Value != nil && name == "unknown" && isInt == nil:
			lit = *p.Value // LIMIT '3' would not parse as LIMIT $1 does
		case p.Value != nil:
			lit = "'" + strings.ReplaceAll(*p.Value, "'", "''") + "'"
		}
		if name != "unknown" {
			lit += "::" + name
		}
		sql = strings.ReplaceAll(sql, "$"+strconv.Itoa(i), lit)
	}
	inlined := *st
	inlined.SQL, inlined.Params = sql, nil
	_, reason := diffExplain(ctx, s.proxy, &inlined)
	if _, detail := corpusReason(diffOutcome{reason: reason, missReason: code}); detail != "" {
		return detail
	}
	// Written in, the values may meet another rule first: say which.
	if other, detail := corpusReason(diffOutcome{reason: reason}); detail != "" {
		return fmt.Sprintf("(with the values written in: %s: %s)", other, detail)
	}
	return ""
}

// corpusCoreRollups asks EXPLAIN (ROLLUP), in the statement's session,
// about each query a statement wraps (its WITH queries and the subqueries
// in its FROM, joined or not), and returns for each the rollup chosen ("-"
// if none), nil if it wraps none, and whether the statement's own FROM also
// reads a table.
func corpusCoreRollups(ctx context.Context, r *diffRunner, st *diffStmt) (rollups []string, outerTable bool) {
	tree, err := pg_query.Parse(st.SQL)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
		return nil, false
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	var cores []*pg_query.Node
	ctes := map[string]bool{}
	if sel.WithClause != nil {
		for _, cte := range sel.WithClause.Ctes {
			cores = append(cores, cte.GetCommonTableExpr().GetCtequery())
			ctes[cte.GetCommonTableExpr().GetCtename()] = true
		}
	}
	var walk func(n *pg_query.Node)
	walk = func(n *pg_query.Node) {
		switch {
		case n.GetRangeVar() != nil:
			rv := n.GetRangeVar()
			outerTable = outerTable || rv.Schemaname != "" || !ctes[rv.Relname]
		case n.GetRangeSubselect() != nil:
			cores = append(cores, n.GetRangeSubselect().GetSubquery())
		case n.GetJoinExpr() != nil:
			walk(n.GetJoinExpr().GetLarg())
			walk(n.GetJoinExpr().GetRarg())
		}
	}
	for _, n := range sel.FromClause {
		walk(n)
	}
	s, err := r.session(ctx, st.Zone, st.Flavor)
	if err != nil {
		return nil, outerTable
	}
	for _, core := range cores {
		sql, err := pg_query.Deparse(&pg_query.ParseResult{Version: tree.Version, Stmts: []*pg_query.RawStmt{{Stmt: core}}})
		if err != nil {
			continue
		}
		chosen, _ := diffExplain(ctx, s.proxy, &diffStmt{SQL: sql})
		if chosen == "" {
			chosen = "-"
		}
		rollups = append(rollups, chosen)
	}
	return rollups, outerTable
}

// corpusTypeName is the corpus's name of a parameter type.
func corpusTypeName(oid uint32) string {
	for name, o := range corpusTypeOIDs {
		if o == oid {
			return name
		}
	}
	return "unknown"
}

// finishedSuffix marks a statement served with the warehouse finishing it
// around a rollup's answer.
const finishedSuffix = " (finished by the warehouse)"

// corpusReport is the measurement: statements, answerable, served, wrong
// answers, refusals by reason, and the answerable statements not served.
func corpusReport(results []corpusResult, actions map[string]string) string {
	var b strings.Builder
	answerable, served, servedAnswerable, finished, wrong := 0, 0, 0, 0, 0
	reasons := map[string]int{}
	byTool := map[string][2]int{}
	var missed, unexpected, refused []corpusResult
	for _, r := range results {
		if r.wrong {
			wrong++
		}
		if r.served != "" {
			served++
			if strings.HasSuffix(r.served, finishedSuffix) {
				finished++
			}
		} else {
			reasons[r.reason]++
		}
		if r.e.Answerable {
			answerable++
			c := byTool[r.e.Tool]
			c[0]++
			if r.served != "" {
				servedAnswerable++
				c[1]++
			} else {
				missed = append(missed, r)
			}
			byTool[r.e.Tool] = c
		} else if r.served != "" {
			unexpected = append(unexpected, r)
		} else {
			refused = append(refused, r)
		}
	}
	pct := 100 * float64(servedAnswerable) / float64(max(answerable, 1))
	fmt.Fprintf(&b, "corpus: %d statements, %d answerable by a declared rollup, %d of them served (%.1f%%), %d served in all (%d of them finished by the warehouse), %d wrong answers\n",
		len(results), answerable, servedAnswerable, pct, served, finished, wrong)
	tools := diffSortedKeys(byTool)
	b.WriteString("served of the answerable, by tool:\n")
	for _, tool := range tools {
		c := byTool[tool]
		fmt.Fprintf(&b, "  %-12s %3d of %3d\n", tool, c[1], c[0])
	}
	b.WriteString("refusals by reason:\n")
	codes := diffSortedKeys(reasons)
	sort.SliceStable(codes, func(i, j int) bool { return reasons[codes[i]] > reasons[codes[j]] })
	idle := 0
	for _, c := range codes {
		fmt.Fprintf(&b, "  %-22s %3d  (what to do: %s)\n", c, reasons[c], actions[c])
		if strings.HasPrefix(actions[c], "Nothing") {
			idle += reasons[c]
		}
	}
	fmt.Fprintf(&b, "refusals whose reason leaves the user nothing to do (docs/matching.md: \"Nothing...\"): %d\n", idle)
	fmt.Fprintf(&b, "answerable but not served (%d):\n", len(missed))
	coresServed := 0
	for _, r := range missed {
		fmt.Fprintf(&b, "  %s [%s, aimed at %s] %s: %s\n    %s\n", r.e.ID, r.e.Tool, r.e.Rollup, r.reason, r.detail, corpusOneLine(r.e.SQL))
		if len(r.cores) > 0 {
			around := ""
			if r.outerTable {
				around = " (and it reads a table itself around them)"
			}
			fmt.Fprintf(&b, "    the queries it wraps are answered by: %s%s\n", strings.Join(r.cores, ", "), around)
			if !slices.Contains(r.cores, "-") && !r.outerTable {
				coresServed++
			}
		}
	}
	fmt.Fprintf(&b, "answerable but not served that only wrap queries rollups answer (the warehouse could finish them): %d\n", coresServed)
	fmt.Fprintf(&b, "not answerable, and refused (%d):\n", len(refused))
	for _, r := range refused {
		fmt.Fprintf(&b, "  %s [%s] %s: %s\n    (annotated: %s)\n", r.e.ID, r.e.Tool, r.reason, r.detail, r.e.Why)
	}
	if len(unexpected) > 0 {
		fmt.Fprintf(&b, "served although annotated not answerable (%d; the answers were compared):\n", len(unexpected))
		for _, r := range unexpected {
			fmt.Fprintf(&b, "  %s by %s (annotated: %s)\n", r.e.ID, r.served, r.e.Why)
		}
	}
	return b.String()
}

// corpusOneLine squeezes a statement's white space for the report.
func corpusOneLine(sql string) string {
	return strings.Join(strings.Fields(sql), " ")
}
