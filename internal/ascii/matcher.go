package ascii

import (
	"slices"
	"strings"
	"sync"
)

// Matcher finds which of a set of words a text contains, in any mix of
// ASCII case, in one pass over the text however many words there are:
// a statement is checked against every table with a rollup, or every
// word the proxy looks for, at each Query.
type Matcher struct {
	words []string
	// byFirst lists, by a word's first byte, the indexes of the words
	// starting with it.
	byFirst [256][]int32
	// pairs has bit a<<8|b set when a word starts with the bytes a b in
	// some case, or is the one byte a in some case (then every b): most
	// positions of a text fail this test, and only the others are
	// compared with words. Indexed by the text's bytes as they are, so
	// that the test costs one table load per byte.
	pairs [256 * 256 / 64]uint64
	// single has bit c set when a one-byte word is c in some case: the
	// last byte of a text, which has no byte after it, is tested here.
	single [256 / 64]uint64
	// firsts are the bytes a word starts with, in either case, when they
	// are at most maxFirsts (none for no words): Any then finds each in
	// the text with strings.IndexByte, many bytes at a time, rather than
	// looking at every byte (the router's words when few rollups are
	// defined).
	firsts []byte
	// auto is the words as an automaton, which Mask makes on first use
	// (autoOnce) when they have at most maxAutomatonStates prefixes: one
	// table step per byte, whatever the words, where the pairs filter lets
	// through every position a word's first two letters start. Any, which
	// stops at the first word found, keeps to the filters: each step
	// waits on the one before, and the filters find nothing sooner.
	auto     *automaton
	autoOnce sync.Once
	empty    bool   // a word is "", which every text contains
	always   uint64 // the bits of the words that are ""
}

// automaton is an Aho-Corasick automaton of at most 256 states, as a
// table: next[st<<8|c] is the state after byte c of the text in state st,
// found[st] the words (bit i for the i-th, below 64) that end there. A
// state is a byte, so that no index of either needs a bounds check.
type automaton struct {
	next    [256 * 256]uint8
	found   [256]uint64
	longest int // the longest word's length
}

// maxAutomatonStates bounds the automaton's states, one per distinct
// prefix of the words: a state is a byte (64 kB of table). The proxy's 17
// words make about 150.
const maxAutomatonStates = 256

// maxFirsts is the most first bytes for which Any looks for each with
// IndexByte: with "rollup" alone (BenchmarkMatcherOne) it finds nothing in
// a pgbench statement in 17–20 ns, against 48 for a pass over every byte;
// with more first bytes the passes add up.
const maxFirsts = 8

// NewMatcher returns a Matcher of words, which must be lower-case ASCII.
func NewMatcher(words []string) *Matcher {
	m := &Matcher{words: words, firsts: []byte{}}
	for i, w := range words {
		if w == "" {
			m.empty = true
			if i < 64 {
				m.always |= 1 << i
			}
			continue
		}
		m.byFirst[w[0]] = append(m.byFirst[w[0]], int32(i))
		for a := range 256 {
			if lower[a] != w[0] {
				continue
			}
			if !slices.Contains(m.firsts, byte(a)) {
				m.firsts = append(m.firsts, byte(a))
			}
			if len(w) == 1 {
				m.single[a>>6] |= 1 << (a & 63)
			}
			for b := range 256 {
				if len(w) == 1 || lower[b] == w[1] {
					k := a<<8 | b
					m.pairs[k>>6] |= 1 << (k & 63)
				}
			}
		}
	}
	if len(m.firsts) > maxFirsts {
		m.firsts = nil
	}
	return m
}

// mask runs the automaton over s as two halves at once: each step waits
// on the table load before it, and two independent runs overlap those
// waits (BenchmarkMatcherMask: 84 ns for one run, 79 for two, before the
// tables became fixed arrays). The second starts a.longest-1 bytes before
// the middle, so that it sees whole every word that ends in its half.
func (a *automaton) mask(s string) uint64 {
	var mask uint64
	mid := len(s) / 2
	j := mid - (a.longest - 1)
	if j < 0 {
		j = 0
	}
	var x, y uint8 // the two runs' states
	i := 0
	for ; i < mid && j < len(s); i, j = i+1, j+1 {
		x = a.next[uint16(x)<<8|uint16(s[i])]
		y = a.next[uint16(y)<<8|uint16(s[j])]
		mask |= a.found[x] | a.found[y]
	}
	for ; i < mid; i++ {
		x = a.next[uint16(x)<<8|uint16(s[i])]
		mask |= a.found[x]
	}
	for ; j < len(s); j++ {
		y = a.next[uint16(y)<<8|uint16(s[j])]
		mask |= a.found[y]
	}
	return mask
}

