package proxy

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// testVerifier makes the verifier Postgres would store for password.
func testVerifier(t *testing.T, password string, salt []byte, iterations int) *scramVerifier {
	t.Helper()
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	stored := sha256.Sum256(hmacSHA256(salted, "Client Key"))
	return &scramVerifier{iterations: iterations, salt: salt, storedKey: stored[:], serverKey: hmacSHA256(salted, "Server Key")}
}

// scramExchangeTest runs client against a server with v and returns the server's
// error, or the client's when the server accepted.
func scramExchangeTest(t *testing.T, client *scramClient, v *scramVerifier) ([]byte, error) {
	t.Helper()
	srv := newScramServer(v)
	first, err := srv.first(client.firstMessage())
	if err != nil {
		return nil, err
	}
	final, err := client.finalMessage(first)
	if err != nil {
		return nil, err
	}
	serverFinal, key, err := srv.final(final)
	if err != nil {
		return nil, err
	}
	return key, client.verifyFinal(serverFinal)
}

func TestScramServer(t *testing.T) {
	v := testVerifier(t, "pässword 1", []byte("0123456789abcdef"), 4096)
	c, err := newScramClient("pässword 1")
	if err != nil {
		t.Fatal(err)
	}
	key, err := scramExchangeTest(t, c, v)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if !bytes.Equal(key, c.clientKey) {
		t.Error("the server recovered another ClientKey than the client's")
	}
	if !c.learned().equal(v) {
		t.Error("the verifier a client learns is not the server's")
	}

	wrong, _ := newScramClient("password 2")
	if _, err := scramExchangeTest(t, wrong, v); !errors.Is(err, errScramProof) {
		t.Errorf("wrong password: %v", err)
	}

	// The ClientKey authenticates again without the password.
	srv := newScramServer(v)
	keyed, _ := newScramClientKeys(srv.keys(key))
	if _, err := scramExchangeTest(t, keyed, v); err != nil {
		t.Errorf("ClientKey pass-through: %v", err)
	}
	// ... but not against another verifier: the password changed.
	other := testVerifier(t, "pässword 1", []byte("another salt"), 4096)
	keyed, _ = newScramClientKeys(srv.keys(key))
	if _, err := scramExchangeTest(t, keyed, other); !errors.Is(err, errVerifierChanged) {
		t.Errorf("ClientKey against a new verifier: %v", err)
	}
	// A server that does not know the verifier cannot pretend.
	impostor := testVerifier(t, "guess", []byte("0123456789abcdef"), 4096)
	impostor.storedKey = v.storedKey
	c, _ = newScramClient("pässword 1")
	if _, err := scramExchangeTest(t, c, impostor); err == nil || !strings.Contains(err.Error(), "server signature") {
		t.Errorf("impostor server: %v", err)
	}
}

func TestScramServerMessages(t *testing.T) {
	v := testVerifier(t, "pw", []byte("salt"), 16)
	for _, tc := range []struct {
		first string
		ok    bool
	}{
		{"n,,n=,r=abc", true},
		{"y,,n=user,r=abc", true}, // the client could bind, and believes we cannot
		{"p=tls-server-end-point,,n=,r=abc", false},
		{"n,a=other,n=,r=abc", false},
		{"n,,r=abc", false},
		{"n,,n=,r=", false},
		{"x", false},
	} {
		_, err := newScramServer(v).first([]byte(tc.first))
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.first, err)
		}
		var pe errScramProtocol
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("%q: not a protocol error: %v", tc.first, err)
		}
	}
	srv := newScramServer(v)
	first, err := srv.first([]byte("y,,n=,r=abc"))
	if err != nil {
		t.Fatal(err)
	}
	nonce := strings.TrimPrefix(strings.Split(string(first), ",")[0], "r=")
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, final := range []string{
		"c=biws,r=" + nonce + ",p=" + proof, // binds "n,," after "y,,"
		"c=eSws,r=other,p=" + proof,
		"c=eSws,r=" + nonce,
	} {
		if _, _, err := srv.final([]byte(final)); err == nil || errors.Is(err, errScramProof) {
			t.Errorf("%q: %v, want a protocol error", final, err)
		}
	}
	if _, _, err := srv.final([]byte("c=eSws,r=" + nonce + ",p=" + proof)); !errors.Is(err, errScramProof) {
		t.Errorf("wrong proof: %v", err)
	}
}

func TestParseScramVerifier(t *testing.T) {
	ctx := context.Background()
	super := connect(t, cluster(t).DSN("postgres"))
	var secret string
	if err := super.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", scramUser).Scan(&secret); err != nil {
		t.Fatal(err)
	}
	v, err := parseScramVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !v.checkPassword(scramPassword) || v.checkPassword("wrong") {
		t.Error("checkPassword does not tell the password")
	}
	var md5 string
	if err := super.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", md5User).Scan(&md5); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{md5, "", "SCRAM-SHA-256$x:c2FsdA==$a:b", "SCRAM-SHA-256$4096:c2FsdA==$" + strings.Repeat("A", 44), secret[:len(secret)-4]} {
		_, err := parseScramVerifier(bad)
		if err == nil {
			t.Errorf("%q parsed", bad)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("the error quotes the secret: %v", err)
		}
	}
}

