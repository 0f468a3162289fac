package routing

import (
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/rewrite"
)

// pgrollup explain decides without a running proxy, over an offline
// catalog in which every rollup is taken as built (rewrite.NewOfflineCatalog).
// OfflineExplain makes it decide as EXPLAIN (ROLLUP) does for lambda
// rollups and splits at bucket edges: lambda rollups never answer on their
// own, and a statement no rollup answers whole may still be answered
// through the warehouse by one of them.

// OfflineExplain is an offline catalog split as the router splits a
// serving one (splitSnapshot).
type OfflineExplain struct {
	// Main holds the rollups that answer on their own: the catalog every
	// other decision of pgrollup explain is made with.
	Main *rewrite.Catalog
	// snap is the split catalog: Main, the lambda rollups and their cutoffs.
	snap *snapshot
	// warehouse: the tables are the warehouse's, with their types, indexes
	// and row estimates (LoadTables). Without them the statement for the
	// warehouse cannot be written (a value of unknown type), so it is not
	// tried, and whether edges pay is unknown.
	warehouse bool
}

// OfflineSplit is a statement answered through the warehouse by a lambda
// rollup or at bucket edges, as EXPLAIN (ROLLUP) shows it.
type OfflineSplit struct {
	// Mode is EXPLAIN (ROLLUP)'s decision: lambda or edges.
	Mode string
	// Reason is EXPLAIN (ROLLUP)'s reason for the split.
	Reason string
	// SQL is the partial core the rollup answers.
	SQL string
	// Decision is the partial core's decision.
	Decision rewrite.Decision
}

// offlineCutoff stands for a lambda rollup's cutoff, which only a build
// knows; an offline catalog's versions cover all time anyway.
var offlineCutoff = time.Unix(0, 0).UTC()

// NewOfflineExplain splits cat, an offline catalog; warehouse says its
// tables are the warehouse's (LoadTables): their types, indexes and row
// estimates.
func NewOfflineExplain(cat *rewrite.Catalog, warehouse bool) *OfflineExplain {
	built := &rewrite.Catalog{BuildTimezone: cat.BuildTimezone, MaxStaleness: cat.MaxStaleness, TextSortsBytewise: cat.TextSortsBytewise,
		Tables: cat.Tables, PartialColumns: cat.PartialColumns}
	for _, rs := range cat.Rollups {
		c := *rs
		if l := c.Def.Lambda; l != nil && strings.TrimSpace(l.Column) != strings.TrimSpace(c.Def.TimeDimension) {
			id := int64(0)
			c.LambdaCutoffID = &id
		} else if l != nil {
			c.LambdaCutoff = offlineCutoff
		}
		built.Rollups = append(built.Rollups, &c)
	}
	snap := splitSnapshot(built)
	return &OfflineExplain{Main: snap.cat, snap: snap, warehouse: warehouse}
}

// Split is how a statement no rollup answers whole (whole says why) is
// answered through the warehouse: by a lambda rollup, else at bucket
// edges; nil when neither does, with why a split at edges does not pay.
func (o *OfflineExplain) Split(tree *pg_query.ParseResult, sess rewrite.Session, whole rewrite.Reason) (*OfflineSplit, string) {
	cores := rewrite.LambdaCores(rewrite.FinishCores(tree))
	if o.snap.lambda != nil {
		for _, c := range cores {
			d := rewrite.DecideAnalysis(rewrite.Analyze(c.Tree), sess, o.snap.lambda)
			if d.Outcome != rewrite.OutcomeRollup {
				continue
			}
			if o.warehouse {
				if _, err := lambdaStatement(o.snap, c, &d, nil); err != nil {
					continue
				}
			}
			return &OfflineSplit{Mode: modeLambda, Reason: lambdaExplanation(whole, d.Rollup, "(the one its build records)"), SQL: c.SQL, Decision: d}, ""
		}
	}
	refused := ""
	for _, lambda := range []bool{false, true} {
		split, note := o.edgeSplit(cores, sess, whole, lambda)
		if split != nil {
			return split, ""
		}
		if refused == "" {
			refused = note
		}
	}
	return nil, refused
}

// edgeSplit is Split at bucket edges: the whole buckets from an ordinary
// rollup, or from a lambda rollup's rows below its cutoff.
func (o *OfflineExplain) edgeSplit(cores []*rewrite.LambdaCore, sess rewrite.Session, whole rewrite.Reason, lambda bool) (*OfflineSplit, string) {
	cat, splits := o.Main, (*rewrite.LambdaCore).EdgeSplits
	if lambda {
		if o.snap.lambda == nil {
			return nil, ""
		}
		cat, splits = o.snap.lambda, (*rewrite.LambdaCore).LambdaEdgeSplits
		sess.Staleness = rewrite.StalenessSetting{}
	}
	refused := ""
	for _, c := range cores {
		for _, s := range splits(c, cat, sess) {
			d := rewrite.DecideAnalysis(rewrite.Analyze(s.Tree), sess, cat)
			if d.Outcome != rewrite.OutcomeRollup {
				continue
			}
			pays, note := true, "whether the warehouse has an index on "+s.Column+" is unknown offline"
			if o.warehouse {
				pays, note = edgesPay(o.snap, d.Rollup, s)
			}
			if !pays {
				if refused == "" {
					refused = note
				}
				continue
			}
			if _, err := edgeStatement(o.snap, s, &d, nil); err != nil && o.warehouse {
				continue
			}
			e := &edgeAnswer{split: s, decision: d, note: note, lambda: lambda, cutoff: "(the one its build records)"}
			return &OfflineSplit{Mode: e.mode(), Reason: edgesExplanation(whole, e), SQL: s.SQL, Decision: d}, ""
		}
	}
	return nil, refused
}
