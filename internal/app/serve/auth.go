package serve

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgrollup/pgrollup/config"
)

// authQuery runs auth.query (PgBouncer's auth_query) for the proxy: the
// warehouse's verifier for a role, read with a role allowed to, typically
// through a SECURITY DEFINER function over pg_authid. It implements
// proxy.VerifierLookup.
type authQuery struct {
	pool  *pgxpool.Pool
	query string
	owned bool // the pool is auth.dsn's own, closed with it
}

// newAuthQuery returns the lookup for cfg, nil when auth.query is not set.
// It runs on auth.dsn, or on the service pool when that is empty.
func newAuthQuery(ctx context.Context, cfg config.Auth, service *pgxpool.Pool) (*authQuery, error) {
	if cfg.Query == "" {
		return nil, nil
	}
	if cfg.DSN == "" {
		return &authQuery{pool: service, query: cfg.Query}, nil
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, errors.New("auth.dsn: invalid connection string")
	}
	// A lookup at a time is plenty: one per new role, and a refresh.
	pc.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	return &authQuery{pool: pool, query: cfg.Query, owned: true}, nil
}

// LookupVerifier implements proxy.VerifierLookup. The secret it returns is
// never logged, and errors never quote it.
func (q *authQuery) LookupVerifier(ctx context.Context, user string) (string, bool, error) {
	var name string
	var secret *string
	// The role name is a bound parameter, never pasted into the SQL.
	err := q.pool.QueryRow(ctx, q.query, user).Scan(&name, &secret)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if secret == nil || *secret == "" || name != user {
		return "", false, nil
	}
	return *secret, true, nil
}

// Close releases auth.dsn's pool.
func (q *authQuery) Close() {
	if q != nil && q.owned {
		q.pool.Close()
	}
}
