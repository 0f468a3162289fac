package routing

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgrollup/pgrollup/rewrite"
)

// The statements over the configured tables that the warehouse answered,
// kept as shapes for `pgrollup advise` (GET /api/misses): what rollups
// would have saved the warehouse's time.

// DefaultMissShapes bounds the distinct shapes Misses keeps: a dashboard
// has tens of statements, a whole BI deployment a few hundred.
const DefaultMissShapes = 1000

// missTexts bounds the statement texts whose shape Misses remembers, so that
// a text seen again costs a map lookup rather than two parses.
const missTexts = 1024

// maxMissText bounds the texts recorded: with missTexts and the shapes kept,
// it bounds the recorder's memory (about 100MB at worst, a few MB for
// dashboards' statements). BI tools' statements are rarely longer.
const maxMissText = 32 << 10

// Miss is one statement shape the warehouse answered, as GET /api/misses
// reports it.
type Miss struct {
	// SQL is one statement of the shape as a client sent it, literals and
	// all, so that advise can replay it.
	SQL string `json:"sql"`
	// Normalized is the shape: the statement with its literals replaced
	// by $n.
	Normalized string `json:"normalized"`
	// Count is how many times the warehouse answered the shape.
	Count int64 `json:"count"`
	// WarehouseSeconds is their total time from arrival to the last
	// answer message.
	WarehouseSeconds float64 `json:"warehouse_seconds"`
	// Tables are the tables the statement reads, as written.
	Tables []string `json:"tables"`
	// Reason is the router's reason for the latest of them.
	Reason string `json:"reason"`
}

// Misses keeps the shapes of statements the router passed through, at most
// max of them: when a new shape comes, the one that cost the warehouse the
// least time goes. Safe for concurrent use.
type Misses struct {
	max   int
	texts *lru.Cache[string, *missText]
	// catalogs counts the catalog snapshots the router installed: a text
	// judged against an earlier one (before its table was declared, say)
	// is judged again.
	catalogs atomic.Uint64

	mu     sync.Mutex
	shapes map[string]*Miss // by fingerprint
}

// missText is what is known of one statement text.
type missText struct {
	catalog     uint64 // Misses.catalogs when it was judged
	fingerprint string // "" for a text the recorder ignores
	normalized  string
	tables      []string
}

// NewMisses returns a recorder of at most max shapes (DefaultMissShapes
// when max < 1).
func NewMisses(max int) *Misses {
	if max < 1 {
		max = DefaultMissShapes
	}
	texts, _ := lru.New[string, *missText](missTexts) // fails only for a size below 1
	return &Misses{max: max, texts: texts, shapes: map[string]*Miss{}}
}

// relayed returns the RouteDecision.Relayed of a statement passed through
// with reason, or nil when the statement is not one advise could use: a
// single SELECT reading at least one of the catalog's tables (a driver's
// catalog query, a SET or a write is none).
func (m *Misses) relayed(sql string, tree *pg_query.ParseResult, reason string, cat *rewrite.Catalog) func(time.Duration) {
	if m == nil || tree == nil || len(sql) > maxMissText {
		return nil
	}
	gen := m.catalogs.Load()
	t, ok := m.texts.Get(sql)
	if !ok || t.catalog != gen {
		t = shapeOf(sql, tree, cat)
		t.catalog = gen
		m.texts.Add(sql, t)
	}
	if t.fingerprint == "" {
		return nil
	}
	return func(elapsed time.Duration) { m.add(sql, t, reason, elapsed) }
}

// shapeOf fingerprints and normalizes a statement worth recording.
func shapeOf(sql string, tree *pg_query.ParseResult, cat *rewrite.Catalog) *missText {
	if len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
		return &missText{}
	}
	var tables []string
	known := false
	rewrite.WalkMessages(tree.Stmts[0].Stmt.ProtoReflect(), func(x protoreflect.Message) {
		rv, ok := x.Interface().(*pg_query.RangeVar)
		if !ok {
			return
		}
		name := rv.Relname
		if rv.Schemaname != "" {
			name = rv.Schemaname + "." + name
		}
		for _, t := range tables {
			if t == name {
				return
			}
		}
		tables = append(tables, name)
		if rv.Schemaname == "pg_catalog" || rv.Schemaname == "information_schema" {
			return
		}
		for q := range cat.Tables {
			// An unqualified name may be any schema's on the search path.
			if strings.EqualFold(q, name) || rv.Schemaname == "" && strings.EqualFold(q[strings.IndexByte(q, '.')+1:], rv.Relname) {
				known = true
			}
		}
	})
	if !known {
		return &missText{}
	}
	fp, err := pg_query.Fingerprint(sql)
	if err != nil {
		return &missText{}
	}
	norm, err := pg_query.Normalize(sql)
	if err != nil {
		norm = sql
	}
	return &missText{fingerprint: fp, normalized: norm, tables: tables}
}

// newCatalog notes that the router installed a new catalog snapshot.
func (m *Misses) newCatalog() {
	if m != nil {
		m.catalogs.Add(1)
	}
}

// add counts one statement of text t that the warehouse answered.
func (m *Misses) add(sql string, t *missText, reason string, elapsed time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.shapes[t.fingerprint]
	if s == nil {
		if len(m.shapes) >= m.max {
			m.evict()
		}
		s = &Miss{SQL: sql, Normalized: t.normalized, Tables: t.tables}
		m.shapes[t.fingerprint] = s
	}
	s.Count++
	s.WarehouseSeconds += elapsed.Seconds()
	s.Reason = reason
}

// evict drops the shape that cost the warehouse the least time; the caller
// holds mu. A scan, as new shapes are rare once a dashboard has been seen.
func (m *Misses) evict() {
	var victim string
	least := -1.0
	for fp, s := range m.shapes {
		if least < 0 || s.WarehouseSeconds < least || (s.WarehouseSeconds == least && fp < victim) {
			victim, least = fp, s.WarehouseSeconds
		}
	}
	delete(m.shapes, victim)
}

// List returns the shapes, the most warehouse time first.
func (m *Misses) List() []Miss {
	m.mu.Lock()
	out := make([]Miss, 0, len(m.shapes))
	for _, s := range m.shapes {
		c := *s
		c.Tables = append([]string(nil), s.Tables...)
		out = append(out, c)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].WarehouseSeconds != out[j].WarehouseSeconds {
			return out[i].WarehouseSeconds > out[j].WarehouseSeconds
		}
		return out[i].Normalized < out[j].Normalized
	})
	return out
}

// ServeHTTP serves GET /api/misses: the shapes as a JSON array, the most
// warehouse time first.
func (m *Misses) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(m.List())
}
