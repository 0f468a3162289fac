package proxy

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scramClient performs the client side of SCRAM-SHA-256 (RFC 5802, RFC 7677)
// as Postgres expects it: no channel binding ("n,,"), and an empty user name
// in the messages because Postgres takes the user from the startup packet.
//
// It proves either a password or, for a session the proxy authenticated
// itself, the ClientKey recovered from the client's own proof (keys): what
// PgBouncer calls SCRAM pass-through. The warehouse then never needs the
// password, only the verifier it already holds.
type scramClient struct {
	password        string
	keys            *scramKeys
	clientNonce     string
	clientFirstBare string
	serverFirst     string
	authMessage     string
	// Set by finalMessage: what verifyFinal and learned need.
	salt       []byte
	iterations int
	clientKey  []byte
	serverKey  []byte
	storedKey  []byte
}

// scramKeys are what a SCRAM client needs to authenticate without the
// password: the ClientKey, and the salt and iteration count it was derived
// with, which the server's verifier must still use. ServerKey checks the
// server's signature. A ClientKey logs in as its role wherever that role has
// this verifier, so it lives only in the memory of the session it belongs to.
type scramKeys struct {
	clientKey  []byte
	serverKey  []byte
	salt       []byte
	iterations int
}

const scramMechanism = "SCRAM-SHA-256"

func newScramClient(password string) (*scramClient, error) {
	return newScramClientWith(password, nil)
}

// newScramClientKeys returns a client that proves keys instead of a password.
func newScramClientKeys(keys *scramKeys) (*scramClient, error) {
	return newScramClientWith("", keys)
}

func newScramClientWith(password string, keys *scramKeys) (*scramClient, error) {
	nonce, err := scramNonce()
	if err != nil {
		return nil, err
	}
	c := &scramClient{password: password, keys: keys, clientNonce: nonce}
	c.clientFirstBare = "n=,r=" + c.clientNonce
	return c, nil
}

func scramNonce() (string, error) {
	nonce := make([]byte, 18)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("scram nonce: %w", err)
	}
	return base64.RawStdEncoding.EncodeToString(nonce), nil
}

// firstMessage is the client-first-message sent in SASLInitialResponse.
func (c *scramClient) firstMessage() []byte {
	return []byte("n,," + c.clientFirstBare)
}

