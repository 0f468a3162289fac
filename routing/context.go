package routing

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/sqlquote"
	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// A rollup answers for a session only as the warehouse would answer for it
// now: the table names the statement writes must resolve, in the session's
// database, search_path and temp tables, to the tables the rollup was built
// from; the session's current role must be allowed to read them; and
// row-level security must be applied as Postgres would apply it, or the
// statement goes to the warehouse.
//
// Two reads make that so. Each session reads its own context on its own
// connection (a proxy.Probe, read along with the settings the proxy already
// follows, and again after anything that may change it: SET, RESET, DDL, the
// end of a block, a function the proxy cannot vouch for): what each name
// resolves to, has_table_privilege and row_security_active as the current
// role, the policies that apply to it and the settings they read. Changes
// made by other sessions (GRANT, REVOKE, role membership, policies, RLS
// switches, a table created earlier in someone's search_path) are noticed by
// one service connection polling a fingerprint of the catalog rows they
// touch every ContextPollInterval; a new fingerprint is a new Probe, which
// every session reads again before its next answer from a rollup.

// ContextPollInterval is how often the catalog fingerprint is read: a change
// made elsewhere takes effect within this plus one round trip.
const ContextPollInterval = 250 * time.Millisecond

// ContextWatch follows what session contexts depend on and reads the values
// each session's Probe returns.
type ContextWatch struct {
	db     Warehouse
	log    *slog.Logger
	maxAge time.Duration

	tables atomic.Pointer[[]*rewrite.Table] // the tables rollups read, from the catalog
	wake   chan struct{}
	state  atomic.Pointer[contextState]

	mu    sync.Mutex
	views map[string]*sessionView // parsed probe values, by probe and values
}

// NewContextWatch returns a watch that polls db once Run starts. maxAge
// bounds how long a session's read is trusted without any change seen
// (routing.privilege_cache_ttl); 0 means no bound beyond the polling.
func NewContextWatch(db Warehouse, maxAge time.Duration, log *slog.Logger) *ContextWatch {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &ContextWatch{db: db, log: log, maxAge: maxAge, wake: make(chan struct{}, 1), views: map[string]*sessionView{}}
	w.state.Store(&contextState{})
	return w
}

// contextState is one generation: the Probe sessions read and what is
// needed to understand its values.
type contextState struct {
	probe    *proxy.Probe // nil until the first poll
	database string       // the database the catalog's OIDs belong to
	names    []string     // unqualified table names, probed in this order
	tables   []*rewrite.Table
	settings []string                   // settings policies read, probed in this order
	policies map[uint32]*policy         // by pg_policy OID
	byTable  map[uint32]map[uint32]bool // table OID -> its SELECT policies
	print    string                     // the fingerprint it was built from
	at       time.Time
}

// Probe columns before the per-name, per-table and per-setting ones.
const (
	probeDatabase = iota
	probeCurrentUser
	probeSessionUser
	probeRowSecurity
	probeSuperuser
	probeMaxStaleness
	probeFixed
)

// stalenessSetting is the session setting that bounds how old a rollup
// answer may be for that session. Postgres keeps any setting with a dot in
// its name, so a SET of it or a startup option reaches the warehouse
// unchanged and is read back with the session's context.
const stalenessSetting = "pgrollup.max_staleness"

