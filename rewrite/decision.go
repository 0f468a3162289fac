package rewrite

// Outcome says whether a rollup answers a statement (OutcomeRollup) or it
// passes through to the warehouse (OutcomePassthrough).
type Outcome string

// Outcomes.
const (
	OutcomePassthrough Outcome = "passthrough"
	OutcomeRollup      Outcome = "rollup"
)

// ResultColumn describes one result column as Postgres's RowDescription
// would, plus the DuckDB type the rewritten SQL returns it as.
type ResultColumn struct {
	Name     string
	Type     Type   // OID 0: unknown (offline explain without column types)
	TableOID uint32 // set for plain column references, as Postgres does
	AttNum   int16
	// DuckType is the DuckDB type of the column in the rewritten SQL's result.
	DuckType string
	// Collation names, as SQL (pg_catalog."C"), the collation a text
	// column's values carry when it is not the database's default (a
	// column declared COLLATE "C", say, or an explicit COLLATE), as
	// Postgres derives it; "" is the default.
	Collation string
	// collationUnsure: the column is text whose collation the rewriter
	// cannot derive, so the warehouse cannot be handed its values to order.
	collationUnsure bool
}

// Candidate is one rollup over the statement's table and what became of it.
type Candidate struct {
	Rollup string
	Match  bool
	Reason Reason
}

// Decision is the answer for one statement execution.
type Decision struct {
	Outcome Outcome
	Reason  Reason // ReasonMatched for OutcomeRollup
	// OutcomeRollup only.
	Rollup  string
	Version string
	Files   []string
	SQL     string
	Columns []ResultColumn
	// Candidates lists every rollup over the statement's table with its
	// decision, for EXPLAIN (ROLLUP); chosen first when one matched.
	Candidates []Candidate
}

func passthrough(r *Reason, cands []Candidate) Decision {
	return Decision{Outcome: OutcomePassthrough, Reason: *r, Candidates: cands}
}
