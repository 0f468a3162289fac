package advise

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/routing"
)

// Options are what Plan needs besides the recorded statements.
type Options struct {
	// Config is the running configuration: its tables and joins, its
	// rollups, its build_timezone.
	Config *config.Config
	// Tables are the warehouse's tables with their columns and types
	// (routing.LoadTables), and TextSortsBytewise its default collation's
	// order (routing.TextSortsBytewise).
	Tables            map[string]*rewrite.Table
	TextSortsBytewise bool
	// Rows estimates how many rows a rollup would hold (Estimator.Rows).
	Rows func(ctx context.Context, r config.Rollup) (int64, error)
	// Max is the most rollups to propose; MinStatements the fewest times a
	// shape must have been answered by the warehouse to be considered.
	Max           int
	MinStatements int64
	// Now is the clock statements are decided at.
	Now time.Time
}

// Statement is one recorded shape and what advise made of it.
type Statement struct {
	routing.Miss
	// Need is what a rollup must hold to answer it; nil with Skipped when
	// no rollup could.
	Need    *rewrite.Need
	Skipped string
	// Served names the rollup the replay answered it from: a proposal, a
	// rollup already configured, or "" for none.
	Served string

	analysis *rewrite.Analysis
}

// Proposal is one rollup advise proposes.
type Proposal struct {
	Rollup config.Rollup
	// Rows is its estimated size.
	Rows int64
	// Serves lists the statements (indexes into Advice.Statements) the
	// replay answered from it.
	Serves []int
	// Statements and Seconds are their count and warehouse time.
	Statements int64
	Seconds    float64
}

// Advice is Plan's result.
type Advice struct {
	Proposals  []*Proposal
	Statements []*Statement
	// Total and TotalSeconds are all the recorded statements and their
	// warehouse time.
	Total        int64
	TotalSeconds float64
	// Served is how many of them the replay answered from a proposal;
	// Existing how many from a rollup already configured.
	Served, Existing int64
}

// candidate is a rollup definition under consideration and what it serves.
type candidate struct {
	def    config.Rollup
	key    string
	rows   int64
	serves []int // eligible statements the engine answers from it alone
}

// Plan proposes rollups for the recorded statements: their needs grouped by
// fact table, candidates that merge them, chosen greedily by the warehouse
// time they save per stored row (Harinarayan, Rajaraman and Ullman's view
// selection), then every statement replayed through the rewrite engine
// against the configured rollups and the proposals.
func Plan(ctx context.Context, misses []routing.Miss, opts Options) (*Advice, error) {
	a := &Advice{}
	var eligible []int
	// Statements the configured rollups answer already (they were missed
	// for a moment: before a build, during an outage) need no proposal.
	configured := opts.catalog(opts.Config.Rollups)
	for _, m := range misses {
		st := &Statement{Miss: m}
		a.Statements = append(a.Statements, st)
		a.Total += m.Count
		a.TotalSeconds += m.WarehouseSeconds
		tree, err := pg_query.Parse(m.SQL)
		if err != nil {
			st.Skipped = "does not parse: " + err.Error()
			continue
		}
		if hasParams(tree) {
			st.Skipped = "its parameters' values were not recorded, so it cannot be replayed"
			continue
		}
		st.analysis = rewrite.Analyze(tree)
		need, r := rewrite.Needs(tree, opts.catalog(nil))
		if r != nil {
			st.Skipped = r.String()
			continue
		}
		st.Need = need
		if m.Count >= opts.MinStatements && opts.decide(st, configured).Outcome != rewrite.OutcomeRollup {
			eligible = append(eligible, len(a.Statements)-1)
		}
	}
	cands, err := opts.candidates(ctx, a.Statements, eligible)
	if err != nil {
		return nil, err
	}
	chosen := choose(cands, a.Statements, opts.Max)
	names := map[string]bool{}
	for _, r := range opts.Config.Rollups {
		names[strings.ToLower(r.Name)] = true
	}
	for _, c := range chosen {
		c.def.Name = uniqueName(names, c.def.Table)
		a.Proposals = append(a.Proposals, &Proposal{Rollup: c.def, Rows: c.rows})
	}
	a.replay(opts)
	return a, nil
}

