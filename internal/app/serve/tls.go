package serve

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/selfsigned"
)

// loadTLS is the client-side TLS of cfg, nil for none; with tls.self_signed it
// makes the certificate once, under data_dir unless files are named.
func loadTLS(cfg *config.Config, log *slog.Logger) (*tls.Config, error) {
	c := cfg.TLS
	if c.SelfSigned && c.CertFile == "" && c.KeyFile == "" {
		c.CertFile = filepath.Join(cfg.DataDir, "tls", "cert.pem")
		c.KeyFile = filepath.Join(cfg.DataDir, "tls", "key.pem")
	}
	if c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	if c.SelfSigned {
		host, _, _ := net.SplitHostPort(cfg.Listen)
		made, err := selfsigned.Ensure(c.CertFile, c.KeyFile, []string{"localhost", host})
		if err != nil {
			return nil, fmt.Errorf("tls: self-signed certificate: %w", err)
		}
		if made {
			pem, _ := os.ReadFile(c.CertFile)
			log.Info("made a self-signed certificate; clients connect with sslmode=require", "cert_file", c.CertFile, "sha256", selfsigned.Fingerprint(pem))
		}
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
