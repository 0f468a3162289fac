package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
	"github.com/pgrollup/pgrollup/routing"
)

// Where explain's catalog came from (explain --json's "catalog").
const (
	catalogWarehouse = "warehouse" // column types and collations read from the warehouse
	catalogOffline   = "offline"   // the config alone: types and collations unknown
)

// explainConnectTimeout bounds explain's wait for the warehouse; past it,
// explain decides offline and says so.
const explainConnectTimeout = 10 * time.Second

// explainCandidate is one element of explain --json's "candidates".
type explainCandidate struct {
	Rollup   string `json:"rollup"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

// explainJSON is the object explain --json prints (docs/matching.md, "Seeing the decision").
type explainJSON struct {
	Route      string             `json:"route"`
	Rollup     *string            `json:"rollup"`
	Reason     string             `json:"reason"`
	Candidates []explainCandidate `json:"candidates"`
	SQL        string             `json:"sql"`
	// Catalog says whether the decision used the warehouse's column types
	// and collations ("warehouse") or the config alone ("offline"), and
	// CatalogError why the warehouse was not read.
	Catalog      string `json:"catalog"`
	CatalogError string `json:"catalog_error,omitempty"`
	// Finish, when the route is finished_by_warehouse: the statement's
	// aggregate core, which a rollup answers (reason, candidates and sql
	// are then the core's), and why the statement as a whole is not.
	Finish *explainFinish `json:"finish,omitempty"`
	// TopN, for a statement whose top-N join is answered by two rollup
	// queries (docs/matching.md, "Top-N joins").
	TopN *explainTopN `json:"top_n,omitempty"`
	// Split, when the route is lambda or edges: the partial core a lambda
	// rollup answers below its cutoff, or the whole buckets of a range
	// (reason, candidates and sql are then the core's).
	Split *explainSplit `json:"split,omitempty"`
	// EdgesNote says why a split at bucket edges that a rollup would
	// answer does not pay (no index on the time column of a large table).
	EdgesNote string `json:"edges_note,omitempty"`
}

// explainSplit is a statement answered through the warehouse by a lambda
// rollup or at bucket edges, as EXPLAIN (ROLLUP) shows it.
type explainSplit struct {
	Mode        string `json:"mode"` // lambda or edges
	Rollup      string `json:"rollup"`
	Explanation string `json:"explanation"` // EXPLAIN (ROLLUP)'s reason
	Core        string `json:"core"`
	WholeReason string `json:"whole_reason"`
}

// explainTopN is a statement with a top-N join answered by two rollup
// queries: the subquery's (Rollup), then the statement filtered to its
// keys (the route, reason, candidates and sql are that one's).
type explainTopN struct {
	Rollup      string `json:"rollup"`
	Subquery    string `json:"subquery"`
	WholeReason string `json:"whole_reason"`
}

// explainFinish is the split of a statement the warehouse would finish.
type explainFinish struct {
	Kind        string `json:"kind"` // where the core sits: cte, subquery or split
	Core        string `json:"core"`
	WholeReason string `json:"whole_reason"`
}

// runExplain decides a statement as if every rollup were built and covered
// all time, with the column types and collations of the warehouse (--warehouse,
// by default the config's warehouse.dsn) so that it decides as the running
// proxy's EXPLAIN (ROLLUP) does; when the warehouse cannot be read (or
// --offline), from the config alone, and it says so. Exit 0 whatever the
// decision, 1 on bad arguments or config, 2 when the SQL does not parse.
func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file")
	zone := fs.String("timezone", "", "session TimeZone (default: the config's build_timezone)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	dsn := fs.String("warehouse", "", "the warehouse to read column types and collations from (default: the config's warehouse.dsn)")
	offline := fs.Bool("offline", false, "decide from the config alone, without reading the warehouse")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if *cfgPath == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, `usage: pgrollup explain --config FILE [--warehouse DSN | --offline] [--timezone ZONE] [--json] "SQL"`)
		return 1
	}
	sql := fs.Arg(0)
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "pgrollup explain: %v\n", err)
		return 1
	}
	cat, err := rewrite.NewOfflineCatalog(cfg, nil)
	if err != nil {
		fmt.Fprintf(stderr, "pgrollup explain: %v\n", err)
		return 1
	}
	source, catErr := catalogOffline, "--offline"
	if !*offline {
		if *dsn == "" {
			*dsn = cfg.Warehouse.DSN
		}
		if err := readWarehouse(cat, cfg, *dsn); err != nil {
			catErr = err.Error()
		} else {
			source, catErr = catalogWarehouse, ""
		}
	}
	if err := cfg.Limits.ParseLimits().Check(sql); err != nil {
		fmt.Fprintf(stderr, "pgrollup explain: %v\n", err)
		return 2
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		fmt.Fprintf(stderr, "pgrollup explain: %v\n", err)
		return 2
	}
	tz := *zone
	if tz == "" {
		tz = cat.BuildTimezone
	}
	// Lambda rollups answer only through the warehouse, as in the proxy.
	offlineSplits := routing.NewOfflineExplain(cat, source == catalogWarehouse)
	cat = offlineSplits.Main
	sess := rewrite.Session{TimeZone: tz, Now: time.Now()}
	d := rewrite.DecideAnalysis(rewrite.Analyze(tree), sess, cat)
	route := string(d.Outcome)
	var finish *explainFinish
	if d.Outcome != rewrite.OutcomeRollup && cfg.Routing.FinishMaxRows > 0 {
		// As the running proxy does for a statement no rollup answers whole.
		c, cd := rewrite.AnsweredCore(rewrite.FinishCores(tree), func(c *rewrite.FinishCore) rewrite.Decision {
			return rewrite.DecideAnalysis(rewrite.Analyze(c.Tree), sess, cat)
		})
		if c != nil {
			finish = &explainFinish{Kind: c.Kind, Core: c.SQL, WholeReason: d.Reason.String()}
			d, route = cd, routeFinished
		}
	}
	var topN *explainTopN
	if j := rewrite.FindTopNJoin(tree); d.Outcome != rewrite.OutcomeRollup && d.Reason.Code == rewrite.ReasonJoin && j != nil {
		inner, outer, ok := j.Decide(func(sql string, tree *pg_query.ParseResult) rewrite.Decision {
			return rewrite.DecideAnalysis(rewrite.Analyze(tree), sess, cat)
		})
		if ok {
			topN = &explainTopN{Rollup: inner.Rollup, Subquery: j.InnerSQL, WholeReason: d.Reason.String()}
			d, route = outer, string(outer.Outcome)
		}
	}
	var split *explainSplit
	edgesNote := ""
	if d.Outcome != rewrite.OutcomeRollup && finish == nil && topN == nil && cfg.Routing.FinishMaxRows > 0 {
		if s, note := offlineSplits.Split(tree, sess, d.Reason); s != nil {
			split = &explainSplit{Mode: s.Mode, Rollup: s.Decision.Rollup, Explanation: s.Reason, Core: s.SQL, WholeReason: d.Reason.String()}
			d, route = s.Decision, s.Mode
		} else {
			edgesNote = note
		}
	}
	if *asJSON {
		out := explainJSON{Route: route, Reason: d.Reason.String(), SQL: d.SQL, Candidates: []explainCandidate{}, Catalog: source, CatalogError: catErr, Finish: finish, TopN: topN, Split: split, EdgesNote: edgesNote}
		if d.Outcome == rewrite.OutcomeRollup {
			name := d.Rollup
			out.Rollup = &name
		}
		for _, c := range d.Candidates {
			dec := "reject"
			if c.Match {
				dec = "match"
			}
			out.Candidates = append(out.Candidates, explainCandidate{Rollup: c.Rollup, Decision: dec, Reason: c.Reason.String()})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "pgrollup explain: %v\n", err)
			return 1
		}
		return 0
	}
	if source == catalogWarehouse {
		fmt.Fprintln(stdout, "catalog: warehouse (column types and collations read from it)")
	} else {
		fmt.Fprintf(stdout, "catalog: offline (the config alone; column types and collations unknown: %s)\n", catErr)
	}
	if topN != nil {
		fmt.Fprintf(stdout, "top-N join: its subquery is answered by rollup %s, then the statement without the join, filtered to the subquery's keys\n", topN.Rollup)
		fmt.Fprintf(stdout, "whole statement: %s\n", topN.WholeReason)
		fmt.Fprintf(stdout, "subquery: %s\n", topN.Subquery)
	}
	if finish != nil {
		fmt.Fprintf(stdout, "route: finished by the warehouse around its aggregate core (%s), which rollup %s answers\n", finish.Kind, d.Rollup)
		fmt.Fprintf(stdout, "whole statement: %s\n", finish.WholeReason)
		fmt.Fprintf(stdout, "core: %s\n", finish.Core)
	} else if split != nil {
		fmt.Fprintf(stdout, "route: %s: %s\n", split.Mode, split.Explanation)
		fmt.Fprintf(stdout, "core: %s\n", split.Core)
	} else if d.Outcome == rewrite.OutcomeRollup {
		fmt.Fprintf(stdout, "route: rollup %s\n", d.Rollup)
	} else {
		fmt.Fprintf(stdout, "route: passthrough\n")
		if edgesNote != "" {
			fmt.Fprintf(stdout, "edges: a split at bucket edges does not pay: %s\n", edgesNote)
		}
	}
	fmt.Fprintf(stdout, "reason: %s\n", d.Reason)
	if len(d.Candidates) > 0 {
		fmt.Fprintln(stdout, "candidates:")
		for _, c := range d.Candidates {
			dec := "reject"
			if c.Match {
				dec = "match "
			}
			fmt.Fprintf(stdout, "  %s %s: %s\n", dec, c.Rollup, c.Reason)
		}
	}
	if d.SQL != "" {
		fmt.Fprintf(stdout, "sql: %s\n", d.SQL)
	}
	return 0
}

// routeFinished is the route of a statement the warehouse finishes around
// an aggregate core a rollup answers, as EXPLAIN (ROLLUP) names it.
const routeFinished = "finished_by_warehouse"

// readWarehouse replaces cat's declared columns with the warehouse's own
// tables, types and collations, read by the code the serving catalog uses
// (routing.LoadTables, routing.TextSortsBytewise); cat is left unchanged when
// the warehouse cannot be read.
func readWarehouse(cat *rewrite.Catalog, cfg *config.Config, dsn string) error {
	if dsn == "" {
		return fmt.Errorf("no warehouse DSN (--warehouse or warehouse.dsn)")
	}
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("warehouse DSN: %w", err)
	}
	pc.ConnectTimeout = explainConnectTimeout
	ctx, cancel := context.WithTimeout(context.Background(), 2*explainConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("cannot connect to the warehouse: %w", err)
	}
	defer conn.Close(ctx)
	tables, err := routing.LoadTables(ctx, conn, cfg)
	if err != nil {
		return err
	}
	bytewise, err := routing.TextSortsBytewise(ctx, conn)
	if err != nil {
		return err
	}
	cat.Tables, cat.PartialColumns, cat.TextSortsBytewise = tables, false, bytewise
	return nil
}
