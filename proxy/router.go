package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrollup/pgrollup/internal/parselimit"
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

// Statement is one Query or Parse text. Its parse tree is built on demand,
// once per text: pg_query costs tens of microseconds, as much as relaying the
// statement itself, so a router parses only statements that could touch a
// rollup and everything else is relayed without that cost.
type Statement struct {
	SQL string

	once  sync.Once
	tree  *pg_query.ParseResult
	err   error
	cache *statementCache

	effOnce sync.Once
	eff     effects // effects.go

	textOnce sync.Once
	txt      statementText // statement_text.go

	// scanned: txt was worked out before the statement was shared
	// (newStatement), and textOnce is not needed.
	scanned bool
}

// newStatement returns a statement of sql with its text scanned: every
// Query and Parse needs it, and for a statement seen once (a literal in
// its text) a sync.Once's first call costs a third of the scan. Its
// effects stay lazy: working them out may parse it.
func newStatement(sql string, c *statementCache) *Statement {
	return &Statement{SQL: sql, cache: c, txt: scanText(sql), scanned: true}
}

// Parse returns the statement's parse tree, parsing it on first use. An
// error means Postgres would reject the text too, or, as a
// *parselimit.Error, that the text is beyond the limits the parser library
// is given (the server's Options.ParseLimits): either way the statement
// passes through, and the warehouse answers it as Postgres does.
func (st *Statement) Parse() (*pg_query.ParseResult, error) {
	st.once.Do(func() {
		var limits parselimit.Limits
		if st.cache != nil {
			limits = st.cache.limits
		}
		if st.err = limits.Check(st.SQL); st.err != nil {
			return // never cached: it would hold a big text for nothing
		}
		st.tree, st.err = pg_query.Parse(st.SQL)
		if st.err != nil {
			st.tree = nil
		}
		if st.cache != nil {
			st.cache.add(st)
		}
	})
	return st.tree, st.err
}

// SessionInfo is what a Router may know of the session a statement arrives on.
// It is a snapshot: the Router must not keep it beyond the call.
type SessionInfo struct {
	User     string
	Database string
	// Parameters are the values the warehouse last reported with
	// ParameterStatus (TimeZone, DateStyle, IntervalStyle, ...).
	Parameters map[string]string
	// TxStatus is the status of the last ReadyForQuery: 'I' idle, 'T' in a
	// transaction block, 'E' in a failed transaction block.
	TxStatus byte
	// TxWrote reports that the current transaction may have modified data,
	// which no rollup reflects: a statement the warehouse ran in it, since
	// it began, was not certainly read-only (a query with no data-modifying
	// CTE, no locking clause, no INTO and only built-in read-only
	// functions, or a statement such as SET, SHOW, SAVEPOINT or FETCH). It
	// covers a transaction block and the implicit transaction of an
	// extended-protocol batch not yet synced, and is false outside both.
	TxWrote bool
	// Now is the start of the current transaction as now() returns it, for
	// folding now() and friends: in a transaction block, when the batch
	// that opened it began; otherwise the statement's arrival.
	Now time.Time
	// Probe and Probed are the session's context as last read on its own
	// connection (see Prober): the Probe read and its values, one per
	// column. Probed is nil when the context is unknown or may have changed
	// since (a SET, DDL, the end of a block, a function the proxy cannot
	// vouch for). When an Answer runs, Probed was read after everything the
	// session did before the statement, and Probe is the current one unless
	// the Prober moved on since.
	Probe  *Probe
	Probed []string
}

// Probe is what the proxy reads of each session's context on the session's
// own connection, together with the settings local answers depend on: the
// select-list of a one-row query that must never fail. The Router writes
// it (which tables a name resolves to, whether the current role may read
// them, the settings its row-level security policies read) and reads the
// values from SessionInfo.Probed.
type Probe struct {
	Select  string // comma-separated expressions, each returning text
	Columns int    // how many
	// Fingerprint identifies the state of what the values depend on as the
	// Prober saw it when it made the Probe (the catalog rows it follows);
	// empty when it cannot tell. A new Probe with the same Select and
	// Fingerprint asks the same question of an unchanged catalog, so values
	// read for the old one are still the answer. The proxy relies on that
	// only for sessions that start while the warehouse is unreachable, with
	// values an earlier session of the same login read.
	Fingerprint string
}

// Prober gives the Probe sessions must read before a local answer. A new
// *Probe (a new catalog, a change of privileges or policies seen elsewhere)
// makes every earlier read stale, so each session reads again before its
// next local answer.
type Prober interface {
	Probe() *Probe
}

