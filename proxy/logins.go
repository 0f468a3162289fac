package proxy

import (
	"sort"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// A session that starts while the warehouse is unreachable cannot ask it
// what a session starts with: the ParameterStatus values, the settings local
// answers follow and the session's context (session_settings.go), which
// decides whether a rollup may answer it at all. It takes them from the last
// session of the same login instead: the same role, database and startup
// parameters start a session in the same state, unless the role's or
// database's defaults (ALTER ROLE ... SET) changed in between, which nothing
// can do during the outage. Privileges and policies changed before it are
// covered by the Probe: a value read for a Probe older than the catalog the
// Router last saw is never used.
//
// A login remembered here is also what lets the proxy authenticate the
// client at all (outage.go): it proves that the warehouse let the role into
// that database through the proxy (pg_hba.conf, CONNECT) and how it asked it
// to authenticate.

// maxLogins bounds the logins remembered; the least recently used go first.
const maxLogins = 10000

// authMethod is how the warehouse authenticated a login.
type authMethod uint8

const (
	authOther authMethod = iota // cleartext or MD5: pgrollup does not authenticate these itself
	authTrust                   // no password asked
	authSCRAM                   // SCRAM-SHA-256
)

// loginMemo is what the last session of a login started with. It is never
// changed once stored: an update stores a new one.
type loginMemo struct {
	method authMethod
	// statuses are the ParameterStatus messages of its startup, in order.
	statuses [][2]string
	// set are the settings and context read at its start (or later, while
	// the session had changed nothing); known says whether they were read.
	set   sessionSettings
	known bool
	at    time.Time
}

// loginMemos remembers logins by loginKey.
type loginMemos struct {
	c *lru.Cache[string, *loginMemo]
}

func newLoginMemos() *loginMemos {
	c, err := lru.New[string, *loginMemo](maxLogins)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &loginMemos{c: c}
}

// loginKey identifies a login by what decides the state its session starts
// in: every startup parameter except application_name, which only names
// the client.
func loginKey(params map[string]string) string {
	names := make([]string, 0, len(params))
	for name := range params {
		if name != "application_name" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(0)
		b.WriteString(params[name])
		b.WriteByte(0)
	}
	return b.String()
}

func (m *loginMemos) get(key string) *loginMemo {
	memo, _ := m.c.Get(key)
	return memo
}

// started remembers a login the warehouse let in. When its settings could
// not be read (the warehouse went away right after the login, say), what an
// earlier session of the login read stays.
func (m *loginMemos) started(key string, method authMethod, statuses [][2]string, set sessionSettings, known bool) {
	if old, ok := m.c.Peek(key); ok && !known && old.known {
		set, known = old.set, true
	}
	m.c.Add(key, &loginMemo{method: method, statuses: statuses, set: set, known: known, at: time.Now()})
}

// read remembers settings a session of the login read while it had changed
// nothing, which are what its login starts with: they are fresher than what
// its start read.
func (m *loginMemos) read(key string, set sessionSettings) {
	old, ok := m.c.Peek(key)
	if !ok {
		return
	}
	next := *old
	next.set, next.known, next.at = set, true, time.Now()
	m.c.Add(key, &next)
}

// settingsFor returns the memo's settings for a session starting now with
// current as the Probe, and whether they can be used: they were read for
// current, or for a Probe that asked the same of the same catalog (the
// Prober makes a new one now and then even when nothing changed).
func (memo *loginMemo) settingsFor(current *Probe) (sessionSettings, bool) {
	set := memo.set
	if !memo.known || !probeEquivalent(set.probe, current) {
		return sessionSettings{}, false
	}
	set.probe = current
	return set, true
}

// probeEquivalent reports whether values read for probe are the answer to
// current: it is current, or asked the same of the catalog current was
// made for.
func probeEquivalent(probe, current *Probe) bool {
	return probe == current || probe != nil && current != nil && current.Fingerprint != "" &&
		probe.Fingerprint == current.Fingerprint && probe.Select == current.Select && probe.Columns == current.Columns
}
