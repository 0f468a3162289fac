package proxy

import (
	"time"

	"github.com/pgrollup/pgrollup/internal/sqlstate"
)

// The warehouse's transaction as the proxy follows it: its status, whether
// it may have written and when it began, and failing it as Postgres would
// when a statement the proxy answered in it fails.

// txState is what the proxy knows of the warehouse's current transaction,
// beyond the status ReadyForQuery reports. It is guarded by
// session.stateMu and kept by the upstream loop, in the order the warehouse
// ran the statements, as their answers arrive.
type txState struct {
	// wrote: a statement of the current transaction (a block, or the
	// implicit transaction of an unsynced extended batch) may have
	// modified data that no rollup reflects.
	wrote bool
	// start is when the current transaction block began, as far as the
	// proxy can tell: when the batch that opened it began. Zero outside a
	// block.
	start time.Time
	// lastSync is the sync point just answered.
	lastSync expectation
}

// poppedLocked accounts for an expectation the warehouse answered (or
// skipped after an error). The caller holds stateMu.
func (s *session) poppedLocked(e *expectation) {
	switch e.kind {
	case 'Q', 'E', 'F':
		if e.newTx {
			// A transaction ended in it (COMMIT; BEGIN, AND CHAIN):
			// what it wrote before is out of the way.
			s.tx.wrote = false
		}
		if e.wrote {
			s.tx.wrote = true
		}
	}
	if isSyncPoint(e.kind) {
		s.tx.lastSync = *e
	}
	if read := e.settingsRead(); read != nil {
		s.settingsReadDoneLocked(read)
	}
}

// txStatusLocked accounts for a ReadyForQuery that moved the transaction
// status from prev to status. The caller holds stateMu.
func (s *session) txStatusLocked(prev, status byte) {
	if uint32(status) != s.txStatus.Load() {
		s.txStatus.Store(uint32(status)) // most ReadyForQuery change nothing: no store
	}
	switch {
	case status == 'I':
		// Whatever was written is committed, or rolled back: either way
		// the next transaction starts clean, and a rollup may answer.
		s.tx.wrote = false
		s.tx.start = time.Time{}
		if prev != 'I' {
			s.blockEndedLocked()
		}
	case prev == 'I' || s.tx.lastSync.newTx:
		// A block began within the batch just answered (perhaps after
		// the end of another, as COMMIT; BEGIN or AND CHAIN do): now()
		// is its start, which the proxy takes to be the batch's.
		s.tx.start = s.tx.lastSync.at
	}
}

// txSnapshotLocked returns whether the current transaction may have
// written and the time now() returns in it. The caller holds stateMu.
func (s *session) txSnapshotLocked() (wrote bool, now time.Time) {
	wrote, start := s.tx.wrote, s.tx.start
	now = time.Now()
	if byte(s.txStatus.Load()) != 'I' && !start.IsZero() {
		now = start
	}
	return wrote, now
}

// txFailed reports whether the session is in a failed transaction block,
// as of the last ReadyForQuery.
func (s *session) txFailed() bool { return byte(s.txStatus.Load()) == 'E' }

// errTxAborted is Postgres's answer to a statement in a failed transaction.
var errTxAborted = newError(severityError, sqlstate.InFailedSQLTransaction, "current transaction is aborted, commands ignored until end of transaction block")

// refusedInFailedBlock reports whether an answer must not run because the
// session's transaction block failed.
func (s *session) refusedInFailedBlock(a Answer) bool {
	return s.txFailed() && !isTxExit(a)
}

// failTransactionSQL fails on the warehouse at once: it is no statement at
// all, so it fails to parse, before it could touch anything, and the
// warehouse's log says who sent it.
const failTransactionSQL = "pgrollup: a statement in this transaction failed in the proxy"

// failTransaction makes the warehouse's transaction fail as Postgres's
// would have when a statement the proxy answered fails: a transaction block
// goes to the failed state, and an extended batch's implicit transaction is
// rolled back with whatever the warehouse already ran of it. Nothing is
// needed outside a transaction, or when it has already failed.
//
// In the simple protocol the warehouse runs a failing Query of the proxy's,
// and the status it then reports is waited for, so that the client's
// ReadyForQuery carries it. In the extended protocol a failing Parse makes
// the warehouse skip the rest of the batch, as the proxy does, and the
// client's Sync then gets the warehouse's ReadyForQuery.
func (s *session) failTransaction(simple bool) error {
	if s.isDetached() {
		s.failVirtualBlock()
		return nil
	}
	status := byte(s.txStatus.Load())
	if status == 'E' || status == 'I' && (simple || !s.batchUpstream) {
		return nil
	}
	s.stateMu.Lock()
	if s.expect.ignoreTillSync || s.closing || s.isDetached() {
		s.stateMu.Unlock()
		return nil
	}
	var msg []byte
	if simple {
		s.pushExpect(&expectation{kind: 'Q', swallow: true, quiet: true})
		msg = appendMessage(nil, 'Q', appendCString(nil, failTransactionSQL))
	} else {
		s.inExtended = true
		s.pushExpect(&expectation{kind: 'P', swallow: true, quiet: true})
		// A named statement, so that the client's unnamed one survives:
		// the name is never stored, the text fails first.
		body := appendCString(nil, "pgrollup_failed")
		body = appendCString(body, failTransactionSQL)
		msg = appendMessage(nil, 'P', append(body, 0, 0))
		s.batchUpstream = true
	}
	s.stateMu.Unlock()
	if _, err := s.upW.Write(msg); err != nil {
		return err
	}
	if !simple {
		return nil
	}
	if err := s.upW.Flush(); err != nil {
		return err
	}
	return s.waitAnswered()
}