// RouteDecision is a Router's answer for one statement: where it is
// answered and, for an answer from the proxy, how.
type RouteDecision struct {
	Route Route
	// Reason says why a statement was not answered from a rollup, as a stable
	// code (for metrics) and a message a user can act on.
	Reason        string
	ReasonMessage string
	// Answer, when set, answers the statement in the proxy; nil relays it.
	Answer Answer
	// Fallback lets a failed Answer be relayed to the warehouse instead, as
	// long as nothing of the answer reached the client yet. Without it the
	// client gets the Answer's error.
	Fallback bool
	// Relayed, when set on a decision the warehouse answers, is called
	// with the time from the statement's arrival to its last answer
	// message, once per relayed Query or Execute the warehouse completes
	// (on the session's upstream loop: it must not block).
	Relayed func(elapsed time.Duration)
	// Finish, set with no Answer, answers part of the statement from a
	// rollup and relays the rest to the warehouse in place of it: at once
	// for a simple Query or an unnamed Parse, at each Bind for a named
	// statement, so that no statement holds a core's rows for its life.
	Finish Finisher
}

// Finisher answers a statement's aggregate core from a rollup and gives the
// statement the warehouse runs instead of the client's: the same statement
// with the core replaced by its rows. The warehouse's answer is then the
// client's, with its own RowDescription, errors, notices and cancel.
type Finisher interface {
	// Finish computes the core for the session as it is now and returns
	// the statement to relay, and the origin of each of its result columns
	// as Postgres would describe the client's statement (nil when none
	// has one). An error relays the client's statement unchanged, unless
	// the context ended (a cancel, statement_timeout).
	Finish(ctx context.Context, sess *SessionInfo) (string, []ColumnOrigin, error)
}

// ColumnOrigin is the table and column RowDescription names as a result
// column's origin; zero for none.
type ColumnOrigin struct {
	TableOID uint32
	Attnum   int16
}

// Column describes one result column as RowDescription does.
type Column struct {
	Name     string
	TableOID uint32
	Attnum   int16
	TypeOID  uint32
	TypeSize int16
	Typmod   int32
}

// Param is one bound parameter of an extended-protocol statement.
type Param struct {
	TypeOID uint32 // as declared by Parse; 0 when unspecified
	Format  int16  // 0 text, 1 binary
	Value   []byte // nil is NULL
}

// Answer produces a statement's result in the proxy.
type Answer interface {
	// Columns describes the result rows; nil when the statement has none.
	Columns() []Column
	// ParamTypes gives the parameter types Postgres would infer, for
	// Describe; nil when the statement takes no parameters.
	ParamTypes() []uint32
	// Run computes the result for the session as it is now, which for a
	// prepared statement may differ from when it was prepared (time zone,
	// the current time, the catalog): an Answer whose decision no longer
	// holds must fail rather than answer. Run must have no effect that
	// relaying the statement afterwards would duplicate: a RouteDecision with
	// Fallback relays the statement when Run fails.
	Run(ctx context.Context, sess *SessionInfo, params []Param) (*Result, error)
}

// Binder is an Answer that can decide only once values are bound to its
// parameters: a date range a dashboard binds, say. The proxy prepares such
// a statement itself, asks the warehouse to describe it, and binds each
// portal to what Bind returns.
type Binder interface {
	Answer
	// Bind returns the Answer for a portal with these parameters; or, with
	// a nil Answer, the Finisher whose statement the warehouse runs for the
	// portal in place of the client's, with the values written in; or
	// neither when the warehouse must answer the portal as it is.
	Bind(ctx context.Context, sess *SessionInfo, params []Param) (Answer, Finisher)
}

// RelayBinder is a Binder that wants to know of the portals it leaves to
// the warehouse. Right after Bind returned neither an Answer nor a
// Finisher for params, on the same
// session, the proxy asks it for the portal's passthrough reason and a
// callback as RouteDecision.Relayed (nil when nobody asks).
type RelayBinder interface {
	Binder
	Relayed(params []Param) (reason string, done func(elapsed time.Duration))
}

// Result is an answer being computed.
type Result struct {
	// Rows streams the rows, one Go value per column as package pgfmt
	// encodes them for the column's type; nil is NULL.
	Rows Rows
	// Tag is the CommandComplete tag. A tag starting with "SELECT" gets the
	// number of rows each Execute sent, as Postgres counts them.
	Tag string
}

