package proxy

import "testing"

func TestExpectQueue(t *testing.T) {
	tests := []struct {
		name     string
		sent     string // client messages relayed, in order
		answers  string // warehouse messages, in order
		left     int    // expectations still open afterwards
		ignoring bool
	}{
		{"simple query", "Q", "TDDCZ", 0, false},
		{"simple query error", "Q", "EZ", 0, false},
		{"extended batch", "PBDES", "12TDDCZ", 0, false},
		{"describe statement", "PDS", "1tTZ", 0, false},
		{"describe without rows", "PBDES", "12nCZ", 0, false},
		{"pipelined batches", "PBESPBES", "12DC", 5, false},
		{"portal suspended", "BE", "2DDs", 0, false},
		{"error skips to sync", "PBEPBES", "12E", 1, false},
		{"error before sync was sent", "PBE", "12E", 0, true},
		{"flush only", "PB", "12", 0, false},
		{"close", "CS", "3Z", 0, false},
		{"notices and notifications", "Q", "NACZ", 0, false},
		{"empty query", "PBES", "12IZ", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q expectQueue
			for _, k := range []byte(tt.sent) {
				q.push(&expectation{kind: k})
			}
			for _, a := range []byte(tt.answers) {
				if !q.observe(a) {
					t.Fatalf("message %q hidden from the client", a)
				}
			}
			if q.len() != tt.left || q.ignoreTillSync != tt.ignoring {
				t.Fatalf("left %d ignoring %v, want %d %v", q.len(), q.ignoreTillSync, tt.left, tt.ignoring)
			}
		})
	}
}

func TestExpectQueueIgnoresUntilSync(t *testing.T) {
	var q expectQueue
	q.push(&expectation{kind: 'E'})
	q.observe('E')
	q.push(&expectation{kind: 'B'}) // discarded by the warehouse too
	if q.len() != 0 {
		t.Fatalf("a message after the error is expected to be answered")
	}
	q.push(&expectation{kind: 'S'})
	q.observe('Z')
	if q.len() != 0 || q.ignoreTillSync {
		t.Fatalf("sync did not reset: %d %v", q.len(), q.ignoreTillSync)
	}
}

func TestExpectQueueSwallows(t *testing.T) {
	var q expectQueue
	q.push(&expectation{kind: 'P', swallow: true})
	q.push(&expectation{kind: 'B'})
	if q.observe('1') {
		t.Fatal("the answer to the proxy's own Parse reached the client")
	}
	if !q.observe('2') {
		t.Fatal("the client's BindComplete was hidden")
	}
}

// The proxy's quiet messages hide their errors too, and every answered
// expectation is reported in order, skipped ones included.
func TestExpectQueueQuietAndPops(t *testing.T) {
	var popped []byte
	q := expectQueue{onPop: func(e *expectation) { popped = append(popped, e.kind) }}
	q.push(&expectation{kind: 'Q', swallow: true, quiet: true})
	for _, typ := range []byte("TDE") {
		if q.observe(typ) {
			t.Fatalf("the answer %q to a quiet message reached the client", typ)
		}
	}
	q.observe('Z')
	q.push(&expectation{kind: 'P', swallow: true})
	q.push(&expectation{kind: 'B'})
	q.push(&expectation{kind: 'E'})
	q.push(&expectation{kind: 'S'})
	if !q.observe('E') {
		t.Fatal("the error of a message that is not quiet was hidden")
	}
	q.observe('Z')
	if string(popped) != "QPBES" || q.len() != 0 {
		t.Fatalf("popped %q, %d left", popped, q.len())
	}
}
