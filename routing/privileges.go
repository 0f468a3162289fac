package routing

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is the part of a warehouse connection pool the privilege check
// needs (a *pgxpool.Pool satisfies it).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Privileges decides whether a user may see a rollup's data: SELECT on every
// table the rollup reads, and no row-level security on any of them. The
// warehouse is asked with the service account and the answer is trusted for
// ttl. Any doubt (an error, a timeout) is a no, so the statement goes to the
// warehouse, which answers with its own permission error.
type Privileges struct {
	db  Querier
	ttl time.Duration
	log *slog.Logger

	mu    sync.Mutex
	cache map[privilegeKey]privilegeEntry
}

type privilegeKey struct {
	user  string
	table string
}

type privilegeEntry struct {
	ok      bool
	checked time.Time
}

// NewPrivileges returns a checker asking db, caching answers for ttl.
func NewPrivileges(db Querier, ttl time.Duration, log *slog.Logger) *Privileges {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Privileges{db: db, ttl: ttl, log: log, cache: map[privilegeKey]privilegeEntry{}}
}

// privilegeQuery answers for one user and table. Table-level SELECT is
// required: a user with only some column privileges is sent to the warehouse,
// which knows exactly which columns the statement touches. pg_class's
// relrowsecurity alone disqualifies a table, whoever the user is, because a
// policy's effect cannot be reproduced from a rollup.
const privilegeQuery = `SELECT has_table_privilege($1, c.oid, 'SELECT') AND NOT c.relrowsecurity
FROM pg_catalog.pg_class c WHERE c.oid = to_regclass($2)`

// CanRead reports whether user may read every table in tables.
func (p *Privileges) CanRead(ctx context.Context, user string, tables []string) bool {
	for _, table := range tables {
		if !p.canReadTable(ctx, user, table) {
			return false
		}
	}
	return true
}

func (p *Privileges) canReadTable(ctx context.Context, user, table string) bool {
	key := privilegeKey{user, table}
	now := time.Now()
	p.mu.Lock()
	e, ok := p.cache[key]
	p.mu.Unlock()
	if ok && now.Sub(e.checked) < p.ttl {
		return e.ok
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var allowed bool
	if err := p.db.QueryRow(ctx, privilegeQuery, user, table).Scan(&allowed); err != nil {
		// A missing table or role scans no row; both mean no.
		if err != pgx.ErrNoRows {
			p.log.Warn("privilege check failed; passing through", "table", table, "err", err)
			return false
		}
		allowed = false
	}
	p.mu.Lock()
	p.cache[key] = privilegeEntry{ok: allowed, checked: now}
	p.mu.Unlock()
	return allowed
}
