package selfsigned

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	made, err := Ensure(cert, key, []string{"localhost", "127.0.0.1"})
	if err != nil || !made {
		t.Fatalf("Ensure = %v, %v; want a new pair", made, err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pair.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	before, _ := os.ReadFile(cert)
	if made, err := Ensure(cert, key, nil); err != nil || made {
		t.Fatalf("second Ensure = %v, %v; want the pair kept", made, err)
	}
	after, _ := os.ReadFile(cert)
	if string(before) != string(after) || Fingerprint(after) == "" {
		t.Fatal("the certificate changed or has no fingerprint")
	}
	os.Remove(key)
	if _, err := Ensure(cert, key, nil); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
}
