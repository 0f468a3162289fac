package proxy

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
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
	super := connect(t, cluster.DSN("postgres"))
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