// SetTables names the tables rollups read; the next poll builds a Probe for
// them.
func (w *ContextWatch) SetTables(tables []*rewrite.Table) {
	w.tables.Store(&tables)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Probe implements proxy.Prober.
func (w *ContextWatch) Probe() *proxy.Probe { return w.state.Load().probe }

// Run polls until ctx ends.
func (w *ContextWatch) Run(ctx context.Context) {
	t := time.NewTicker(ContextPollInterval)
	defer t.Stop()
	failing := false
	for {
		if err := w.poll(ctx); err != nil {
			if !failing && ctx.Err() == nil {
				w.log.Warn("cannot read privileges and policies from the warehouse; sessions keep what they read", "err", err)
			}
			failing = true
		} else if failing {
			w.log.Info("privileges and policies readable again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// fingerprintQuery digests the catalog rows a session's context depends on:
// relations named like a rollup's tables in any schema (creation, renames,
// owners, ACLs, RLS switches), their columns' ACLs, their policies, schemas
// (names and USAGE), roles (names, superuser, inheritance, BYPASSRLS) and
// role membership. Other sessions' temp tables are left out: they resolve
// only for the session that made them, whose own DDL the proxy follows.
const fingerprintQuery = `SELECT pg_catalog.current_database(), pg_catalog.md5(pg_catalog.concat_ws('|',
 (SELECT pg_catalog.string_agg(concat_ws(':', c.oid, c.relnamespace, c.relname, c.relkind, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity), ',' ORDER BY c.oid)
    FROM pg_catalog.pg_class c WHERE c.relname = ANY($1::text[]) AND c.relpersistence <> 't'),
 (SELECT pg_catalog.string_agg(concat_ws(':', a.attrelid, a.attnum, a.attname, a.attacl), ',' ORDER BY a.attrelid, a.attnum)
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    WHERE c.relname = ANY($1::text[]) AND c.relpersistence <> 't' AND a.attacl IS NOT NULL),
 (SELECT pg_catalog.string_agg(concat_ws(':', p.oid, p.polrelid, p.polname, p.polcmd, p.polpermissive, p.polroles, pg_catalog.pg_get_expr(p.polqual, p.polrelid)), ',' ORDER BY p.oid)
    FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid WHERE c.relname = ANY($1::text[])),
 (SELECT pg_catalog.string_agg(concat_ws(':', n.oid, n.nspname, n.nspacl), ',' ORDER BY n.oid)
    FROM pg_catalog.pg_namespace n WHERE n.nspname !~ '^pg_(toast_)?temp_'),
 (SELECT pg_catalog.string_agg(concat_ws(':', r.oid, r.rolname, r.rolsuper, r.rolinherit, r.rolbypassrls), ',' ORDER BY r.oid) FROM pg_catalog.pg_roles r),
 (SELECT pg_catalog.string_agg(concat_ws(':', m.roleid, m.member), ',' ORDER BY m.roleid, m.member) FROM pg_catalog.pg_auth_members m)))`

// policiesQuery lists the SELECT policies on the tables rollups read.
const policiesQuery = `SELECT p.oid, p.polrelid, p.polpermissive, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY($1::oid[]) AND p.polcmd IN ('r', '*')`

func (w *ContextWatch) poll(ctx context.Context) error {
	tp := w.tables.Load()
	if tp == nil {
		return nil
	}
	tables := *tp
	names := unqualifiedNames(tables)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var database, print string
	if err := w.db.QueryRow(ctx, fingerprintQuery, names).Scan(&database, &print); err != nil {
		return fmt.Errorf("catalog fingerprint: %w", err)
	}
	old := w.state.Load()
	now := time.Now()
	if old.probe != nil && old.print == print && old.database == database && sameTables(old.tables, tables) &&
		(w.maxAge <= 0 || now.Sub(old.at) < w.maxAge) {
		return nil
	}
	oids := make([]uint32, 0, len(tables))
	for _, t := range tables {
		oids = append(oids, t.OID)
	}
	rows, err := w.db.Query(ctx, policiesQuery, oids)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	st := &contextState{database: database, names: names, tables: tables, print: print, at: now,
		policies: map[uint32]*policy{}, byTable: map[uint32]map[uint32]bool{}}
	settings := map[string]bool{}
	for rows.Next() {
		var oid, rel uint32
		var permissive bool
		var qual *string
		if err := rows.Scan(&oid, &rel, &permissive, &qual); err != nil {
			rows.Close()
			return fmt.Errorf("policies: %w", err)
		}
		p := &policy{permissive: permissive}
		if qual != nil {
			p.template, p.parts, p.err = parsePolicy(*qual)
		} else {
			p.err = fmt.Errorf("no USING expression")
		}
		for _, part := range p.parts {
			if part.setting != "" {
				settings[part.setting] = true
			}
		}
		st.policies[oid] = p
		if st.byTable[rel] == nil {
			st.byTable[rel] = map[uint32]bool{}
		}
		st.byTable[rel][oid] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	for s := range settings {
		st.settings = append(st.settings, s)
	}
	sort.Strings(st.settings)
	st.probe = st.buildProbe()
	// The fingerprint covers what the values depend on beyond the session,
	// with the database the OIDs belong to.
	st.probe.Fingerprint = database + "/" + print
	w.state.Store(st)
	w.mu.Lock()
	w.views = map[string]*sessionView{}
	w.mu.Unlock()
	if old.probe != nil {
		w.log.Debug("session contexts are read again", "reason", "privileges, policies, names or catalog changed")
	}
	return nil
}

func sameTables(a, b []*rewrite.Table) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].OID != b[i].OID {
			return false
		}
	}
	return true
}

// unqualifiedNames lists the relation names of tables, once each.
func unqualifiedNames(tables []*rewrite.Table) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range tables {
		_, n := splitQualified(t.Name)
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func splitQualified(q string) (schema, name string) {
	if i := strings.IndexByte(q, '.'); i >= 0 {
		return q[:i], q[i+1:]
	}
	return "public", q
}

// buildProbe writes the select-list each session reads. Every column is
// text that is never empty, so that NULL (which the proxy reads as "") is
// told apart, and no expression can fail: a failing read inside a
// transaction block would abort the client's transaction.
func (st *contextState) buildProbe() *proxy.Probe {
	cols := []string{
		"pg_catalog.current_database()::text",
		"'u' || current_user",
		"'u' || session_user",
		"pg_catalog.current_setting('row_security')",
		"coalesce((SELECT r.rolsuper::text FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), 'false')",
		fmt.Sprintf("coalesce('v' || pg_catalog.current_setting(%s, true), 'n')", sqlquote.EscapeLiteral(stalenessSetting)),
	}
	for _, n := range st.names {
		cols = append(cols, fmt.Sprintf("coalesce(pg_catalog.to_regclass(%s)::oid::text, '-')", sqlquote.EscapeLiteral(sqlquote.Ident(n))))
	}
	for _, t := range st.tables {
		s, n := splitQualified(t.Name)
		cols = append(cols, fmt.Sprintf(`coalesce((SELECT pg_catalog.concat_ws(',', c.oid, pg_catalog.has_table_privilege(c.oid, 'SELECT'),
 pg_catalog.has_schema_privilege(c.relnamespace, 'USAGE'), pg_catalog.row_security_active(c.oid),
 (SELECT pg_catalog.string_agg(p.oid::text, ' ' ORDER BY p.oid) FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polcmd IN ('r', '*')
   AND (0 = ANY(p.polroles) OR EXISTS (SELECT FROM pg_catalog.unnest(p.polroles) r WHERE r <> 0 AND pg_catalog.pg_has_role(current_user, r, 'USAGE')))))
 FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass(%s)), '-')`, sqlquote.EscapeLiteral(sqlquote.Ident(s)+"."+sqlquote.Ident(n))))
	}
	for _, s := range st.settings {
		cols = append(cols, fmt.Sprintf("coalesce('v' || pg_catalog.current_setting(%s, true), 'n')", sqlquote.EscapeLiteral(s)))
	}
	return &proxy.Probe{Select: strings.Join(cols, ", "), Columns: len(cols)}
}

// sessionView is what a session's probe values say, in the rewrite
// engine's terms.
type sessionView struct {
	tables     map[string]string // name as written -> catalog table
	rowFilters map[string]string
	readable   map[string]bool // catalog table -> SELECT on it and USAGE on its schema
	superuser  bool            // the current role is a superuser
	staleness  rewrite.StalenessSetting
	key        string
}

// unknownView is the view of a session whose context is not known: no name
// resolves, so no rollup answers.
var unknownView = &sessionView{tables: map[string]string{}, key: "unknown"}

// view returns what a session's probe values mean, or nil when they were
// read for another Probe than the current one (or not at all).
func (w *ContextWatch) view(sess *proxy.SessionInfo) *sessionView {
	st := w.state.Load()
	if st.probe == nil || sess.Probe != st.probe || len(sess.Probed) != st.probe.Columns {
		return nil
	}
	k := strings.Join(sess.Probed, "\x00")
	w.mu.Lock()
	v, ok := w.views[k]
	w.mu.Unlock()
	if ok {
		return v
	}
	v = st.interpret(sess.Probed)
	w.mu.Lock()
	if len(w.views) >= 4096 {
		w.views = map[string]*sessionView{}
	}
	w.views[k] = v
	w.mu.Unlock()
	return v
}

// tableProbe is one table's column of the probe.
type tableProbe struct {
	oid        uint32
	selectable bool
	usable     bool
	rls        bool
	policies   []uint32
}

func parseTableProbe(v string) (tableProbe, bool) {
	if v == "-" || v == "" {
		return tableProbe{}, false
	}
	f := strings.Split(v, ",")
	if len(f) < 4 {
		return tableProbe{}, false
	}
	oid, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return tableProbe{}, false
	}
	tp := tableProbe{oid: uint32(oid), selectable: f[1] == "t", usable: f[2] == "t", rls: f[3] == "t"}
	if len(f) > 4 {
		for _, s := range strings.Fields(f[4]) {
			p, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return tableProbe{}, false
			}
			tp.policies = append(tp.policies, uint32(p))
		}
	}
	return tp, true
}

// interpret reads one session's probe values.
func (st *contextState) interpret(vals []string) *sessionView {
	v := &sessionView{tables: map[string]string{}, rowFilters: map[string]string{}, readable: map[string]bool{}}
	if vals[probeDatabase] != st.database {
		v.key = "other database"
		return v
	}
	v.superuser = vals[probeSuperuser] == "true"
	v.staleness = parseStaleness(vals[probeMaxStaleness])
	session := sessionValues{
		currentUser: strings.TrimPrefix(vals[probeCurrentUser], "u"),
		sessionUser: strings.TrimPrefix(vals[probeSessionUser], "u"),
		settings:    map[string]*string{},
	}
	base := probeFixed + len(st.names) + len(st.tables)
	for i, s := range st.settings {
		if x := vals[base+i]; strings.HasPrefix(x, "v") {
			val := x[1:]
			session.settings[s] = &val
		} else {
			session.settings[s] = nil
		}
	}
	byOID := map[uint32]string{}
	var keys []string
	for i, t := range st.tables {
		tp, ok := parseTableProbe(vals[probeFixed+len(st.names)+i])
		// The table the session sees under the catalog's name must be the
		// one the rollups were built from, not one dropped and created
		// again since.
		if !ok || tp.oid != t.OID {
			keys = append(keys, t.Name+"=gone")
			continue
		}
		byOID[t.OID] = t.Name
		v.tables[t.Name] = t.Name
		v.readable[t.Name] = tp.selectable && tp.usable
		keys = append(keys, fmt.Sprintf("%s=%t", t.Name, v.readable[t.Name]))
		if tp.rls {
			f := ""
			if vals[probeRowSecurity] == "on" {
				f = st.rowFilter(t.OID, tp.policies, session)
			}
			v.rowFilters[t.Name] = f
			keys = append(keys, "rls "+t.Name+"="+f)
		}
	}
	for i, n := range st.names {
		oid, err := strconv.ParseUint(vals[probeFixed+i], 10, 32)
		if err != nil {
			continue
		}
		if q, ok := byOID[uint32(oid)]; ok {
			v.tables[n] = q
			keys = append(keys, n+"->"+q)
		}
	}
	v.key = strings.Join(keys, "\x00")
	return v
}

// parseStaleness reads the probed pgrollup.max_staleness: "n" when the
// session never set it, "v" when it was set and reset (Postgres then shows
// an empty string), else "v" and the value, a duration as the config file
// writes them ('5min', '30 seconds', '1h', '0').
func parseStaleness(probed string) rewrite.StalenessSetting {
	val, ok := strings.CutPrefix(probed, "v")
	if !ok || strings.TrimSpace(val) == "" {
		return rewrite.StalenessSetting{}
	}
	d, err := config.ParseDuration(val)
	if err != nil || d < 0 {
		return rewrite.StalenessSetting{Invalid: val}
	}
	return rewrite.StalenessSetting{Set: true, Max: d.Std()}
}
