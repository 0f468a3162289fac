package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/config"
)

// Node is a process's connection to the job system: the embedded server when
// nats.url is empty, the JetStream context, the build stream and the catalog.
type Node struct {
	Server    *Server // nil with an external server
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	Catalog   *Catalog
}

// Open connects as cfg says: to nats.url, or to an embedded server (started here) with
// JetStream files under data_dir/nats. It creates the stream and bucket if needed.
func Open(ctx context.Context, cfg *config.Config, name string, log *slog.Logger) (*Node, error) {
	n := &Node{}
	var err error
	if cfg.NATS.URL == "" {
		if n.Server, err = StartServer(ctx, ServerOptions{Dir: filepath.Join(cfg.DataDir, "nats"), Log: log}); err != nil {
			return nil, err
		}
		n.Conn, err = n.Server.Connect()
	} else {
		n.Conn, err = Dial(cfg.NATS.URL, name)
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	if n.JetStream, err = jetstream.New(n.Conn); err != nil {
		n.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	_, kv, err := Setup(ctx, n.JetStream)
	if err != nil {
		n.Close()
		return nil, err
	}
	n.Catalog = NewCatalog(kv)
	return n, nil
}

// Close drains the connection and stops the embedded server.
func (n *Node) Close() error {
	var err error
	if n.Conn != nil {
		err = n.Conn.Drain()
		if errors.Is(err, nats.ErrConnectionClosed) {
			err = nil
		}
	}
	if n.Server != nil {
		n.Server.Shutdown()
	}
	return err
}
