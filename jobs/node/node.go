package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/jobs/catalog"
)

// Node is a process's connection to the job system: the embedded server when
// nats.url is empty, the JetStream context, the build stream and the catalog.
type Node struct {
	Server *Server // nil with an external server
	// Conn is the connection every part of the process shares.
	Conn *nats.Conn
	// JetStream is the build queue's context.
	JetStream jetstream.JetStream
	// Catalog is the shared catalog on it.
	Catalog *catalog.Catalog
}

// Open connects as cfg says: to nats.url, or to an embedded server (started here) with
// JetStream files under data_dir/nats. It creates the stream and bucket if needed.
func Open(ctx context.Context, cfg *config.Config, name string) (*Node, error) {
	n := &Node{}
	var err error
	if cfg.NATS.URL == "" {
		if n.Server, err = StartServer(ctx, filepath.Join(cfg.DataDir, "nats")); err != nil {
			return nil, err
		}
		n.Conn, err = n.Server.Connect()
	} else {
		n.Conn, err = dial(cfg.NATS.URL, name)
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
	n.Catalog = catalog.New(kv)
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

// dial connects to an external NATS server, retrying while it is unreachable.
func dial(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	return nc, nil
}
