package jobstest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/internal/freeport"
	"github.com/pgrollup/pgrollup/jobs/catalog"
	"github.com/pgrollup/pgrollup/jobs/node"
)

// EmbeddedServer starts an embedded NATS server with its files in dir; it
// stops at the end of the test.
func EmbeddedServer(t testing.TB, dir string) *node.Server {
	t.Helper()
	srv, err := node.StartServer(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Conn is an in-process connection to srv, closed at the end of the test.
func Conn(t testing.TB, srv *node.Server) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Embedded starts an embedded NATS server in dir and returns a JetStream
// context and the catalog on a connection to it; both go at the end of the
// test.
func Embedded(t testing.TB, dir string) (jetstream.JetStream, *catalog.Catalog) {
	t.Helper()
	return Setup(t, Conn(t, EmbeddedServer(t, dir)))
}

// Setup makes the JetStream objects on nc's server and returns a JetStream
// context and the catalog.
func Setup(t testing.TB, nc *nats.Conn) (jetstream.JetStream, *catalog.Catalog) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, kv, err := node.Setup(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	return js, catalog.New(kv)
}

// NATSServer starts Debian's nats-server binary with JetStream in its own
// process and returns its URL and the process, which the test may kill.
func NATSServer(t testing.TB) (string, *exec.Cmd) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatalf("multi-process tests need nats-server (apt-get install nats-server): %v", err)
	}
	port := FreePort(t)
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
			return url, cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort is a TCP port on the loopback address that nobody listens on now.
func FreePort(t testing.TB) int {
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// FreeAddr is a loopback host:port that nobody listens on now.
func FreeAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