// finalMessage takes the server-first-message and returns the
// client-final-message with the proof.
func (c *scramClient) finalMessage(serverFirst []byte) ([]byte, error) {
	c.serverFirst = string(serverFirst)
	var nonce, salt string
	iterations := 0
	for _, attr := range strings.Split(c.serverFirst, ",") {
		key, value, ok := strings.Cut(attr, "=")
		if !ok {
			continue
		}
		switch key {
		case "r":
			nonce = value
		case "s":
			salt = value
		case "i":
			n, err := strconv.Atoi(value)
			if err != nil {
				return nil, errors.New("scram: invalid iteration count")
			}
			iterations = n
		}
	}
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return nil, errors.New("scram: server nonce does not extend the client nonce")
	}
	saltBytes, err := base64.StdEncoding.DecodeString(salt)
	if err != nil || len(saltBytes) == 0 {
		return nil, errors.New("scram: invalid salt")
	}
	if iterations < 1 {
		return nil, errors.New("scram: invalid iteration count")
	}
	c.salt, c.iterations = saltBytes, iterations
	if c.keys != nil {
		// The ClientKey was derived with the verifier's salt and count; a
		// server offering others holds another verifier (a new password).
		if c.keys.iterations != iterations || !hmac.Equal(c.keys.salt, saltBytes) {
			return nil, errVerifierChanged
		}
		c.clientKey, c.serverKey = c.keys.clientKey, c.keys.serverKey
	} else {
		salted, err := pbkdf2.Key(sha256.New, c.password, saltBytes, iterations, sha256.Size)
		if err != nil {
			return nil, fmt.Errorf("scram: %w", err)
		}
		c.clientKey = hmacSHA256(salted, "Client Key")
		c.serverKey = hmacSHA256(salted, "Server Key")
	}
	withoutProof := "c=biws,r=" + nonce // biws is base64("n,,")
	c.authMessage = c.clientFirstBare + "," + c.serverFirst + "," + withoutProof

	stored := sha256.Sum256(c.clientKey)
	c.storedKey = stored[:]
	signature := hmacSHA256(c.storedKey, c.authMessage)
	proof := make([]byte, len(c.clientKey))
	for i := range c.clientKey {
		proof[i] = c.clientKey[i] ^ signature[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// errVerifierChanged: the warehouse's SCRAM verifier for the role is not the
// one the session's ClientKey belongs to.
var errVerifierChanged = errors.New("scram: the warehouse holds another verifier for this role than the one the client authenticated with")

// verifyFinal checks the server's signature, so that a server that does not
// know the verifier cannot pretend the client authenticated.
func (c *scramClient) verifyFinal(serverFinal []byte) error {
	msg := string(serverFinal)
	if e, ok := strings.CutPrefix(msg, "e="); ok {
		return fmt.Errorf("scram: server error %q", e)
	}
	v, ok := strings.CutPrefix(msg, "v=")
	if !ok {
		return errors.New("scram: invalid server-final-message")
	}
	got, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return errors.New("scram: invalid server signature encoding")
	}
	want := hmacSHA256(c.serverKey, c.authMessage)
	if !hmac.Equal(got, want) {
		return errors.New("scram: server signature does not match")
	}
	return nil
}

// learned is the warehouse's verifier for the role, as a completed exchange
// (verifyFinal passed) proves it: the proxy can check the same password
// with it later without holding the password.
func (c *scramClient) learned() *scramVerifier {
	return &scramVerifier{iterations: c.iterations, salt: c.salt, storedKey: c.storedKey, serverKey: c.serverKey}
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// scramVerifier is a SCRAM-SHA-256 verifier as Postgres keeps it in
// pg_authid.rolpassword: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
// It checks a client's proof without the password, and is not enough to
// log in anywhere: that takes the ClientKey, which only a proof reveals.
// It does allow an offline guess of the password, and posing as the server
// (ServerKey), so it is held in memory only and never logged.
type scramVerifier struct {
	iterations int
	salt       []byte
	storedKey  []byte
	serverKey  []byte
}

// parseScramVerifier reads a rolpassword. Other kinds of secret (md5,
// plain text, none) are an error: the proxy authenticates only with SCRAM.
func parseScramVerifier(s string) (*scramVerifier, error) {
	rest, ok := strings.CutPrefix(s, scramMechanism+"$")
	if !ok {
		return nil, errors.New("not a SCRAM-SHA-256 verifier")
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, errors.New("malformed SCRAM-SHA-256 verifier")
	}
	iter, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return nil, errors.New("malformed SCRAM-SHA-256 verifier")
	}
	v := &scramVerifier{}
	var err error
	if v.iterations, err = strconv.Atoi(iter); err != nil || v.iterations < 1 {
		return nil, errors.New("malformed SCRAM-SHA-256 verifier: iteration count")
	}
	dec := base64.StdEncoding.DecodeString
	if v.salt, err = dec(salt); err != nil || len(v.salt) == 0 {
		return nil, errors.New("malformed SCRAM-SHA-256 verifier: salt")
	}
	if v.storedKey, err = dec(stored); err != nil || len(v.storedKey) != sha256.Size {
		return nil, errors.New("malformed SCRAM-SHA-256 verifier: StoredKey")
	}
	if v.serverKey, err = dec(server); err != nil || len(v.serverKey) != sha256.Size {
		return nil, errors.New("malformed SCRAM-SHA-256 verifier: ServerKey")
	}
	return v, nil
}

// equal reports whether two verifiers are the same secret.
func (v *scramVerifier) equal(o *scramVerifier) bool {
	return v.iterations == o.iterations && hmac.Equal(v.salt, o.salt) &&
		hmac.Equal(v.storedKey, o.storedKey) && hmac.Equal(v.serverKey, o.serverKey)
}

// checkPassword reports whether password is the one v was made from.
func (v *scramVerifier) checkPassword(password string) bool {
	salted, err := pbkdf2.Key(sha256.New, password, v.salt, v.iterations, sha256.Size)
	if err != nil {
		return false
	}
	stored := sha256.Sum256(hmacSHA256(salted, "Client Key"))
	return hmac.Equal(stored[:], v.storedKey)
}

// scramServer performs the server side of SCRAM-SHA-256 with a client, from
// a verifier, as Postgres does: no channel binding is offered, the user name
// in the messages is ignored (the startup packet's counts), and a completed
// exchange yields the client's ClientKey.
type scramServer struct {
	v               *scramVerifier
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
}

func newScramServer(v *scramVerifier) *scramServer { return &scramServer{v: v} }

// errScramProtocol is a malformed SCRAM message from the client.
type errScramProtocol string

func (e errScramProtocol) Error() string { return "malformed SCRAM message: " + string(e) }

// first takes the client-first-message and returns the server-first-message.
func (s *scramServer) first(clientFirst []byte) ([]byte, error) {
	msg := string(clientFirst)
	// gs2-header: a channel-binding flag, an optional authzid, then the bare message.
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, errScramProtocol("no GS2 header")
	}
	switch {
	case flag == "n", flag == "y":
		// "y": the client could bind but believes the server cannot,
		// which is true: no PLUS mechanism is offered.
	case strings.HasPrefix(flag, "p="):
		return nil, errScramProtocol("channel binding was not offered")
	default:
		return nil, errScramProtocol("unexpected channel-binding flag")
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, errScramProtocol("no client-first-message-bare")
	}
	if authzid != "" {
		return nil, errScramProtocol("authorization identities are not supported")
	}
	s.gs2Header = flag + ",,"
	s.clientFirstBare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, errScramProtocol("client-first-message-bare")
	}
	clientNonce := attrs[1][2:]
	if clientNonce == "" || strings.ContainsAny(clientNonce, ",") {
		return nil, errScramProtocol("client nonce")
	}
	serverNonce, err := scramNonce()
	if err != nil {
		return nil, err
	}
	s.nonce = clientNonce + serverNonce
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.v.salt) + ",i=" + strconv.Itoa(s.v.iterations)
	return []byte(s.serverFirst), nil
}

