package proxy

import (
	"context"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Route says where a statement is answered.
type Route string

// Routes, as they appear in the route label of pgrollup_queries_total.
const (
	RoutePassthrough Route = "passthrough"
	RouteRollup      Route = "rollup"
	RouteAdmin       Route = "admin"
	RouteError       Route = "error"
)

// Statement is one Query or Parse text and its parse tree. It is shared
// between sessions through the parse cache and must not be modified.
type Statement struct {
	SQL string
	// Tree is the parse tree; nil when ParseErr is set.
	Tree *pg_query.ParseResult
	// ParseErr is pg_query's error for text Postgres would reject; such a
	// statement always passes through so the warehouse reports its own error.
	ParseErr error
}

// Session is what a Router may know of the session a statement arrives on.
// It is a snapshot: the Router must not keep it beyond the call.
type Session struct {
	User     string
	Database string
	// Parameters are the values the warehouse last reported with
	// ParameterStatus (TimeZone, DateStyle, IntervalStyle, ...).
	Parameters map[string]string
	// TxStatus is the status of the last ReadyForQuery: 'I' idle, 'T' in a
	// transaction block, 'E' in a failed transaction block.
	TxStatus byte
	// Now is the statement's arrival time, for folding now() and friends.
	Now time.Time
}

// Decision is a Router's answer for one statement.
type Decision struct {
	Route Route
	// Reason says why a statement was not answered from a rollup, as a stable
	// code (for metrics) and a message a user can act on.
	Reason        string
	ReasonMessage string
}

// Router decides where statements go. It is called on every Query and Parse,
// so it must be fast and must not block on I/O.
type Router interface {
	Route(ctx context.Context, stmt *Statement, sess *Session) Decision
}

// PassthroughRouter sends every statement to the warehouse.
type PassthroughRouter struct{}

// Route implements Router.
func (PassthroughRouter) Route(context.Context, *Statement, *Session) Decision {
	return Decision{Route: RoutePassthrough, Reason: "no_rollups", ReasonMessage: "no rollups are configured"}
}

// statementCache parses statement texts once. BI tools repeat the same texts
// constantly, and a parse costs far more than a lookup.
type statementCache struct {
	cache *lru.Cache[string, *Statement]
}

func newStatementCache(size int) *statementCache {
	c, err := lru.New[string, *Statement](size)
	if err != nil {
		// lru.New fails only for a non-positive size, which callers never pass.
		panic(err)
	}
	return &statementCache{cache: c}
}

// get returns the parsed statement for sql, parsing it on a miss.
func (c *statementCache) get(sql string) *Statement {
	if st, ok := c.cache.Get(sql); ok {
		return st
	}
	st := &Statement{SQL: sql}
	st.Tree, st.ParseErr = pg_query.Parse(sql)
	if st.ParseErr != nil {
		st.Tree = nil
	}
	c.cache.Add(sql, st)
	return st
}
