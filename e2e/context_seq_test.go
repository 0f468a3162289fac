package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlquote"
)

const (
	ctxSeqSeed = 1
	ctxSeqN    = 300
	// ctxSeqShown caps the differences reported one by one.
	ctxSeqShown = 10
)

// ctxSeqBaseline is the grants the sequence starts from and is left with.
var ctxSeqBaseline = []string{
	"GRANT SELECT ON public.orders TO ctx_seq, ctx_seq_a",
	"REVOKE SELECT ON public.orders FROM ctx_seq_b",
	"REVOKE SELECT (status, tenant_id) ON public.orders FROM ctx_seq_b",
	"GRANT ctx_seq_a, ctx_seq_b TO ctx_seq",
}

// TestContextSequence: a seeded random sequence of what changes which table
// a statement reads and with whose privileges — SET ROLE and RESET ROLE in
// their forms, search_path in its forms, temporary tables, transaction
// blocks and savepoints, GRANT and REVOKE committed on another connection
// straight to Postgres — interleaved with aggregates the rollup can answer,
// runs in the same order in a session through pgrollup and one straight to
// Postgres. Every statement's outcome must be the same: rows as a multiset,
// column names and types, command tag, SQLSTATE, transaction status.
//
// PGROLLUP_CTX_SEED=n runs another seed, PGROLLUP_CTX_N=n that many statements.
func TestContextSequence(t *testing.T) {
	seed, n := uint64(ctxSeqSeed), ctxSeqN
	if s := os.Getenv("PGROLLUP_CTX_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PGROLLUP_CTX_SEED=%q: %v", s, err)
		}
		seed = v
	}
	if s := os.Getenv("PGROLLUP_CTX_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("PGROLLUP_CTX_N=%q: %v", s, err)
		}
		n = v
	}
	t.Logf("seed %d, %d statements (PGROLLUP_CTX_SEED=n runs another seed, PGROLLUP_CTX_N=n that many)", seed, n)

	fx := startCtxFixture(t)
	fx.undoAfter(t, ctxSeqBaseline...)
	fx.adminTx(t, ctxSeqBaseline...)
	time.Sleep(ctxSettle)
	p := fx.pair(t, ctxSeq, ctxDB, nil)
	ctx := testCtx(t, 5*time.Minute)
	g := newCtxSeqGen(seed)

	began := time.Now()
	var transcript []string
	var hits float64
	differences, changes, pgErrors := 0, 0, 0
	for i := 0; i < n; i++ {
		st := g.next(p.direct.TxStatus())
		if st.admin {
			fx.adminTx(t, st.sql)
			time.Sleep(ctxSettle) // DESIGN.md §6: within 1 s
			changes++
			transcript = append(transcript, fmt.Sprintf("%3d (elsewhere) %s", i, st.sql))
			continue
		}
		d := ctxRun(ctx, p.direct, st.sql, st.mode)
		before := fx.hits(t)
		got := ctxRun(ctx, p.proxy, st.sql, st.mode)
		h := fx.hits(t) - before
		hits += h
		if d.err != nil {
			pgErrors++
		}
		line := fmt.Sprintf("%3d %s  [%s] -> %s", i, st.sql, st.mode.name, ctxSeqShort(d))
		if h > 0 {
			line += " (pgrollup: from the rollup)"
		}
		diffs := ctxCompare(d, got)
		if len(diffs) > 0 {
			differences++
			line += "  <== DIFFERS"
			if differences <= ctxSeqShown {
				from := max(0, len(transcript)-8)
				t.Errorf("statement %d of seed %d differs; %s:\n  ...\n  %s\n  %s\n  %s",
					i, seed, ctxSeqOrigin(h), strings.Join(transcript[from:], "\n  "), line, strings.Join(diffs, "\n  "))
			}
		}
		transcript = append(transcript, line)
		if p.direct.IsClosed() || p.proxy.IsClosed() {
			t.Fatalf("a session was closed at statement %d:\n%s", i, line)
		}
	}
	t.Logf("%d statements (%d changes made elsewhere, %d Postgres errors), %v executions answered from the rollup, %d differences, %v",
		n, changes, pgErrors, hits, differences, time.Since(began).Round(time.Millisecond))
	if differences > 0 {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("pgrollup-context-seed%d.txt", seed))
		if err := os.WriteFile(path, []byte(strings.Join(transcript, "\n")+"\n"), 0o644); err == nil {
			t.Logf("the whole sequence and Postgres's outcomes are in %s", path)
		}
		t.Errorf("%d of %d statements of seed %d answered differently through pgrollup (the first %d are reported above)", differences, n, seed, min(differences, ctxSeqShown))
	}
	if hits == 0 {
		t.Errorf("no statement was answered from the rollup: the sequence compares nothing but Postgres with itself")
	}
}

