package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/rollup"
)

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
