package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is the embedded NATS server of the single binary.
type Server struct {
	ns *server.Server
}

// StartServer starts an embedded NATS server with JetStream's files in dir
// (data_dir/nats). It accepts in-process connections only, so that a
// default install opens no extra port.
func StartServer(ctx context.Context, dir string) (*Server, error) {
	opts := &server.Options{
		ServerName: "pgrollup",
		JetStream:  true,
		StoreDir:   filepath.Clean(dir),
		DontListen: true,
		NoSigs:     true,
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

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