// buildAutomaton makes the words' automaton, unless they have more than
// maxAutomatonStates prefixes: a trie of the words, each state's
// transitions for the bytes no child takes being those of its longest
// proper suffix that is a state (its failure state), in both cases.
func (m *Matcher) buildAutomaton() {
	a := &automaton{}
	type node struct {
		child map[byte]int
		fail  int
		found uint64
	}
	nodes := []node{{child: map[byte]int{}}}
	for i, w := range m.words {
		a.longest = max(a.longest, len(w))
		st := 0
		for j := 0; j < len(w); j++ {
			c, ok := nodes[st].child[w[j]]
			if !ok {
				if len(nodes) == maxAutomatonStates {
					return
				}
				c = len(nodes)
				nodes = append(nodes, node{child: map[byte]int{}})
				nodes[st].child[w[j]] = c
			}
			st = c
		}
		if i < 64 {
			nodes[st].found |= 1 << i
		}
	}
	next, found := &a.next, &a.found
	// Breadth first, so that a state's failure state is done before it.
	queue := []int{0}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		n := &nodes[st]
		if st != 0 {
			n.found |= nodes[n.fail].found
		}
		found[st] = n.found
		for c := range 256 {
			to, ok := n.child[lower[c]]
			switch {
			case ok && st == 0:
				nodes[to].fail = 0
			case ok:
				nodes[to].fail = int(next[n.fail<<8|c])
			case st == 0:
				to = 0
			default:
				to = int(next[n.fail<<8|c])
			}
			next[st<<8|c] = uint8(to)
			if ok && byte(c) == lower[c] {
				queue = append(queue, to)
			}
		}
	}
	m.auto = a
}

// Any reports whether s contains one of the words, as ContainsFold finds
// them.
func (m *Matcher) Any(s string) bool {
	if m.empty {
		return true
	}
	if m.firsts != nil {
		for _, b := range m.firsts {
			for i := strings.IndexByte(s, b); i >= 0; {
				if m.anyAt(s, i) {
					return true
				}
				next := strings.IndexByte(s[i+1:], b)
				if next < 0 {
					break
				}
				i += 1 + next
			}
		}
		return false
	}
	found := false
	m.scan(s, func(i int) bool {
		found = m.anyAt(s, i)
		return found
	})
	return found
}

// anyAt reports whether a word starts at s[i].
func (m *Matcher) anyAt(s string, i int) bool {
	for _, w := range m.byFirst[lower[s[i]]] {
		if HasPrefixFold(s[i:], m.words[w]) {
			return true
		}
	}
	return false
}

// Mask returns the words s contains, as ContainsFold finds them: bit i
// for the i-th word. Words past the 64th are not looked for.
func (m *Matcher) Mask(s string) uint64 {
	mask := m.always
	m.autoOnce.Do(m.buildAutomaton)
	if m.auto != nil {
		return mask | m.auto.mask(s)
	}
	m.scan(s, func(i int) bool {
		for _, w := range m.byFirst[lower[s[i]]] {
			if w < 64 && HasPrefixFold(s[i:], m.words[w]) {
				mask |= 1 << w
			}
		}
		return false
	})
	return mask
}

// scan calls at for each position of s where a word may start, until it
// returns true. It looks at each byte once, with the next: the pair goes
// through the pairs filter, and only where it passes may a word start.
func (m *Matcher) scan(s string, at func(i int) (stop bool)) {
	if len(s) == 0 {
		return
	}
	prev := uint(s[0])
	for i := 1; i < len(s); i++ {
		c := uint(s[i])
		k := prev<<8 | c
		prev = c
		if m.pairs[k>>6&1023]&(1<<(k&63)) != 0 && at(i-1) {
			return
		}
	}
	if m.single[prev>>6&3]&(1<<(prev&63)) != 0 {
		at(len(s) - 1)
	}
}

// lower maps every byte to its ASCII lower case, as Lower does.
var lower = func() (t [256]byte) {
	for c := range t {
		t[c] = Lower(byte(c))
	}
	return t
}()
