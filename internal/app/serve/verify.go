package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/executor"
	"github.com/pgrollup/pgrollup/rollup"
	"github.com/pgrollup/pgrollup/routing"
)

// quarantineTimeout bounds the catalog update that quarantines a version.
const quarantineTimeout = 10 * time.Second

// newVerifier is the proxy's continuous verification (routing.Verifier):
// checks on the service account's pool, the baselines from the build
// catalog this process follows, and quarantine by compare-and-set in the
// shared catalog, which every proxy's router follows at once.
func newVerifier(cfg *config.Config, pool *pgxpool.Pool, exec executor.Executor, b *app.Builds, reg prometheus.Registerer, log *slog.Logger) *routing.Verifier {
	view, cat := b.View(), b.Node().Catalog
	// active finds the state whose active version is version.
	active := func(name, version string) *rollup.State {
		for _, st := range view.All() {
			if st.Name == name && st.Active != nil && st.Active.ID == version {
				return st
			}
		}
		return nil
	}
	host, _ := os.Hostname()
	by := fmt.Sprintf("proxy %s pid %d", host, os.Getpid())
	return routing.NewVerifier(routing.VerifyOptions{
		Fraction:     cfg.Routing.VerifyFraction,
		MaxPerMinute: cfg.Routing.VerifyMaxPerMinute,
		Warehouse:    pool,
		Database:     pool.Config().ConnConfig.Database,
		Executor:     exec,
		Baseline: func(name, version string) (map[string]int64, bool) {
			st := active(name, version)
			if st == nil || len(st.Active.Counters) == 0 {
				return nil, false
			}
			return st.Active.Counters, true
		},
		Quarantine: func(ctx context.Context, name, version, detail string) error {
			st := active(name, version)
			if st == nil {
				return nil // replaced or taken out meanwhile
			}
			ctx, cancel := context.WithTimeout(ctx, quarantineTimeout)
			defer cancel()
			_, err := cat.Update(ctx, st.Name, st.Identity, func(s *rollup.State) error {
				if !s.MarkQuarantined(version, detail, by, time.Now()) {
					return catalog.ErrNoChange
				}
				return nil
			})
			if err != nil && !errors.Is(err, catalog.ErrNoChange) {
				return fmt.Errorf("quarantine %s version %s: %w", name, version, err)
			}
			return nil
		},
		Registerer: reg,
		Log:        log,
	})
}