// A relayed SCRAM login teaches the proxy the warehouse's own verifier.
func TestRelayedLoginLearnsVerifier(t *testing.T) {
	p := startProxy(t, nil)
	connect(t, p.dsn(scramUser, scramPassword))
	var secret string
	super := connect(t, cluster(t).DSN("postgres"))
	if err := super.QueryRow(context.Background(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", scramUser).Scan(&secret); err != nil {
		t.Fatal(err)
	}
	want, err := parseScramVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	got := p.srv.verifiers.get(scramUser)
	if got == nil || !got.equal(want) {
		t.Fatal("the proxy holds no verifier, or another than pg_authid's")
	}
	if p.srv.verifiers.get(md5User) != nil {
		t.Error("a verifier for a role that never logged in")
	}
}

// fakeLookup answers auth queries from a map.
type fakeLookup struct {
	mu      sync.Mutex
	secrets map[string]string
	err     error
	calls   int
}

func (f *fakeLookup) LookupVerifier(_ context.Context, user string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return "", false, f.err
	}
	s, ok := f.secrets[user]
	return s, ok, nil
}

func verifierText(v *scramVerifier) string {
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", v.iterations, enc(v.salt), enc(v.storedKey), enc(v.serverKey))
}

func TestVerifierCache(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v1 := testVerifier(t, "one", []byte("salt1"), 16)
	v2 := testVerifier(t, "two", []byte("salt2"), 16)
	lookup := &fakeLookup{secrets: map[string]string{"alice": verifierText(v1), "bob": "md5abcdef"}}
	c := newVerifierCache(lookup, 50*time.Millisecond, slog.New(slog.DiscardHandler))

	// A login fetches through the lookup.
	c.loggedIn("alice")
	waitFor(t, "alice's verifier", func() bool { return c.get("alice") != nil })
	if !c.get("alice").equal(v1) {
		t.Fatal("alice: another verifier")
	}
	// A role with an MD5 password has none the proxy can use, even
	// learned (it cannot be: MD5 logins teach nothing).
	c.learn("bob", v2)
	if err := c.fetch(ctx, "bob"); err != nil || c.get("bob") != nil {
		t.Errorf("bob: %v %v", err, c.get("bob"))
	}

	// Refreshes follow a changed password and a dropped role, only while
	// the warehouse is up.
	var up sync.Mutex
	isUp := true
	go c.run(ctx, func() bool { up.Lock(); defer up.Unlock(); return isUp })
	lookup.mu.Lock()
	lookup.secrets["alice"] = verifierText(v2)
	lookup.mu.Unlock()
	waitFor(t, "the new password", func() bool { v := c.get("alice"); return v != nil && v.equal(v2) })
	up.Lock()
	isUp = false
	up.Unlock()
	lookup.mu.Lock()
	delete(lookup.secrets, "alice")
	lookup.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	if c.get("alice") == nil {
		t.Fatal("a refresh during the outage dropped the verifier")
	}
	// A failing lookup keeps what is held.
	up.Lock()
	isUp = true
	up.Unlock()
	lookup.mu.Lock()
	lookup.err = errors.New("auth query: permission denied")
	lookup.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	if c.get("alice") == nil {
		t.Fatal("a failed lookup dropped the verifier")
	}
	lookup.mu.Lock()
	lookup.err = nil
	lookup.mu.Unlock()
	waitFor(t, "the dropped role", func() bool { return c.get("alice") == nil })

	// Without a lookup, a login's verifier is kept as learned.
	plain := newVerifierCache(nil, time.Minute, slog.New(slog.DiscardHandler))
	plain.learn("carol", v1)
	plain.loggedIn("carol")
	if !plain.get("carol").equal(v1) {
		t.Error("carol")
	}
	plain.forget("carol")
	if plain.get("carol") != nil {
		t.Error("forget")
	}
}

func TestLoginMemos(t *testing.T) {
	a := loginKey(map[string]string{"user": "u", "database": "d", "application_name": "psql"})
	b := loginKey(map[string]string{"user": "u", "database": "d", "application_name": "metabase"})
	c := loginKey(map[string]string{"user": "u", "database": "d", "options": "-c search_path=x"})
	if a != b || a == c {
		t.Errorf("keys: %q %q %q", a, b, c)
	}
	old := &Probe{Select: "x", Columns: 1, Fingerprint: "db/1"}
	memos := newLoginMemos()
	memos.started(a, authSCRAM, nil, sessionSettings{floatDigits: "1", probe: old, probed: []string{"v"}}, true)
	memo := memos.get(b)
	if memo == nil {
		t.Fatal("no memo")
	}
	for _, tc := range []struct {
		current *Probe
		ok      bool
	}{
		{old, true},
		{&Probe{Select: "x", Columns: 1, Fingerprint: "db/1"}, true},  // made again, nothing changed
		{&Probe{Select: "x", Columns: 1, Fingerprint: "db/2"}, false}, // a GRANT, say
		{&Probe{Select: "y", Columns: 1, Fingerprint: "db/1"}, false},
		{&Probe{Select: "x", Columns: 1}, false},
		{nil, false},
	} {
		set, ok := memo.settingsFor(tc.current)
		if ok != tc.ok || ok && set.probe != tc.current {
			t.Errorf("%+v: %v %v", tc.current, ok, set.probe)
		}
	}
	memos.started(c, authTrust, nil, sessionSettings{}, false)
	if _, ok := memos.get(c).settingsFor(nil); ok {
		t.Error("unknown settings are usable")
	}
	// A login whose read failed keeps what the last one read.
	memos.started(a, authSCRAM, nil, sessionSettings{}, false)
	if _, ok := memos.get(a).settingsFor(old); !ok {
		t.Error("a failed read made the login's settings unknown")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
