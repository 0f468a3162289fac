package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pgrollup/pgrollup/proxy/pgfmt"
)

// A local answer depends on two settings Postgres never reports with
// ParameterStatus: extra_float_digits (how floats print) and
// statement_timeout (how long the answer may take). Both may come from the
// startup packet, postgresql.conf, ALTER ROLE or ALTER DATABASE, and change
// with SET, SET LOCAL, RESET, DISCARD ALL, the end of a transaction block, a
// rolled-back savepoint or implicit transaction, or a function that calls
// set_config. So the proxy reads them from the warehouse when the session
// starts and again, on the session's own connection, after a statement that
// may have changed them: right after it when it named them (SET, RESET,
// DISCARD ALL), else when a local answer next needs them. A session pays
// nothing while nothing changes them, and a statement the proxy cannot
// vouch for only costs a read if an answer from a rollup follows.

// settingsQuery reads the settings on the session's own connection.
const settingsQuery = "SELECT pg_catalog.current_setting('extra_float_digits'), pg_catalog.current_setting('statement_timeout')"

// settingsColumns is the number of columns of settingsQuery; the Probe's
// columns follow them.
const settingsColumns = 2

// sessionSettings are the values a local answer depends on.
type sessionSettings struct {
	floatDigits string        // extra_float_digits, as the warehouse shows it
	timeout     time.Duration // statement_timeout; 0 is none
	// probe is the Probe read with them, and probed its values: the
	// session's context as the Router asked for it. A read of an older
	// Probe than the Prober's current one tells nothing now.
	probe  *Probe
	probed []string
}

// settingsSQL is the read of the settings and of probe's columns.
func settingsSQL(probe *Probe) string {
	if probe == nil || probe.Columns == 0 {
		return settingsQuery
	}
	return settingsQuery + ", " + probe.Select
}

// settingsState is what the proxy knows of sessionSettings. It is guarded
// by session.stateMu: the client loop notes possible changes, the upstream
// loop stores what the warehouse answered.
type settingsState struct {
	// readWanted: read again at the next sync point the proxy relays,
	// rather than wait for a local answer that might find the warehouse
	// busy with the client's own batch. Written with stateMu held; read
	// without it at every sync point, where it is nearly always false.
	// First, so that it shares a cache line with the session's fields
	// every relayed statement touches.
	readWanted atomic.Bool

	sessionSettings // the last values read
	// known: the values were read and nothing changed them since.
	known bool
	// gen counts possible changes; a read that was sent before the latest
	// one tells nothing about the values now.
	gen uint64
	// staleAtBlockEnd: a change happened that the end of a transaction
	// block (or a rolled-back savepoint) may undo; readAtBlockEnd: one
	// that named the settings, so that they are worth reading right after.
	staleAtBlockEnd bool
	readAtBlockEnd  bool
	// reading counts the reads on their way.
	reading int
	// defaults are the values read when the session started, which RESET
	// ALL and DISCARD ALL return to; defaultsKnown says whether that read
	// succeeded.
	defaults      sessionSettings
	defaultsKnown bool
}

// settingsRead is one read of the settings in flight; the upstream loop
// fills it from the answer to settingsQuery.
type settingsRead struct {
	gen    uint64
	probe  *Probe
	values []string // the DataRow's columns
	failed bool
}

// settingsUnknownError fails a local answer whose settings could not be read
// safely; with Fallback the warehouse answers instead.
type settingsUnknownError struct{}

func (settingsUnknownError) Error() string {
	return "pgrollup: extra_float_digits or statement_timeout may have changed in this pipeline and cannot be read back before the answer, which depends on them"
}

// FallbackReason labels the fallback in pgrollup_rollup_fallbacks_total.
func (settingsUnknownError) FallbackReason() string { return "settings_unknown" }

// ExpectedFallback: the warehouse answering here is a decision, not a
// failure worth a warning.
func (settingsUnknownError) ExpectedFallback() bool { return true }

