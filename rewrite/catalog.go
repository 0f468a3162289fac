package rewrite

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgrollup/pgrollup/config"
)

// Column is one column of a warehouse table.
type Column struct {
	Name   string
	Type   Type  // OID 0 when unknown (offline explain)
	AttNum int16 // attribute number; 0 when unknown
	// Collation is the column's own collation (attcollation); nil when it
	// has the database's default collation, is not text, or is unknown
	// (offline explain without the warehouse).
	Collation *Collation
	// Indexed: an index of the table leads with the column, so a range of
	// it is read without scanning the table (exact edges, edges.go).
	Indexed bool
	// NotNull: the column is declared NOT NULL, so a lambda answer need
	// not read the rows where it is NULL (lambda.go).
	NotNull bool
}

// Table is the column list of one warehouse table, used to resolve names as
// Postgres would (rule 2).
type Table struct {
	Name    string // schema-qualified: public.orders
	OID     uint32 // pg_class OID; 0 when unknown
	Columns []Column
	// Rows is the planner's estimate of the table's rows (reltuples); 0
	// when unknown.
	Rows float64
}

func (t *Table) column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Status is a rollup's lifecycle state (the README's Admin API).
type Status string

// Rollup statuses.
const (
	StatusPending  Status = "pending"
	StatusBuilding Status = "building"
	StatusActive   Status = "active"
	StatusFailed   Status = "failed"
	StatusStale    Status = "stale"
)

// Partition is one built piece of a rollup version covering [Start, End) of
// the time dimension. For a timestamptz dimension the bounds are instants; for
// timestamp and date dimensions they are wall-clock values expressed in UTC.
// A zero Start or End leaves that side unbounded.
type Partition struct {
	Start, End time.Time
	Files      []string
	Rows       int64
	Bytes      int64
	Truncated  bool // max_rows cut this partition short
}

// RollupState is one rollup as the catalog knows it: its definition and its
// active version.
type RollupState struct {
	Def    config.Rollup
	Joins  []config.Join // the declared joins of Def.Table (the tables entry)
	Status Status
	// Version is the active version's id; "" when none is active.
	Version string
	// Partitions of the active version. An unpartitioned version has one.
	Partitions []Partition
	// AllTime: the version covers every row of the source as of BuiltAt
	// (no build_range), so queries without a time bound are covered.
	AllTime bool
	// Windows are the active version's clock-relative filters as its build
	// folded them; a rollup with such a filter answers only inside them.
	Windows []Window
	Rows    int64
	Bytes   int64
	BuiltAt time.Time
	// LambdaCutoff is a lambda rollup's cutoff (Def.Lambda): the active
	// version holds the rows whose time dimension lies below it. Zero when
	// the rollup is not a lambda rollup or its version recorded none.
	LambdaCutoff time.Time
	// LambdaCutoffID is the cutoff of a lambda rollup on an id column
	// (Def.Lambda.Column is not the time dimension): the active version
	// holds the rows whose id lies below it. Nil otherwise.
	LambdaCutoffID *int64
}

// Catalog is the snapshot of everything a decision reads besides the
// statement and the session. It is plain data: fill it, then share it
// read-only between goroutines; replace it (never mutate it) when the build
// catalog changes.
type Catalog struct {
	// BuildTimezone is the zone in which timestamptz buckets were cut.
	BuildTimezone string
	// MaxStaleness: an active version older than this no longer answers; 0: no limit.
	MaxStaleness time.Duration
	// TextSortsBytewise says the database's default collation compares text
	// like DuckDB does (libc C or POSIX), so ORDER BY, MIN/MAX and ranges on
	// text of the default collation may be computed by DuckDB. A column's
	// own collation (Column.Collation) decides for that column instead.
	TextSortsBytewise bool
	// Tables maps schema-qualified table names to their columns.
	Tables map[string]*Table
	// PartialColumns says the column lists hold only the names the config
	// declares (offline explain): a name not found is "not a dimension"
	// rather than Postgres's "column does not exist".
	PartialColumns bool
	Rollups        []*RollupState

	once     sync.Once
	compiled []*compiledRollup
}

// NewOfflineCatalog builds the offline catalog of a configuration, for
// explaining statements without a warehouse: every rollup is built, active
// and covers all time; table columns are the names the config declares. Types, when known, come from types (keyed "schema.table.column",
// values such as "numeric(12,2)"); the time dimension is assumed timestamptz
// unless types says otherwise.
func NewOfflineCatalog(cfg *config.Config, types map[string]string) (*Catalog, error) {
	cat := &Catalog{
		BuildTimezone:  cfg.BuildTimezone,
		MaxStaleness:   time.Duration(cfg.Routing.MaxStaleness),
		Tables:         map[string]*Table{},
		PartialColumns: true,
	}
	if cat.BuildTimezone == "" {
		cat.BuildTimezone = "UTC"
	}
	joins := map[string][]config.Join{}
	for _, t := range cfg.Tables {
		joins[t.Name] = t.Joins
	}
	addCol := func(table, col string, timeDim bool) error {
		t := cat.Tables[table]
		if t == nil {
			t = &Table{Name: table}
			cat.Tables[table] = t
		}
		if t.column(col) != nil {
			return nil
		}
		typ := unknownType
		if timeDim {
			typ = plain(pgtype.TimestamptzOID)
		}
		if s, ok := types[table+"."+col]; ok {
			tt, ok := ParseType(s)
			if !ok {
				return fmt.Errorf("column %s.%s: unknown type %q", table, col, s)
			}
			typ = tt
		}
		t.Columns = append(t.Columns, Column{Name: col, Type: typ})
		return nil
	}
	for _, r := range cfg.Rollups {
		rs := &RollupState{
			Def: r, Joins: joins[r.Table], Status: StatusActive, Version: offlineVersion,
			AllTime: true, Partitions: []Partition{{Files: []string{r.Name + ".parquet"}}},
		}
		cat.Rollups = append(cat.Rollups, rs)
		refs, err := definitionColumns(r, rs.Joins)
		if err != nil {
			return nil, fmt.Errorf("rollup %s: %w", r.Name, err)
		}
		for _, c := range refs {
			if err := addCol(c.table, c.column, c.column == r.TimeDimension && c.table == r.Table); err != nil {
				return nil, fmt.Errorf("rollup %s: %w", r.Name, err)
			}
		}
	}
	return cat, nil
}

// table looks a table up by schema-qualified name.
func (c *Catalog) table(name string) *Table { return c.Tables[name] }

// splitTable splits "schema.table" (unqualified means public).
func splitTable(name string) (schema, table string) {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "public", name
}

// rollups returns the compiled rollups, compiling them on first use. A
// definition that does not compile is kept with its error so that EXPLAIN
// can name it.
func (c *Catalog) rollups() []*compiledRollup {
	c.once.Do(func() {
		for _, r := range c.Rollups {
			c.compiled = append(c.compiled, compileRollup(r, c))
		}
	})
	return c.compiled
}
