package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/rewrite"
)

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
}

// runExplain decides a statement offline, from the config alone, as if every
// rollup were built and covered all time. Exit 0 whatever the decision, 1 on
// bad arguments or config, 2 when the SQL does not parse.
func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file")
	zone := fs.String("timezone", "", "session TimeZone (default: the config's build_timezone)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if *cfgPath == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, `usage: pgrollup explain --config FILE [--timezone ZONE] [--json] "SQL"`)
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
	d := rewrite.DecideAnalysis(rewrite.Analyze(tree), rewrite.Session{TimeZone: tz, Now: time.Now()}, cat)
	if *asJSON {
		out := explainJSON{Route: string(d.Outcome), Reason: d.Reason.String(), SQL: d.SQL, Candidates: []explainCandidate{}}
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
	if d.Outcome == rewrite.OutcomeRollup {
		fmt.Fprintf(stdout, "route: rollup %s\n", d.Rollup)
	} else {
		fmt.Fprintf(stdout, "route: passthrough\n")
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