// ErrStaleContext is what an Answer returns when SessionInfo.Probe is no
// longer the Prober's current Probe: the Prober made a new one between the
// proxy's read of the session's context and the answer, and the values tell
// nothing now. The proxy reads the context again, when it safely can, and
// runs the Answer once more; otherwise the answer fails with
// settingsUnknownError (or falls back to the warehouse).
var ErrStaleContext = errors.New("pgrollup: the session's context was read for an earlier Probe")

// staleContextRetries bounds the reads again for one answer: the Prober
// makes a new Probe every few seconds at most, so one read nearly always
// does.
const staleContextRetries = 3

// readContextAgain reads the settings and the context for the current
// Probe before an answer runs again; settingsUnknownError when it cannot.
func (s *session) readContextAgain() error {
	s.group.mayBlock()
	if err := s.readSettingsNow(); err != nil {
		return err
	}
	s.stateMu.Lock()
	known := s.settingsKnownLocked()
	s.stateMu.Unlock()
	if !known {
		return settingsUnknownError{}
	}
	return nil
}

// parseSettings decodes the columns of settingsSQL(probe).
func parseSettings(values []string, probe *Probe) (sessionSettings, error) {
	want := settingsColumns
	if probe != nil {
		want += probe.Columns
	}
	if len(values) != want {
		return sessionSettings{}, fmt.Errorf("settings: %d values, want %d", len(values), want)
	}
	if _, err := pgfmt.ParseExtraFloatDigits(values[0]); err != nil {
		return sessionSettings{}, fmt.Errorf("settings: %w", err)
	}
	timeout, err := parseTimeout(values[1])
	if err != nil {
		return sessionSettings{}, fmt.Errorf("settings: %w", err)
	}
	set := sessionSettings{floatDigits: values[0], timeout: timeout, probe: probe}
	if probe != nil && probe.Columns > 0 {
		set.probed = values[settingsColumns:]
	}
	return set, nil
}

// timeUnits are the units current_setting shows a millisecond setting in:
// the largest that divides the value.
var timeUnits = map[string]time.Duration{
	"": time.Millisecond, "ms": time.Millisecond, "s": time.Second,
	"min": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
}

