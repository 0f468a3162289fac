package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestWarnsOfTrustedAddress: the test cluster trusts e2e_trust from
// 127.0.0.1, pgrollup's own address, so anyone who reaches pgrollup could
// log in as e2e_trust; pgrollup says so when it starts.
func TestWarnsOfTrustedAddress(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := string(env.proxy.log.Bytes())
		if i := strings.Index(log, "trusts pgrollup's address"); i >= 0 {
			line := log[i:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			if !strings.Contains(line, userTrust) || !strings.Contains(line, "127.0.0.1") {
				t.Fatalf("the warning does not name the rule: %s", line)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the trust line for %s in the log:\n%s", userTrust, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
