package proxy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// While the warehouse is unreachable the proxy authenticates clients itself
// (outage.go), which takes the SCRAM verifier the warehouse holds for the
// role. It gets verifiers two ways, both only while the warehouse is up:
//
//   - from a relayed login: a completed SCRAM exchange with the warehouse,
//     whose signature the proxy checked, proves the client's password and
//     yields the warehouse's verifier (same salt and iteration count) without
//     keeping the password;
//   - through a VerifierLookup (auth.query, as PgBouncer's auth_query), for
//     a role once it logged in, and again every refresh interval, so that a
//     changed password or a dropped role is followed.
//
// Without a lookup a verifier stays as the last successful login left it:
// a password changed since then still opens a session during an outage.

// VerifierLookup reads the password verifier the warehouse holds for a role
// (pg_authid.rolpassword, through a query a privileged role allows). found
// is false when the role does not exist or has no password.
type VerifierLookup interface {
	LookupVerifier(ctx context.Context, user string) (secret string, found bool, err error)
}

// maxHeldVerifiers bounds the roles whose verifiers are held; the least
// recently used go first.
const maxHeldVerifiers = 100000

// lookupTimeout bounds one auth query.
const lookupTimeout = 5 * time.Second

// verifierCache holds the SCRAM verifiers the proxy may authenticate clients
// with, by role.
type verifierCache struct {
	lookup  VerifierLookup // nil: verifiers come from logins only
	refresh time.Duration
	log     *slog.Logger
	held    *lru.Cache[string, *heldVerifier]

	mu       sync.Mutex
	fetching map[string]bool
	// base is the context lookups after a login run in: the server's,
	// which ends with its Shutdown.
	base context.Context
}

// heldVerifier is one role's verifier and where it came from.
type heldVerifier struct {
	v *scramVerifier
	// fromLookup: read through the VerifierLookup, rather than learned from
	// a login.
	fromLookup bool
	// vouched is when the warehouse last confirmed it, by a login or a lookup.
	vouched time.Time
}

func newVerifierCache(lookup VerifierLookup, refresh time.Duration, log *slog.Logger) *verifierCache {
	held, err := lru.New[string, *heldVerifier](maxHeldVerifiers)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &verifierCache{lookup: lookup, refresh: refresh, log: log, held: held, fetching: map[string]bool{}, base: context.Background()}
}

// get returns the verifier held for user, nil when none.
func (c *verifierCache) get(user string) *scramVerifier {
	if h, ok := c.held.Get(user); ok {
		return h.v
	}
	return nil
}

// learn keeps the verifier a relayed SCRAM login just proved.
func (c *verifierCache) learn(user string, v *scramVerifier) {
	fromLookup := false
	if h, ok := c.held.Peek(user); ok && h.v.equal(v) {
		fromLookup = h.fromLookup
	}
	c.held.Add(user, &heldVerifier{v: v, fromLookup: fromLookup, vouched: time.Now()})
}

// forget drops user's verifier: the warehouse no longer takes it.
func (c *verifierCache) forget(user string) { c.held.Remove(user) }

// loggedIn notes a relayed login of user: with a lookup, its verifier is
// read now unless a recent read holds it already. The read runs in the
// background, after the login; a failed one changes nothing.
func (c *verifierCache) loggedIn(user string) {
	if c.lookup == nil {
		return
	}
	if h, ok := c.held.Peek(user); ok && h.fromLookup && time.Since(h.vouched) < c.refresh {
		return
	}
	c.mu.Lock()
	if c.fetching[user] {
		c.mu.Unlock()
		return
	}
	c.fetching[user] = true
	ctx := c.base
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			delete(c.fetching, user)
			c.mu.Unlock()
		}()
		if err := c.fetch(ctx, user); err != nil && ctx.Err() == nil {
			c.log.Warn("auth query failed; the role's verifier stays as it was", "role", user, "err", err)
		}
	}()
}

// fetch reads user's verifier through the lookup and keeps it, or forgets
// the role's when the warehouse holds no SCRAM verifier for it (any more).
func (c *verifierCache) fetch(ctx context.Context, user string) error {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	secret, found, err := c.lookup.LookupVerifier(ctx, user)
	if err != nil {
		return err
	}
	if !found {
		c.held.Remove(user)
		c.log.Debug("auth query: no password for the role; pgrollup will not authenticate it itself", "role", user)
		return nil
	}
	v, err := parseScramVerifier(secret)
	if err != nil {
		// The error never quotes the secret.
		c.held.Remove(user)
		c.log.Debug("auth query: the role has no SCRAM-SHA-256 verifier; pgrollup will not authenticate it itself", "role", user, "why", err)
		return nil
	}
	c.held.Add(user, &heldVerifier{v: v, fromLookup: true, vouched: time.Now()})
	return nil
}

// run reads every held role's verifier again each refresh interval while
// up reports the warehouse reachable, until ctx ends.
func (c *verifierCache) run(ctx context.Context, up func() bool) {
	c.mu.Lock()
	c.base = ctx
	c.mu.Unlock()
	if c.lookup == nil || c.refresh <= 0 {
		return
	}
	t := time.NewTicker(c.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !up() {
			// What was read before the outage is the best there is.
			continue
		}
		failed := 0
		var last error
		for _, user := range c.held.Keys() {
			if err := c.fetch(ctx, user); err != nil {
				failed++
				last = err
			}
			if ctx.Err() != nil {
				return
			}
		}
		if failed > 0 {
			c.log.Warn("auth query failed; those roles' verifiers stay as they were", "roles", failed, "err", last)
		}
	}
}
