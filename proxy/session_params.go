package proxy

import (
	"sync"
)

// The parameters the warehouse reports with ParameterStatus, which routing
// and local answers see as the client does, and the maps sessions share
// them in.

// noteParameter records a ParameterStatus body (name, value) so that routing
// sees the session's TimeZone, DateStyle and the rest as the client does.
func (s *session) noteParameter(body []byte) {
	name, rest, ok := cutCStringBytes(body)
	if !ok {
		return
	}
	value, _, ok := cutCStringBytes(rest)
	if !ok {
		return
	}
	s.params.Store(s.srv.params.with(s.params.Load(), name, value))
}

// paramMaps shares the maps of reported parameters between sessions. Maps
// are never changed once published, so each report used to copy the
// session's map: at startup, a dozen copies and a map for every session.
// Sessions that heard the same reports in the same order share each map
// instead, found by the map before and the report.
type paramMaps struct {
	mu   sync.Mutex
	next map[paramStep]*map[string]string
}

type paramStep struct {
	from        *map[string]string
	name, value string
}

// maxParamSteps bounds the reports remembered: past it, sessions get maps
// of their own again.
const maxParamSteps = 4096

// with returns a map holding from's parameters and name set to value.
func (p *paramMaps) with(from *map[string]string, name, value []byte) *map[string]string {
	if from != nil {
		if v, ok := (*from)[string(name)]; ok && v == string(value) {
			return from
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := p.next[paramStep{from, string(name), string(value)}]; ok {
		return m
	}
	next := make(map[string]string, 16)
	if from != nil {
		for k, v := range *from {
			next[k] = v
		}
	}
	next[string(name)] = string(value)
	if p.next == nil {
		p.next = map[paramStep]*map[string]string{}
	}
	if len(p.next) < maxParamSteps {
		p.next[paramStep{from, string(name), string(value)}] = &next
	}
	return &next
}
