package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is the embedded NATS server of the single binary.
type Server struct {
	ns *server.Server
}

// ServerOptions configures StartServer.
type ServerOptions struct {
	// Dir holds JetStream's files (data_dir/nats).
	Dir string
	// Listen is a host:port to accept TCP clients on; empty accepts in-process
	// connections only, so a default install opens no extra port.
	Listen string
	Log    *slog.Logger
}

// StartServer starts an embedded NATS server with JetStream on local disk.
func StartServer(ctx context.Context, o ServerOptions) (*Server, error) {
	opts := &server.Options{
		ServerName: "pgrollup",
		JetStream:  true,
		StoreDir:   filepath.Clean(o.Dir),
		DontListen: o.Listen == "",
		NoSigs:     true,
	}
	if o.Listen != "" {
		host, port, err := splitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen %q: %w", o.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			ns.Shutdown()
			return nil, errors.New("embedded nats: not ready after 30s")
		}
	}
	return &Server{ns: ns}, nil
}

// Connect returns an in-process client connection.
func (s *Server) Connect() (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Name("pgrollup"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	return nc, nil
}

// ClientURL is the URL TCP clients connect to; empty when the server does not listen.
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int
	if _, err := fmt.Sscanf(portStr, "%d", &port); err != nil {
		return "", 0, err
	}
	return host, port, nil
}
