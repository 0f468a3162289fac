package remote

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// The query protocol carries a rollup route from a proxy to any worker and its
// rows back, over core NATS (no JetStream: an answer is worth nothing once
// its statement is gone).
//
// Request: the proxy subscribes to a fresh inbox and publishes a queryRequest
// (JSON) to querySubject with the inbox as reply subject. Workers subscribe
// to querySubject in the queue group queryQueue, so exactly one of them gets
// each request. Without any worker the NATS server answers at once with a
// no-responders status.
//
// Answer: every message the worker sends to the inbox starts with a kind byte:
//
//	'B' busy: the worker is at worker.concurrency; the proxy asks again
//	'A' accepted; the message's reply subject is the query's control subject
//	'H' heartbeat: the worker is still working (sent while it computes or
//	    fetches files, never while it waits for credit)
//	'R' a chunk of rows: varint sequence number (1, 2, ...), varint row
//	    count, varint column count, then row after row of values (codec.go)
//	'Z' end: varint total rows, varint chunks; nothing follows
//	'E' error: JSON {"reason": ..., "message": ...}; nothing follows
//
// Control: the proxy sends to the control subject
//
//	'C' credit: varint n, the worker may send chunks up to sequence n; it is
//	    repeated every heartbeat as the proxy's keepalive
//	'X' cancel: stop the query now
//
// Flow control: the request grants Window chunks; the proxy grants one more
// each time it has consumed a chunk, so at most Window chunks are ever in
// flight or queued at the proxy, whatever the size of the answer, and a
// worker whose proxy stops fetching (a suspended portal) stops producing.
//
// Liveness: each side speaks at least every Heartbeat while the other waits
// for it, and gives up after missedHeartbeats of silence: the proxy reports
// the worker lost, the worker cancels the query. A proxy that goes away thus
// stops its DuckDB query even if its cancel never arrives.
const (
	querySubject = "pgrollup.query"
	queryQueue   = "pgrollup-query-workers"
)

// protocolVersion is the request's "v"; a worker refuses other versions.
// Version 2 added the proxy's release, which a worker must share.
const protocolVersion = 2

// missedHeartbeats is how many heartbeat intervals of silence mean the
// other side is gone.
const missedHeartbeats = 4

// Message kinds.
const (
	msgBusy      = 'B'
	msgAccepted  = 'A'
	msgHeartbeat = 'H'
	msgRows      = 'R'
	msgEnd       = 'Z'
	msgError     = 'E'

	ctlCredit = 'C'
	ctlCancel = 'X'
)

// Bounds a worker holds a request to, whatever the proxy asked for.
const (
	minChunkBytes = 4 << 10
	maxWindow     = 64
	minHeartbeat  = 10 * time.Millisecond
	maxHeartbeat  = time.Minute
)

// queryRequest is what a proxy asks a worker.
type queryRequest struct {
	V  int    `json:"v"`  // protocolVersion
	ID string `json:"id"` // for logs on both sides
	// Release is the proxy's release; a worker of another one refuses the
	// request (executor.FallbackWorkerRelease), since proxies and workers
	// of different releases may not agree on rollup files or SQL.
	Release string `json:"release"`
	// Rollup and Version name what the files belong to, for logs.
	Rollup  string `json:"rollup"`
	Version string `json:"version"`
	// Before and After surround the file list in read_parquet([...]); the
	// worker puts the local paths of Files between them (executor.FileQuery).
	Before string   `json:"before"`
	After  string   `json:"after"`
	Files  []string `json:"files"` // storage keys
	// Columns names the result columns and their DuckDB types; the worker
	// checks that the query returns as many.
	Columns []queryColumn `json:"columns"`
	// Window is the number of chunks granted up front.
	Window int `json:"window"`
	// ChunkBytes is the size at which the worker closes a chunk.
	ChunkBytes int `json:"chunk_bytes"`
	// HeartbeatMS is the liveness interval both sides keep.
	HeartbeatMS int64 `json:"heartbeat_ms"`
	// TimeoutMS is what remained of the statement's deadline when it was
	// sent (0: none): the worker stops the query then even if the proxy's
	// cancel never comes.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// queryColumn is one result column of a request (executor.Column).
type queryColumn struct {
	Name     string `json:"name"`
	DuckType string `json:"duck_type,omitempty"`
}

// heartbeat is the request's liveness interval within the worker's bounds.
func (r *queryRequest) heartbeat() time.Duration {
	return min(max(time.Duration(r.HeartbeatMS)*time.Millisecond, minHeartbeat), maxHeartbeat)
}

// check validates a request a worker received.
func (r *queryRequest) check() error {
	switch {
	case r.V != protocolVersion:
		return fmt.Errorf("query protocol version %d, want %d", r.V, protocolVersion)
	case len(r.Columns) == 0:
		return errors.New("request without result columns")
	case r.Window < 1 || r.Window > maxWindow:
		return fmt.Errorf("window %d out of range 1..%d", r.Window, maxWindow)
	}
	return nil
}

// rateLimit lets through one event per interval: warnings that would
// otherwise repeat for every statement.
type rateLimit struct {
	every time.Duration
	last  atomic.Int64 // unix nanoseconds of the last event let through
}

// allow reports whether an event now may be logged.
func (l *rateLimit) allow() bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return (last == 0 || now-last >= int64(l.every)) && l.last.CompareAndSwap(last, now)
}

// queryError is the body of an 'E' message.
type queryError struct {
	Reason  string `json:"reason"`  // an executor.Fallback* reason
	Message string `json:"message"` // the worker's error
}

func encodeError(reason string, err error) []byte {
	b, _ := json.Marshal(queryError{Reason: reason, Message: err.Error()})
	return append([]byte{msgError}, b...)
}

// rowsHeader starts a chunk of rows in dst, with the row count left as a
// fixed-width placeholder that finishRows fills in.
func rowsHeader(dst []byte, seq uint64, cols int) []byte {
	dst = append(dst[:0], msgRows)
	dst = binary.AppendUvarint(dst, seq)
	dst = append(dst, rowCountPlaceholder[:]...)
	return binary.AppendUvarint(dst, uint64(cols))
}

// rowCountPlaceholder is a varint of fixed width (5 bytes, up to 2^35-1)
// that finishRows overwrites with the chunk's row count.
var rowCountPlaceholder = [5]byte{0x80, 0x80, 0x80, 0x80, 0x00}

// finishRows writes the row count into a chunk begun by rowsHeader.
func finishRows(chunk []byte, seq uint64, rows int) {
	at := 1 + uvarintLen(seq)
	n := uint64(rows)
	for i := range 4 {
		chunk[at+i] = byte(n&0x7f) | 0x80
		n >>= 7
	}
	chunk[at+4] = byte(n)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// endMessage is the 'Z' message.
func endMessage(rows int64, chunks uint64) []byte {
	b := binary.AppendUvarint([]byte{msgEnd}, uint64(rows))
	return binary.AppendUvarint(b, chunks)
}

// creditMessage is the 'C' message granting chunks up to seq.
func creditMessage(seq uint64) []byte {
	return binary.AppendUvarint([]byte{ctlCredit}, seq)
}

// requestID names a request in the logs of both sides.
func requestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