func ctxSeqOrigin(hits float64) string {
	if hits > 0 {
		return "pgrollup answered it FROM THE ROLLUP"
	}
	return "pgrollup passed it to Postgres"
}

// ctxSeqShort is Postgres's outcome in a few words.
func ctxSeqShort(a ctxAnswer) string {
	if a.err != nil {
		return "ERROR " + ctxCode(a.err)
	}
	return a.tag
}

// ctxSeqStmt is one step of the sequence.
type ctxSeqStmt struct {
	sql   string
	mode  diffMode
	admin bool // run on another connection straight to Postgres
}

// ctxSeqGen draws the sequence. What it draws next depends on the seed and
// on the transaction status of the session straight to Postgres, so that
// blocks open, fail and end as they would for a client.
type ctxSeqGen struct {
	rng        *rand.Rand
	savepoints int
}

func newCtxSeqGen(seed uint64) *ctxSeqGen {
	return &ctxSeqGen{rng: rand.New(rand.NewPCG(seed, seed^0x636f6e74657874))}
}

var (
	ctxSeqRoles = []string{ctxSeqA, ctxSeqB, ctxOutsider, ctxWeirdRole}
	// ctxSeqPaths are search_path values as SHOW prints them.
	ctxSeqPaths = []string{
		"public", "other, public", "other", "pg_temp, public", "public, pg_temp", "ctx_nosuch, public",
		"ctx_nosuch", `"$user", public`, `"schémà", public`, `"we""ird", public`, "", "ctx_seq_a, public",
	}
	ctxSeqSelects = []string{
		"SELECT status, sum(amount) AS total, count(*) AS n FROM %s%s GROUP BY status",
		"SELECT tenant_id, count(*) FROM %s%s GROUP BY tenant_id",
		"SELECT count(*), sum(amount) FROM %s%s",
		"SELECT date_trunc('month', created_at) AS month, status, sum(amount) FROM %s%s GROUP BY 1, 2",
		"SELECT status, tenant_id, count(*) FROM %s%s GROUP BY 1, 2 ORDER BY 1, 2",
	}
	ctxSeqFilters = []string{
		"", "", " WHERE status IN ('completed', 'shipped')", " WHERE tenant_id = 2",
		" WHERE created_at >= '2024-02-01' AND created_at < '2024-03-01'", " WHERE status <> 'pending' AND tenant_id IN (1, 3)",
	}
	ctxSeqAdmin = []string{
		"GRANT SELECT ON public.orders TO ctx_seq_b", "REVOKE SELECT ON public.orders FROM ctx_seq_b",
		"GRANT SELECT ON public.orders TO ctx_seq_a", "REVOKE SELECT ON public.orders FROM ctx_seq_a",
		"GRANT SELECT ON public.orders TO ctx_seq", "REVOKE SELECT ON public.orders FROM ctx_seq",
		"GRANT ctx_seq_a TO ctx_seq", "REVOKE ctx_seq_a FROM ctx_seq",
		"GRANT SELECT (status, tenant_id) ON public.orders TO ctx_seq_b", "REVOKE SELECT (status, tenant_id) ON public.orders FROM ctx_seq_b",
	}
)

// ctxSeqWeights: how often each kind of step comes, by transaction status.
var ctxSeqWeights = map[byte][]struct {
	kind string
	w    int
}{
	'I': {{"query", 40}, {"begin", 8}, {"role", 8}, {"reset_role", 4}, {"path", 10}, {"reset_path", 3},
		{"temp", 3}, {"drop_temp", 4}, {"discard", 2}, {"admin", 5}},
	'T': {{"query", 40}, {"role", 8}, {"reset_role", 3}, {"path", 8}, {"temp", 3}, {"drop_temp", 3},
		{"savepoint", 4}, {"rollback_to", 3}, {"release", 2}, {"commit", 7}, {"rollback", 6}, {"admin", 3}},
	'E': {{"rollback", 50}, {"rollback_to", 20}, {"query", 20}, {"commit", 10}},
}

