package proxy

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scramClient performs the client side of SCRAM-SHA-256 (RFC 5802, RFC 7677)
// as Postgres expects it: no channel binding ("n,,"), and an empty user name
// in the messages because Postgres takes the user from the startup packet.
type scramClient struct {
	password        string
	clientNonce     string
	clientFirstBare string
	serverFirst     string
	saltedPassword  []byte
	authMessage     string
}

const scramMechanism = "SCRAM-SHA-256"

func newScramClient(password string) (*scramClient, error) {
	nonce := make([]byte, 18)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("scram nonce: %w", err)
	}
	c := &scramClient{password: password, clientNonce: base64.RawStdEncoding.EncodeToString(nonce)}
	c.clientFirstBare = "n=,r=" + c.clientNonce
	return c, nil
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
	c.saltedPassword, err = pbkdf2.Key(sha256.New, c.password, saltBytes, iterations, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	withoutProof := "c=biws,r=" + nonce // biws is base64("n,,")
	c.authMessage = c.clientFirstBare + "," + c.serverFirst + "," + withoutProof

	clientKey := hmacSHA256(c.saltedPassword, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	signature := hmacSHA256(storedKey[:], c.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ signature[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

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
	serverKey := hmacSHA256(c.saltedPassword, "Server Key")
	want := hmacSHA256(serverKey, c.authMessage)
	if !hmac.Equal(got, want) {
		return errors.New("scram: server signature does not match")
	}
	return nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
