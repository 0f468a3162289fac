package rewrite

import "fmt"

// ReasonCode is a stable, machine-readable reason why a statement passes
// through or a rollup was rejected. Codes are metric label values
// (pgrollup_rollup_misses_total{reason}); never rename one.
type ReasonCode string

// Reason codes, grouped by the DESIGN.md §3 rule that produces them.
const (
	// ReasonMatched is the reason of a matching candidate and of a decision
	// with OutcomeRollup.
	ReasonMatched ReasonCode = "matched"

	// Rule 1: shape.
	ReasonEmpty       ReasonCode = "empty_query"
	ReasonMultiple    ReasonCode = "multiple_statements"
	ReasonNotSelect   ReasonCode = "not_select"
	ReasonCursor      ReasonCode = "cursor"
	ReasonShape       ReasonCode = "shape"
	ReasonNoTable     ReasonCode = "no_table"
	ReasonNoRollup    ReasonCode = "no_rollup"
	ReasonJoin        ReasonCode = "join"
	ReasonWindow      ReasonCode = "window_function"
	ReasonVolatile    ReasonCode = "volatile_function"
	ReasonSubquery    ReasonCode = "subquery"
	ReasonLocking     ReasonCode = "locking_clause"
	ReasonCTE         ReasonCode = "cte"
	ReasonSetOp       ReasonCode = "set_operation"
	ReasonNoAggregate ReasonCode = "no_aggregate"

	// Rule 2: columns.
	ReasonUnknownColumn   ReasonCode = "unknown_column"
	ReasonAmbiguousColumn ReasonCode = "ambiguous_column"
	ReasonNotDimension    ReasonCode = "not_a_dimension"

	// Rule 3: grain.
	ReasonGrain      ReasonCode = "grain"
	ReasonTimeBucket ReasonCode = "time_bucket"

	// Rule 4: time zones.
	ReasonTimeZone ReasonCode = "timezone"

	// Rule 5: measures.
	ReasonMeasure ReasonCode = "measure"

	// Rule 6: filters.
	ReasonFilterNotImplied   ReasonCode = "filter_not_implied"
	ReasonFilterNotEvaluable ReasonCode = "filter_not_evaluable"
	ReasonUnalignedRange     ReasonCode = "unaligned_time_range"
	ReasonParameter          ReasonCode = "parameter"

	// Rule 7: computation on top of the re-aggregated result.
	ReasonExpression ReasonCode = "expression"
	ReasonCollation  ReasonCode = "collation"

	// Rule 8: data.
	ReasonNotBuilt   ReasonCode = "not_built"
	ReasonNotCovered ReasonCode = "not_covered"
	ReasonStale      ReasonCode = "stale"
	ReasonTruncated  ReasonCode = "truncated"

	// Rule 9: session.
	ReasonTxWrote   ReasonCode = "transaction_wrote"
	ReasonTxFailed  ReasonCode = "transaction_failed"
	ReasonPrivilege ReasonCode = "privilege"
	ReasonContext   ReasonCode = "session_context"

	// Rule 10 never rejects: it ranks matches.
	ReasonNotChosen ReasonCode = "larger_than_chosen"
)

// ruleOf is the DESIGN.md §3 rule number each code belongs to.
var ruleOf = map[ReasonCode]int{
	ReasonMatched: 0,
	ReasonEmpty:   1, ReasonMultiple: 1, ReasonNotSelect: 1, ReasonCursor: 1, ReasonShape: 1,
	ReasonNoTable: 1, ReasonNoRollup: 1, ReasonJoin: 1, ReasonWindow: 1, ReasonVolatile: 1,
	ReasonSubquery: 1, ReasonLocking: 1, ReasonCTE: 1, ReasonSetOp: 1, ReasonNoAggregate: 1,
	ReasonUnknownColumn: 2, ReasonAmbiguousColumn: 2, ReasonNotDimension: 2,
	ReasonGrain: 3, ReasonTimeBucket: 3,
	ReasonTimeZone:         4,
	ReasonMeasure:          5,
	ReasonFilterNotImplied: 6, ReasonFilterNotEvaluable: 6, ReasonUnalignedRange: 6, ReasonParameter: 6,
	ReasonExpression: 7, ReasonCollation: 7,
	ReasonNotBuilt: 8, ReasonNotCovered: 8, ReasonStale: 8, ReasonTruncated: 8,
	ReasonTxWrote: 9, ReasonTxFailed: 9, ReasonPrivilege: 9, ReasonContext: 9,
	ReasonNotChosen: 10,
}

// Rule returns the DESIGN.md §3 rule (1-10) a code belongs to; 0 for matched.
func (c ReasonCode) Rule() int { return ruleOf[c] }

// Reason is why a statement passes through or a candidate was rejected: a
// stable code and a message a user can act on.
type Reason struct {
	Code    ReasonCode
	Message string
}

// String formats the reason as "code: message".
func (r Reason) String() string {
	if r.Message == "" {
		return string(r.Code)
	}
	return string(r.Code) + ": " + r.Message
}

func reason(code ReasonCode, format string, args ...any) *Reason {
	return &Reason{Code: code, Message: fmt.Sprintf(format, args...)}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// asReason converts an analysis error to a Reason.
func asReason(err error) *Reason {
	if u, ok := err.(*unsupportedError); ok {
		return &Reason{Code: u.code, Message: u.msg}
	}
	return &Reason{Code: ReasonShape, Message: err.Error()}
}