// catalog is the catalog of the configured rollups and defs, every one
// built and covering all time, over the warehouse's tables.
func (o Options) catalog(defs []config.Rollup, rows ...int64) *rewrite.Catalog {
	cfg := *o.Config
	cfg.Rollups = defs
	cat, err := rewrite.NewOfflineCatalog(&cfg, nil)
	if err != nil {
		// A definition the offline catalog cannot read answers nothing.
		cfg.Rollups = nil
		cat, _ = rewrite.NewOfflineCatalog(&cfg, nil)
	}
	cat.Tables, cat.PartialColumns, cat.TextSortsBytewise = o.Tables, false, o.TextSortsBytewise
	for i, r := range rows {
		if i < len(cat.Rollups) {
			cat.Rollups[i].Rows = r
		}
	}
	return cat
}

// decide decides st against cat as a session in the build time zone would.
func (o Options) decide(st *Statement, cat *rewrite.Catalog) rewrite.Decision {
	return rewrite.DecideAnalysis(st.analysis, rewrite.Session{TimeZone: cat.BuildTimezone, Now: o.Now}, cat)
}

// candidates are, per fact table, each statement's own rollup, the merge of
// every pair, of those that cut the same time column (at the same grain,
// and at any), and of them all, with their sizes and the eligible
// statements each answers alone.
func (o Options) candidates(ctx context.Context, sts []*Statement, eligible []int) ([]*candidate, error) {
	byTable := map[string][]int{}
	var tables []string
	for _, i := range eligible {
		t := sts[i].Need.Table
		if byTable[t] == nil {
			tables = append(tables, t)
		}
		byTable[t] = append(byTable[t], i)
	}
	seen := map[string]bool{}
	var out []*candidate
	add := func(idx []int) error {
		needs := make([]*rewrite.Need, len(idx))
		for i, j := range idx {
			needs[i] = sts[j].Need
		}
		def, ok := merge(needs)
		if !ok {
			return nil
		}
		key := defKey(def)
		if seen[key] {
			return nil
		}
		seen[key] = true
		rows, err := o.Rows(ctx, def)
		if err != nil {
			return fmt.Errorf("estimating the rows of a rollup over %s: %w", def.Table, err)
		}
		c := &candidate{def: def, key: key, rows: max(rows, 1)}
		cat := o.catalog([]config.Rollup{withName(def, "candidate")})
		for _, j := range byTable[def.Table] {
			if d := o.decide(sts[j], cat); d.Outcome == rewrite.OutcomeRollup {
				c.serves = append(c.serves, j)
			}
		}
		if len(c.serves) > 0 {
			out = append(out, c)
		}
		return nil
	}
	for _, t := range tables {
		idx := byTable[t]
		for i := range idx {
			if err := add(idx[i : i+1]); err != nil {
				return nil, err
			}
			for j := i + 1; j < len(idx); j++ {
				if err := add([]int{idx[i], idx[j]}); err != nil {
					return nil, err
				}
			}
		}
		// The statements that cut the same time column, at one grain and
		// at any: the rollups a dashboard's time series share.
		byTime := map[string][]int{}
		var keys []string
		for _, j := range idx {
			n := sts[j].Need
			for _, k := range []string{n.TimeColumn, n.TimeColumn + "/" + string(n.Grain)} {
				if byTime[k] == nil {
					keys = append(keys, k)
				}
				byTime[k] = append(byTime[k], j)
			}
		}
		for _, k := range keys {
			if err := add(byTime[k]); err != nil {
				return nil, err
			}
		}
		if err := add(idx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// choose picks at most max candidates greedily: each time the one whose
// statements not yet served cost the warehouse the most time per row it
// stores, until none serves anything new.
func choose(cands []*candidate, sts []*Statement, max int) []*candidate {
	served := map[int]bool{}
	var chosen []*candidate
	for max <= 0 || len(chosen) < max {
		var best *candidate
		bestScore := 0.0
		for _, c := range cands {
			benefit := 0.0
			for _, j := range c.serves {
				if !served[j] {
					// Count breaks ties between shapes that took no
					// measurable time.
					benefit += sts[j].WarehouseSeconds + 1e-9*float64(sts[j].Count)
				}
			}
			score := benefit / float64(c.rows)
			if benefit > 0 && (best == nil || score > bestScore || score == bestScore && c.key < best.key) {
				best, bestScore = c, score
			}
		}
		if best == nil {
			break
		}
		chosen = append(chosen, best)
		for _, j := range best.serves {
			served[j] = true
		}
	}
	return chosen
}

// replay decides every recorded statement against the configured rollups
// and the proposals, crediting each statement to the rollup that would
// answer it; proposals that answer nothing are dropped.
func (a *Advice) replay(o Options) {
	defs := append([]config.Rollup(nil), o.Config.Rollups...)
	rows := make([]int64, len(defs))
	proposed := map[string]*Proposal{}
	for _, p := range a.Proposals {
		defs = append(defs, p.Rollup)
		rows = append(rows, p.Rows)
		proposed[p.Rollup.Name] = p
	}
	cat := o.catalog(defs, rows...)
	for i, st := range a.Statements {
		if st.analysis == nil {
			continue
		}
		d := o.decide(st, cat)
		if d.Outcome != rewrite.OutcomeRollup {
			continue
		}
		st.Served = d.Rollup
		p := proposed[d.Rollup]
		if p == nil {
			a.Existing += st.Count
			continue
		}
		a.Served += st.Count
		p.Serves = append(p.Serves, i)
		p.Statements += st.Count
		p.Seconds += st.WarehouseSeconds
	}
	kept := a.Proposals[:0]
	for _, p := range a.Proposals {
		if len(p.Serves) > 0 {
			kept = append(kept, p)
		}
	}
	a.Proposals = kept
}

// merge is the rollup that holds every need: their dimensions, measures
// and the time column at the coarsest grain all of them derive from. Needs
// that cut different time columns keep the first, the others becoming
// dimensions. ok is false for needs over different tables.
func merge(needs []*rewrite.Need) (r config.Rollup, ok bool) {
	r.Table = needs[0].Table
	add := func(list *[]string, s string) {
		for _, x := range *list {
			if x == s {
				return
			}
		}
		*list = append(*list, s)
	}
	for _, n := range needs {
		if n.Table != r.Table {
			return r, false
		}
		switch {
		case n.TimeColumn == "":
		case r.TimeDimension == "":
			r.TimeDimension, r.Granularity = n.TimeColumn, n.Grain
		case r.TimeDimension == n.TimeColumn:
			r.Granularity = rewrite.CommonGrain(r.Granularity, n.Grain)
		default:
			add(&r.Dimensions, n.TimeColumn)
		}
		for _, d := range n.Dimensions {
			add(&r.Dimensions, d)
		}
		for _, m := range n.Measures {
			add(&r.Measures, m)
		}
	}
	r.Dimensions = removed(r.Dimensions, r.TimeDimension)
	sort.Strings(r.Dimensions)
	sort.Strings(r.Measures)
	if len(r.Measures) == 0 {
		r.Measures = []string{"count(*)"}
	}
	return r, true
}

// hasParams reports whether the statement has parameters ($1): recorded
// before any rollup made the router wait for their values at Bind.
func hasParams(tree *pg_query.ParseResult) bool {
	found := false
	rewrite.WalkMessages(tree.ProtoReflect(), func(m protoreflect.Message) {
		if _, ok := m.Interface().(*pg_query.ParamRef); ok {
			found = true
		}
	})
	return found
}

func removed(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// defKey identifies a definition by what it holds.
func defKey(r config.Rollup) string {
	return r.Table + "|" + strings.Join(r.Dimensions, ",") + "|" + r.TimeDimension + "/" + string(r.Granularity) + "|" + strings.Join(r.Measures, ",")
}

func withName(r config.Rollup, name string) config.Rollup {
	r.Name = name
	return r
}

// uniqueName names a proposal over table advised_TABLE_N, unused in names
// (lower case), which it then holds.
func uniqueName(names map[string]bool, table string) string {
	base := table[strings.LastIndexByte(table, '.')+1:]
	var b strings.Builder
	for _, c := range strings.ToLower(base) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		}
	}
	for n := 1; ; n++ {
		name := fmt.Sprintf("advised_%s_%d", b.String(), n)
		if !names[name] {
			names[name] = true
			return name
		}
	}
}
