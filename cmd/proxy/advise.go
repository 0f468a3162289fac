package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrollup/pgrollup/advise"
	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/routing"
)

// adviseTimeout bounds advise's reads of the admin API and the warehouse.
const adviseTimeout = 10 * time.Minute

// runAdvise is "pgrollup advise": it reads the statements a running pgrollup
// passed through (GET /api/misses), the warehouse's tables and statistics,
// and prints rollups to append to the config. Exit 0 with advice (possibly
// none), 1 on bad arguments, config, or an unreachable pgrollup or
// warehouse.
func runAdvise(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("advise", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin, token := adminFlags(fs)
	cfgPath := fs.String("config", "pgrollup.yaml", "the running pgrollup's configuration file")
	dsn := fs.String("warehouse", "", "the warehouse to read tables and statistics from (default: the config's warehouse.dsn)")
	maxN := fs.Int("max", 10, "the most rollups to propose")
	minStatements := fs.Int64("min-statements", 2, "the fewest times a statement shape must have reached the warehouse to be considered")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if fs.NArg() != 0 || *maxN < 1 || *minStatements < 1 {
		fmt.Fprintln(stderr, "usage: pgrollup advise [--config FILE] [--warehouse DSN] [--admin URL] [--token T] [--max N] [--min-statements K]")
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "pgrollup advise: %v\n", err)
		return 1
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail(err)
	}
	c, err := newAdminClient(*admin, *token)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), adviseTimeout)
	defer cancel()
	var misses []routing.Miss
	if err := c.do(ctx, http.MethodGet, "/api/misses", &misses); err != nil {
		return fail(err)
	}
	if *dsn == "" {
		*dsn = cfg.Warehouse.DSN
	}
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return fail(fmt.Errorf("cannot connect to the warehouse: %w", err))
	}
	defer conn.Close(context.Background())
	tables, err := routing.LoadTables(ctx, conn, cfg)
	if err != nil {
		return fail(err)
	}
	bytewise, err := routing.TextSortsBytewise(ctx, conn)
	if err != nil {
		return fail(err)
	}
	est := &advise.Estimator{DB: conn, Config: cfg}
	a, err := advise.Plan(ctx, misses, advise.Options{
		Config: cfg, Tables: tables, TextSortsBytewise: bytewise, Rows: est.Rows,
		Max: *maxN, MinStatements: *minStatements, Now: time.Now(),
	})
	if err != nil {
		return fail(err)
	}
	var out bytes.Buffer
	if err := a.WriteYAML(&out); err != nil {
		return fail(err)
	}
	// The advice must load appended to the config it was made for.
	file, err := os.ReadFile(*cfgPath)
	if err != nil {
		return fail(err)
	}
	if _, err := config.Parse(append(append(file, '\n'), out.Bytes()...), *cfgPath); err != nil {
		return fail(fmt.Errorf("the advice does not load appended to %s: %w", *cfgPath, err))
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return fail(err)
	}
	return 0
}