func (g *ctxSeqGen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *ctxSeqGen) next(tx byte) ctxSeqStmt {
	if tx == 'I' {
		g.savepoints = 0
	}
	weights := ctxSeqWeights[tx]
	if weights == nil {
		weights = ctxSeqWeights['I']
	}
	total := 0
	for _, w := range weights {
		total += w.w
	}
	r := g.rng.IntN(total)
	kind := ""
	for _, w := range weights {
		if r < w.w {
			kind = w.kind
			break
		}
		r -= w.w
	}
	simple := ctxSeqStmt{mode: diffModeSimpleText}
	switch kind {
	case "query":
		table := "orders"
		if g.rng.IntN(10) == 0 {
			table = "public.orders"
		}
		st := ctxSeqStmt{sql: fmt.Sprintf(g.pick(ctxSeqSelects), table, g.pick(ctxSeqFilters)), mode: diffModeSimpleText}
		if g.rng.IntN(10) < 4 {
			st.mode = diffModeExtBinary
		}
		return st
	case "begin":
		simple.sql = g.pick([]string{"BEGIN", "BEGIN", "START TRANSACTION ISOLATION LEVEL REPEATABLE READ"})
	case "role":
		role := g.pick(ctxSeqRoles)
		local := tx == 'T' && g.rng.IntN(2) == 0
		switch g.rng.IntN(4) {
		case 0:
			simple.sql = fmt.Sprintf("SELECT set_config('role', %s, %v)", sqlquote.Literal(role), local)
		default:
			simple.sql = "SET ROLE " + sqlquote.Ident(role)
			if local {
				simple.sql = "SET LOCAL ROLE " + sqlquote.Ident(role)
			}
		}
	case "reset_role":
		simple.sql = g.pick([]string{"RESET ROLE", "SET ROLE NONE", "SELECT set_config('role', 'none', false)"})
	case "path":
		path := g.pick(ctxSeqPaths)
		local := tx == 'T' && g.rng.IntN(2) == 0
		switch g.rng.IntN(4) {
		case 0:
			simple.sql = fmt.Sprintf("SELECT set_config('search_path', %s, %v)", sqlquote.Literal(path), local)
		default:
			value := path
			if value == "" {
				value = "''"
			}
			simple.sql = "SET search_path = " + value
			if local {
				simple.sql = "SET LOCAL search_path = " + value
			}
		}
	case "reset_path":
		simple.sql = g.pick([]string{"RESET search_path", "SET search_path TO DEFAULT"})
	case "temp":
		onCommit := ""
		if tx == 'T' && g.rng.IntN(3) == 0 {
			onCommit = " ON COMMIT DROP"
		}
		// Another table's rows, so that every aggregate over it differs.
		simple.sql = fmt.Sprintf("CREATE TEMP TABLE orders%s AS SELECT * FROM other.orders WHERE id %% %d = 1", onCommit, 2+g.rng.IntN(40))
	case "drop_temp":
		simple.sql = g.pick([]string{"DROP TABLE IF EXISTS pg_temp.orders", "DROP TABLE IF EXISTS pg_temp.orders", "DISCARD TEMP"})
	case "discard":
		simple.sql = "DISCARD ALL"
	case "savepoint":
		g.savepoints++
		simple.sql = fmt.Sprintf("SAVEPOINT s%d", g.savepoints)
	case "rollback_to", "release":
		if g.savepoints == 0 {
			simple.sql = "ROLLBACK"
			break
		}
		verb := "ROLLBACK TO SAVEPOINT"
		if kind == "release" {
			verb = "RELEASE SAVEPOINT"
		}
		simple.sql = fmt.Sprintf("%s s%d", verb, g.savepoints)
		if kind == "release" {
			g.savepoints--
		}
	case "commit":
		simple.sql = "COMMIT"
	case "rollback":
		simple.sql = "ROLLBACK"
	case "admin":
		return ctxSeqStmt{sql: g.pick(ctxSeqAdmin), admin: true}
	}
	return simple
}
