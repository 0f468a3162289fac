package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pgrollup/pgrollup/jobs/api"
)

const defaultAdminURL = "http://127.0.0.1:7480"

// adminClient talks to a running pgrollup's admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func adminFlags(fs *flag.FlagSet) (admin, token *string) {
	admin = fs.String("admin", defaultAdminURL, "admin API URL of the running pgrollup")
	token = fs.String("token", "", "admin token (default $PGROLLUP_ADMIN_TOKEN)")
	return admin, token
}

func newAdminClient(admin, token string) (*adminClient, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--admin %q: want a URL such as %s", admin, defaultAdminURL)
	}
	if token == "" {
		token = os.Getenv("PGROLLUP_ADMIN_TOKEN")
	}
	return &adminClient{base: strings.TrimRight(admin, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

func (c *adminClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach pgrollup at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s", method, path, e.Error)
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return fmt.Errorf("%s %s: %s (pass --token or set PGROLLUP_ADMIN_TOKEN)", method, path, resp.Status)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// runStatus is "pgrollup status": one line per rollup.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin, token := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := newAdminClient(*admin, *token)
	if err != nil {
		fmt.Fprintln(stderr, "pgrollup status:", err)
		return 2
	}
	var list []api.Status
	if err := c.do(context.Background(), http.MethodGet, "/api/rollups", &list); err != nil {
		fmt.Fprintln(stderr, "pgrollup status:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(list)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tVERSION\tROWS\tBYTES\tBUILT AT\tLAST ERROR")
	for _, s := range list {
		built := "-"
		if s.BuiltAt != nil {
			built = s.BuiltAt.Local().Format(time.DateTime)
		}
		lastErr := ""
		if s.LastError != nil {
			lastErr = firstLine(*s.LastError)
		}
		version := s.Version
		if version == "" {
			version = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Name, s.Status, version, s.Rows, s.Bytes, built, lastErr)
	}
	tw.Flush()
	return 0
}

// runRefresh is "pgrollup refresh [--wait] NAME...": queue builds, and with --wait
// follow them until each has a version built after the request.
func runRefresh(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("refresh", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin, token := adminFlags(fs)
	wait := fs.Bool("wait", false, "wait until the builds finish, showing progress")
	timeout := fs.Duration("timeout", 0, "with --wait, give up after this long (0: never)")
	poll := fs.Duration("poll", time.Second, "with --wait, how often to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	names := fs.Args()
	if len(names) == 0 {
		fmt.Fprintln(stderr, "pgrollup refresh: name at least one rollup")
		return 2
	}
	c, err := newAdminClient(*admin, *token)
	if err != nil {
		fmt.Fprintln(stderr, "pgrollup refresh:", err)
		return 2
	}
	ctx := context.Background()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	pending := map[string]queued{}
	for _, name := range names {
		var q queued
		if err := c.do(ctx, http.MethodPost, "/api/rollups/"+url.PathEscape(name)+"/refresh", &q); err != nil {
			fmt.Fprintln(stderr, "pgrollup refresh:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: refresh queued (job %s)\n", name, q.Job)
		pending[name] = q
	}
	if !*wait {
		return 0
	}
	last := map[string]string{}
	failed := false
	for len(pending) > 0 {
		for _, name := range names {
			q, ok := pending[name]
			if !ok {
				continue
			}
			var d api.Detail
			if err := c.do(ctx, http.MethodGet, "/api/rollups/"+url.PathEscape(name), &d); err != nil {
				fmt.Fprintln(stderr, "pgrollup refresh:", err)
				return 1
			}
			done, ok, line := refreshOutcome(d, q.Job, q.QueuedAt)
			if line != last[name] {
				fmt.Fprintf(stdout, "%s: %s\n", name, line)
				last[name] = line
			}
			if done {
				failed = failed || !ok
				delete(pending, name)
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr, "pgrollup refresh: timed out waiting for", strings.Join(keys(pending), ", "))
			return 1
		case <-time.After(*poll):
		}
	}
	if failed {
		return 1
	}
	return 0
}

// refreshOutcome reads a rollup's detail for the job queued at queuedAt: done when a
// version built from a snapshot after the request is active, or when the job's last
// attempt failed for good.
func refreshOutcome(d api.Detail, job string, queuedAt time.Time) (done, ok bool, line string) {
	st := d.State
	if st != nil && st.Active != nil && !st.Active.Started.Before(queuedAt) {
		return true, true, fmt.Sprintf("done: version %s, %d rows, %d bytes", st.Active.ID, st.Active.Rows, st.Active.Bytes)
	}
	if st != nil && st.Building != nil {
		p := st.Building.Progress
		if p == "" {
			p = "started"
		}
		return false, false, "building: " + p
	}
	if st != nil {
		for i := len(st.Builds) - 1; i >= 0; i-- {
			b := st.Builds[i]
			if b.Job == job && b.Result == "error" {
				if b.Final {
					return true, false, "failed: " + firstLine(b.Error)
				}
				return false, false, "failed, will retry: " + firstLine(b.Error)
			}
		}
	}
	return false, false, "queued"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// queued is the answer to POST /api/rollups/{name}/refresh.
type queued struct {
	Name     string    `json:"name"`
	Job      string    `json:"job"`
	QueuedAt time.Time `json:"queued_at"`
}

func keys(m map[string]queued) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