// Rows streams an answer's rows, as database/sql.Rows does. The proxy
// reads them as the client takes them, so an answer of any size passes
// through bounded memory, and closes them when the portal ends.
type Rows interface {
	Next() bool
	Values() []any
	Err() error
	Close() error
}

// SliceRows serves rows held in memory.
func SliceRows(rows [][]any) Rows { return &sliceRows{rows: rows, i: -1} }

type sliceRows struct {
	rows [][]any
	i    int
}

func (r *sliceRows) Next() bool    { r.i++; return r.i < len(r.rows) }
func (r *sliceRows) Values() []any { return r.rows[r.i] }
func (r *sliceRows) Err() error    { return nil }
func (r *sliceRows) Close() error  { return nil }

// Error is an error an Answer reports to the client as an ErrorResponse, with
// SQLSTATE code (one of package sqlstate's).
func Error(code, message string) error {
	return newError(severityError, code, message)
}

// Router decides where statements go. It is called on every Query and Parse,
// so it must be fast and must not block on I/O.
type Router interface {
	Route(ctx context.Context, stmt *Statement, sess *SessionInfo) RouteDecision
}

// QuickRouter is a Router that decides some statements at a glance:
// RouteQuick returns the decision Route would, and true, for a statement
// it decides without parsing or waiting; false for the others. The shared
// event loop routes those inline and hands itself over before the others
// (netloop.go). RouteQuick must keep neither stmt nor its text (SQL), which
// may be the proxy's read buffer: the proxy reuses both.
type QuickRouter interface {
	Router
	RouteQuick(stmt *Statement) (RouteDecision, bool)
}

// PassthroughRouter sends every statement to the warehouse.
type PassthroughRouter struct{}

// Route implements Router.
func (PassthroughRouter) Route(context.Context, *Statement, *SessionInfo) RouteDecision {
	return noRollups()
}

// RouteQuick implements QuickRouter: every statement is decided at a glance.
func (PassthroughRouter) RouteQuick(*Statement) (RouteDecision, bool) {
	return noRollups(), true
}

func noRollups() RouteDecision {
	return RouteDecision{Route: RoutePassthrough, Reason: "no_rollups", ReasonMessage: "no rollups are configured"}
}

// statementCache keeps parsed statements by text. BI tools repeat the same
// texts constantly, and a lookup costs a thousandth of a parse. Only parsed
// statements are kept, so texts no router looks into cost nothing here.
//
// A parse tree takes about a hundred times its text's size in memory, so
// the cache is bounded in bytes as well as in entries, and a statement
// too big for a sixteenth of the budget is not kept at all: one huge
// statement must neither evict a dashboard's worth of small ones nor stay
// in memory after it ran.
type statementCache struct {
	cache  *lru.Cache[string, *Statement]
	budget int64
	bytes  atomic.Int64 // the cost of what the cache holds
	limits parselimit.Limits
}

const (
	// statementCacheBytes is the statement cache's budget.
	statementCacheBytes = 64 << 20
	// treeBytesPerByte estimates a parse tree's memory from its text's
	// size: measured at 100 to 110 for aggregate queries and IN lists of
	// numbers, 20 for lists of string literals.
	treeBytesPerByte = 128
)

func newStatementCache(size int, budget int64, limits parselimit.Limits) *statementCache {
	c := &statementCache{budget: budget, limits: limits}
	cache, err := lru.NewWithEvict(size, func(_ string, st *Statement) { c.bytes.Add(-st.cost()) })
	if err != nil {
		// lru.New fails only for a non-positive size, which callers never pass.
		panic(err)
	}
	c.cache = cache
	return c
}

// cost estimates what a parsed statement holds in memory.
func (st *Statement) cost() int64 { return int64(len(st.SQL))*treeBytesPerByte + 512 }

// add keeps a parsed statement, within the budget.
func (c *statementCache) add(st *Statement) {
	cost := st.cost()
	if cost > c.budget/16 {
		return
	}
	if found, _ := c.cache.ContainsOrAdd(st.SQL, st); found {
		return
	}
	if c.bytes.Add(cost) > c.budget {
		for c.bytes.Load() > c.budget {
			if _, _, ok := c.cache.RemoveOldest(); !ok {
				break
			}
		}
	}
}

// get returns the statement for sql: the parsed one when the text was seen
// and parsed before, else a new one that joins the cache once parsed.
func (c *statementCache) get(sql string) *Statement {
	if st, ok := c.cache.Get(sql); ok {
		return st
	}
	return newStatement(sql, c)
}