// parseTimeout parses statement_timeout as current_setting shows it: "0",
// "50ms", "5s", "1min", ...
func parseTimeout(v string) (time.Duration, error) {
	i := 0
	for i < len(v) && '0' <= v[i] && v[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	unit, ok := timeUnits[strings.TrimSpace(v[i:])]
	if err != nil || !ok || n < 0 || n > int64(1<<62)/int64(unit) {
		return 0, fmt.Errorf("unrecognized statement_timeout %q", v)
	}
	return time.Duration(n) * unit, nil
}

// decodeDataRow returns the text columns of a DataRow body; NULL is "",
// and so is an empty string: a probe's columns that must tell them apart
// are written never to be empty.
func decodeDataRow(body []byte) ([]string, bool) {
	if len(body) < 2 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	values := make([]string, 0, n)
	for range n {
		if len(body) < 4 {
			return nil, false
		}
		size := int(int32(binary.BigEndian.Uint32(body)))
		body = body[4:]
		if size < 0 {
			values = append(values, "")
			continue
		}
		if len(body) < size {
			return nil, false
		}
		values = append(values, string(body[:size]))
		body = body[size:]
	}
	return values, len(body) == 0
}

// readStartupSettings reads the settings local answers depend on
// (session_settings.go) on a connection that has just started, before the
// session's loops run on it. They may come from the startup packet,
// postgresql.conf, ALTER ROLE or ALTER DATABASE, which only the warehouse
// can tell. If the read fails they stay unknown, and the first local answer
// that needs them reads them again. It returns what it read, and lost when
// the read failed because the connection ended.
func (s *session) readStartupSettings() (set sessionSettings, known, lost bool) {
	probe := s.srv.probe()
	if err := s.writeUpstream(appendMessage(nil, 'Q', appendCString(nil, settingsSQL(probe)))); err != nil {
		return sessionSettings{}, false, true
	}
	var values []string
	failed := false
	for {
		msg, err := s.upMsgs.next()
		if err != nil {
			return sessionSettings{}, false, true
		}
		switch msg.typ {
		case 'D':
			var ok bool
			values, ok = decodeDataRow(msg.body())
			failed = failed || !ok
		case 'E':
			failed = true
		case 'Z':
			if failed {
				return sessionSettings{}, false, false
			}
			v, err := parseSettings(values, probe)
			if err != nil {
				s.logger().Warn("cannot read the session's settings and context", "err", err)
				return sessionSettings{}, false, false
			}
			s.startedWith(v)
			return v, true, false
		}
	}
}

// startedWith makes set the settings of a session that has just started.
func (s *session) startedWith(set sessionSettings) {
	s.stateMu.Lock()
	s.set.sessionSettings, s.set.known = set, true
	s.set.defaults, s.set.defaultsKnown = set, true
	s.set.staleAtBlockEnd, s.set.readAtBlockEnd = false, false
	s.set.readWanted.Store(false)
	s.stateMu.Unlock()
}

// borrowSettings starts the session with the settings the last session of
// its login read (logins.go), when they hold for the current Probe.
func (s *session) borrowSettings() (sessionSettings, bool) {
	memo := s.srv.logins.get(s.loginKey)
	if memo == nil {
		return sessionSettings{}, false
	}
	set, ok := memo.settingsFor(s.srv.probe())
	if ok {
		s.startedWith(set)
	}
	return set, ok
}

// settingsMayChange notes a statement about to be relayed that may change
// the settings, so that they are read again before a local answer uses
// them. st is nil when the proxy does not know the statement (an Execute of
// a portal it did not see bound). The client loop calls it.
func (s *session) settingsMayChange(st *Statement) {
	if st != nil && st.text().plain {
		return // settingsNeutralText, and it names nothing settingsChange looks for
	}
	s.settingsChange(st)
}

// settingsChange is settingsMayChange for any statement.
func (s *session) settingsChange(st *Statement) {
	// SET, SET LOCAL, RESET, set_config naming them, DISCARD ALL: read
	// them again at the end of this batch, so that a client whose every
	// later batch starts with a relayed BEGIN (pgjdbc without autocommit)
	// still has them known.
	//
	// Any SET, RESET or DISCARD counts as naming them: the session's
	// context (role, search_path, the settings row-level security reads)
	// is read with them.
	named := st == nil || changesSession(st) || st.mentions(wordExtraFloatDigits|wordStatementTimeout|wordReset|wordDiscard|wordSetConfig)
	// A statement that may leave state on the warehouse makes the loss of
	// the connection worth reporting (session_reattach.go): settings, temp
	// tables, LISTEN, cursors WITH HOLD, SQL-level prepared statements, locks.
	if !s.dirty.Load() && (named || !settingsNeutral(st) || st.mentions(wordListen|wordDeclare|wordPrepare)) {
		s.dirty.Store(true)
	}
	// The end of a block, or ROLLBACK TO SAVEPOINT, may undo an earlier
	// change.
	mayUndo := !named && (st.mentions(wordRollback) || endsTransaction(st))
	if !named && !mayUndo && settingsNeutralText(st) {
		// Whatever the proxy knows of the settings stays true: the case
		// of most statements, decided without the lock.
		return
	}
	s.stateMu.Lock()
	tracking := s.set.known || s.set.reading > 0
	atBlockEnd, readAtBlockEnd := s.set.staleAtBlockEnd, s.set.readAtBlockEnd
	s.stateMu.Unlock()
	undoing := mayUndo && atBlockEnd
	switch {
	case named:
	case undoing && readAtBlockEnd:
		// After a SET, read them again right after the block too, before
		// the next batch (which may start with a relayed BEGIN) needs them.
		named = true
	case undoing:
		// A change no statement named (a function's): read them again
		// when a local answer needs them.
	case !tracking || settingsNeutral(st):
		// While they are unknown and no read is on its way there is
		// nothing to spoil, and the statement need not even be looked at.
		return
	default:
		// A function or a trigger may call set_config: read them again
		// when a local answer needs them, if one ever does.
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if named {
		s.set.readWanted.Store(true)
		s.set.readAtBlockEnd = true
	}
	s.set.known = false
	s.set.gen++
	s.set.staleAtBlockEnd = true
}

// settingsGen returns the count of possible changes so far.
func (s *session) settingsGen() uint64 {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.set.gen
}

// discardedLocked notes a lone DISCARD ALL done: the settings are the
// session's defaults again, as they were read at startup, unless something
// relayed after the DISCARD ALL (gen) may have changed them since. It spares
// Npgsql, which sends DISCARD ALL in the same batch as its next statements,
// an answer from the warehouse. The caller holds stateMu.
func (s *session) discardedLocked(gen uint64) {
	if s.set.gen != gen || !s.set.defaultsKnown {
		return
	}
	s.set.sessionSettings, s.set.known = s.set.defaults, true
	// DISCARD ALL runs outside transaction blocks only.
	s.set.staleAtBlockEnd, s.set.readAtBlockEnd = false, false
}

// settingsNeutral reports whether a statement that does not name the
// settings certainly leaves them alone: it is read-only, and so calls no
// function beyond built-in ones. A query with no parenthesis calls no
// function at all, which spares the hot path a parse.
func settingsNeutral(st *Statement) bool {
	if settingsNeutralText(st) {
		return true
	}
	eff := st.effects()
	return eff.readOnly && !eff.setsSession
}

// settingsNeutralText is settingsNeutral for the statements its text alone
// decides, without a parse.
func settingsNeutralText(st *Statement) bool {
	// SELECT ... INTO creates a table, EXPLAIN ANALYZE runs what it
	// explains: both without a parenthesis.
	t := st.text()
	return t.class&classQuery != 0 && !t.paren && !t.multiple && t.words&(wordInto|wordAnalyze|wordAnalyse) == 0
}

// changesSession reports whether a statement may be a SET, RESET or
// DISCARD, which change the session's settings, role, search_path or temp
// tables without modifying data.
func changesSession(st *Statement) bool {
	switch st.text().first {
	case "set", "reset", "discard":
		return true
	}
	return st.text().multiple && st.effects().setsSession
}

// blockEndedLocked notes the end of a transaction block, which undoes SET
// LOCAL and the SETs of a rolled-back block. A read still on its way was
// sent after the block ended, so it stays good. The upstream loop calls it
// with stateMu held.
func (s *session) blockEndedLocked() {
	if s.set.staleAtBlockEnd {
		s.set.known = false
		s.set.staleAtBlockEnd, s.set.readAtBlockEnd = false, false
	}
}

// settingsFor returns the settings an answer runs with, reading them from
// the warehouse first if they may have changed. An answer without result
// columns prints nothing and runs with what is known; one with columns
// fails with settingsUnknownError when the settings cannot be read without
// disturbing the client's own conversation: while a batch of the client's
// is open on the warehouse, or in a failed transaction.
func (s *session) settingsFor(a Answer) (sessionSettings, error) {
	s.group.mayBlock()
	s.stateMu.Lock()
	set, known := s.set.sessionSettings, s.settingsKnownLocked()
	s.stateMu.Unlock()
	if known || a.Columns() == nil {
		return set, nil
	}
	err := s.readContextAgain()
	for tries := 0; err != nil && tries < staleContextRetries && s.probeMovedOn(); tries++ {
		// Read for a Probe the Prober replaced while the read was on
		// its way: read again for the new one.
		err = s.readContextAgain()
	}
	if err != nil {
		return sessionSettings{}, err
	}
	s.stateMu.Lock()
	set = s.set.sessionSettings
	s.stateMu.Unlock()
	return set, nil
}

// probeMovedOn reports whether the last read of the settings holds but
// was for a Probe the Prober has replaced since.
func (s *session) probeMovedOn() bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.set.known && s.set.probe != s.srv.probe()
}

// settingsKnownLocked reports whether the settings and the context the
// Prober currently asks for are known. The caller holds stateMu.
//
// A session without a warehouse connection cannot read them again, and
// nothing can change them while the warehouse is unreachable: when the
// Prober made a new Probe of the same catalog (as it does now and then to
// bound how long a read is trusted), what the session read for the old one
// still holds (logins.go).
func (s *session) settingsKnownLocked() bool {
	if !s.set.known {
		return false
	}
	current := s.srv.probe()
	if s.set.probe == current {
		return true
	}
	if s.isDetached() && probeEquivalent(s.set.probe, current) {
		s.set.probe = current
		return true
	}
	return false
}

// readSettingsEarly reads the settings now, if they may have changed and
// the warehouse is idle, for an answer later in the batch: by then a
// message of the batch may have gone to the warehouse.
func (s *session) readSettingsEarly() error {
	s.group.mayBlock()
	s.stateMu.Lock()
	known := s.settingsKnownLocked()
	s.stateMu.Unlock()
	if known {
		return nil
	}
	return s.readSettingsNow()
}

// readSettingsNow reads the settings and waits for the answer, when that is
// safe: everything relayed so far is answered (the caller passed a
// barrier), no message of the current batch went to the warehouse, and the
// transaction has not failed. Otherwise it asks for a read at the next sync
// point, and the settings stay unknown for now.
func (s *session) readSettingsNow() error {
	if attached, err := s.attachQuietly(); err != nil || !attached {
		// Without the warehouse they stay unknown, and the answer that
		// needs them falls back to it, which reports why it cannot.
		return err
	}
	s.stateMu.Lock()
	if s.settingsKnownLocked() {
		// A new connection read them as it started.
		s.stateMu.Unlock()
		return nil
	}
	safe := s.expect.len() == 0 && !s.expect.ignoreTillSync && !s.batchUpstream && byte(s.txStatus.Load()) != 'E'
	if !safe {
		s.set.readWanted.Store(true)
		s.stateMu.Unlock()
		return nil
	}
	s.stateMu.Unlock()
	if err := s.sendSettingsRead(); err != nil {
		return err
	}
	if err := s.upW.Flush(); err != nil {
		return err
	}
	return s.waitAnswered()
}

// readSettingsAtSync reads the settings right after a sync point the proxy
// relayed (a Query or a Sync), when a statement asked for it. The read then
// runs on the warehouse after the client's batch, whatever that batch did
// to the settings, and before anything the client sends next. Not after a
// batch that may have started COPY FROM STDIN: a Query would abort the copy.
func (s *session) readSettingsAtSync() error {
	mayCopy := s.batchMayCopy
	s.batchMayCopy = false
	if !s.set.readWanted.Load() {
		return nil
	}
	s.stateMu.Lock()
	wanted := s.set.readWanted.Load() && !s.settingsKnownLocked() && !mayCopy
	if wanted {
		s.set.readWanted.Store(false)
	}
	s.stateMu.Unlock()
	if !wanted {
		return nil
	}
	return s.sendSettingsRead()
}

// sendSettingsRead sends settingsQuery, its answer hidden from the client.
// Not while the warehouse skips messages after an error: it would skip this
// one too.
func (s *session) sendSettingsRead() error {
	s.stateMu.Lock()
	if s.expect.ignoreTillSync || s.closing || s.isDetached() {
		s.stateMu.Unlock()
		return nil
	}
	read := &settingsRead{gen: s.set.gen, probe: s.srv.probe()}
	s.set.reading++
	s.pushExpect(&expectation{kind: 'Q', swallow: true, quiet: true, notes: &answerNotes{settings: read}})
	s.stateMu.Unlock()
	_, err := s.upW.Write(appendMessage(nil, 'Q', appendCString(nil, settingsSQL(read.probe))))
	return err
}

// settingsReadDoneLocked stores what a read found, unless the settings may have
// changed since it was sent. The upstream loop calls it with stateMu held.
func (s *session) settingsReadDoneLocked(r *settingsRead) {
	s.set.reading--
	if r.failed || r.gen != s.set.gen {
		return
	}
	v, err := parseSettings(r.values, r.probe)
	if err != nil {
		s.logger().Warn("cannot read the session's settings and context; its statements go to the warehouse", "err", err)
		return
	}
	s.set.sessionSettings, s.set.known = v, true
	if !s.dirty.Load() {
		// Nothing the session did changed them: they are what its login
		// starts with now, fresher than what its start read (logins.go).
		s.srv.logins.read(s.loginKey, v)
	}
}