// errScramProof is a proof that does not match the verifier: the wrong password.
var errScramProof = errors.New("scram: proof does not match")

// final takes the client-final-message, checks the proof and returns the
// server-final-message and the client's ClientKey.
func (s *scramServer) final(clientFinal []byte) (serverFinal, clientKey []byte, err error) {
	msg := string(clientFinal)
	withoutProof, proofAttr, ok := cutLast(msg, ",")
	if !ok || !strings.HasPrefix(proofAttr, "p=") {
		return nil, nil, errScramProtocol("no proof")
	}
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, nil, errScramProtocol("client-final-message")
	}
	binding, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil || string(binding) != s.gs2Header {
		return nil, nil, errScramProtocol("channel binding does not match the GS2 header")
	}
	if attrs[1][2:] != s.nonce {
		return nil, nil, errScramProtocol("nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proofAttr[2:])
	if err != nil || len(proof) != sha256.Size {
		return nil, nil, errScramProtocol("proof")
	}
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	signature := hmacSHA256(s.v.storedKey, authMessage)
	key := make([]byte, sha256.Size)
	for i := range key {
		key[i] = proof[i] ^ signature[i]
	}
	stored := sha256.Sum256(key)
	if subtle.ConstantTimeCompare(stored[:], s.v.storedKey) != 1 {
		return nil, nil, errScramProof
	}
	serverSig := hmacSHA256(s.v.serverKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), key, nil
}

// keys are what the session needs to authenticate to the warehouse later
// with clientKey.
func (s *scramServer) keys(clientKey []byte) *scramKeys {
	return &scramKeys{clientKey: clientKey, serverKey: s.v.serverKey, salt: s.v.salt, iterations: s.v.iterations}
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
