package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/rollup"
)

// Catalog is the shared record of every rollup definition's state, one JSON-encoded
// rollup.State per key "rollup.NAME.IDENTITY" in a JetStream key-value bucket.
type Catalog struct {
	kv jetstream.KeyValue
}

// New wraps the catalog bucket (node.Setup creates it).
func New(kv jetstream.KeyValue) *Catalog { return &Catalog{kv: kv} }

// Key is the catalog key of a rollup definition.
func Key(name, identity string) string { return "rollup." + name + "." + identity }

// ErrNoChange, returned by an Update function, leaves the record untouched
// without error.
var ErrNoChange = errors.New("no change")

// Get returns the state of a definition; nil without error when there is none.
func (c *Catalog) Get(ctx context.Context, name, identity string) (*rollup.State, error) {
	st, _, err := c.get(ctx, Key(name, identity))
	return st, err
}

func (c *Catalog) get(ctx context.Context, key string) (*rollup.State, uint64, error) {
	e, err := c.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("catalog get %s: %w", key, err)
	}
	var st rollup.State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("catalog get %s: %w", key, err)
	}
	return &st, e.Revision(), nil
}

// Update applies fn to the definition's state with compare-and-set, retrying when
// someone else changed the record in between, so that concurrent writers never lose
// each other's changes. fn gets a fresh copy each attempt; for a missing record it gets
// a new State with Name and Identity set and Status pending. If fn returns ErrNoChange the
// record is left alone and the current state returned.
func (c *Catalog) Update(ctx context.Context, name, identity string, fn func(*rollup.State) error) (*rollup.State, error) {
	key := Key(name, identity)
	for attempt := 0; ; attempt++ {
		st, rev, err := c.get(ctx, key)
		if err != nil {
			return nil, err
		}
		if st == nil {
			st = &rollup.State{Name: name, Identity: identity, Status: rollup.StatusPending}
		}
		if err := fn(st); err != nil {
			if errors.Is(err, ErrNoChange) {
				return st, nil
			}
			return nil, err
		}
		st.UpdatedAt = time.Now().UTC()
		b, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("catalog update %s: %w", key, err)
		}
		if rev == 0 {
			_, err = c.kv.Create(ctx, key, b)
		} else {
			_, err = c.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) || attempt > 100 {
			return nil, fmt.Errorf("catalog update %s: %w", key, err)
		}
		select { // lost the race: read again
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt%10) * 5 * time.Millisecond):
		}
	}
}

// Delete removes a definition's record.
func (c *Catalog) Delete(ctx context.Context, name, identity string) error {
	if err := c.kv.Purge(ctx, Key(name, identity)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("catalog delete: %w", err)
	}
	return nil
}

// List returns every state in the catalog, ordered by name then identity.
func (c *Catalog) List(ctx context.Context) ([]*rollup.State, error) {
	lister, err := c.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("catalog list: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop() // the channel is drained; Stop only releases the watcher
	var out []*rollup.State
	for _, k := range keys {
		if !strings.HasPrefix(k, "rollup.") {
			continue
		}
		st, _, err := c.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if st != nil {
			out = append(out, st)
		}
	}
	sortStates(out)
	return out, nil
}

func sortStates(s []*rollup.State) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Name != s[j].Name {
			return s[i].Name < s[j].Name
		}
		return s[i].Identity < s[j].Identity
	})
}
