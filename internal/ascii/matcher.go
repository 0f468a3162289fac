package ascii

import (
	"slices"
	"strings"
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
	empty  bool   // a word is "", which every text contains
	always uint64 // the bits of the words that are ""
}

// maxFirsts is the most first bytes for which Any looks for each with
// IndexByte: with "rollup" alone (BenchmarkMatcherOne) it finds nothing in
// a pgbench statement in about a tenth of the time of a pass over every
// byte; with more first bytes the passes add up.
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
