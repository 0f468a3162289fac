package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/rollup"
)

// Catalog is the shared record of every rollup definition's state, one JSON-encoded
// rollup.State per key "rollup.NAME.IDENTITY" in a JetStream key-value bucket.
type Catalog struct {
	kv jetstream.KeyValue
}

// NewCatalog wraps the catalog bucket (see Setup).
func NewCatalog(kv jetstream.KeyValue) *Catalog { return &Catalog{kv: kv} }

// Key is the catalog key of a rollup definition.
func Key(name, identity string) string { return "rollup." + name + "." + identity }

// errNoChange lets an update function leave the record as it is.
var errNoChange = errors.New("no change")

// NoChange, returned by an Update function, leaves the record untouched without error.
var NoChange = errNoChange

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
// a new State with Name and Identity set and Status pending. If fn returns NoChange the
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
			if errors.Is(err, errNoChange) {
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

// View is a live, read-only copy of the catalog, fed by a KV watcher.
type View struct {
	mu      sync.RWMutex
	states  map[string]*rollup.State // by key
	ready   chan struct{}
	changed chan struct{} // closed and replaced on every change
	done    chan struct{}
}

// Watch starts a View of the catalog; it follows changes until ctx ends.
func (c *Catalog) Watch(ctx context.Context) (*View, error) {
	w, err := c.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("catalog watch: %w", err)
	}
	v := &View{states: map[string]*rollup.State{}, ready: make(chan struct{}), changed: make(chan struct{}), done: make(chan struct{})}
	go v.run(ctx, w)
	return v, nil
}

func (v *View) run(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(v.done)
	defer w.Stop()
	readyOnce := sync.OnceFunc(func() { close(v.ready) })
	defer readyOnce()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the initial values are all in
				readyOnce()
				continue
			}
			v.mu.Lock()
			if e.Operation() != jetstream.KeyValuePut {
				delete(v.states, e.Key())
			} else {
				var st rollup.State
				if err := json.Unmarshal(e.Value(), &st); err == nil {
					v.states[e.Key()] = &st
				}
			}
			close(v.changed)
			v.changed = make(chan struct{})
			v.mu.Unlock()
		}
	}
}

// Ready is closed once the view holds the whole catalog.
func (v *View) Ready() <-chan struct{} { return v.ready }

// Changed returns a channel that is closed at the next change.
func (v *View) Changed() <-chan struct{} {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.changed
}

// Get returns the state of a definition, or nil. The state is shared: do not modify it.
func (v *View) Get(name, identity string) *rollup.State {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.states[Key(name, identity)]
}

// All returns every state, ordered by name then identity. The states are shared: do
// not modify them.
func (v *View) All() []*rollup.State {
	v.mu.RLock()
	out := make([]*rollup.State, 0, len(v.states))
	for _, s := range v.states {
		out = append(out, s)
	}
	v.mu.RUnlock()
	sortStates(out)
	return out
}
