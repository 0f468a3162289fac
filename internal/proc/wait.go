package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// pollEvery is how often the waits below try again.
const pollEvery = 100 * time.Millisecond

// WaitSession polls until a session to dsn, a server p started or one in
// front of it, answers SELECT 1. It fails with the end of p's log when p
// exits or limit passes, and when ctx ends; the caller stops p.
func WaitSession(ctx context.Context, p *Process, dsn string, limit time.Duration) error {
	return poll(ctx, p, limit, func() error { return ping(ctx, dsn) }, func(err error) error {
		return fmt.Errorf("%s: no working session after %s: %w", p.Name, limit, err)
	})
}

// ping opens a session to dsn, runs SELECT 1 and closes it, within five
// seconds.
func ping(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
	return err
}

// WaitReady polls until GET url, an HTTP endpoint of p such as a
// pgrollup's /readyz, answers 200. It fails as WaitSession does.
func WaitReady(ctx context.Context, p *Process, url string, limit time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, p, limit, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}, func(err error) error {
		return fmt.Errorf("%s not ready after %s (GET %s: %v)", p.Name, limit, url, err)
	})
}

// poll calls try until it succeeds; late makes the error once limit has
// passed from try's last one.
func poll(ctx context.Context, p *Process, limit time.Duration, try func() error, late func(error) error) error {
	deadline := time.Now().Add(limit)
	for {
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Exited:
			return p.Failed(err)
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			return p.Failed(late(err))
		}
	}
}
