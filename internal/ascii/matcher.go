package ascii

// Matcher finds which of a set of words a text contains, in any mix of
// ASCII case, in one pass over the text however many words there are:
// a statement is checked against every table with a rollup, or every
// word the proxy looks for, at each Query.
type Matcher struct {
	words []string
	// byFirst lists, by a word's first byte, the indexes of the words
	// starting with it.
	byFirst [256][]int32
	// pairs has bit a<<8|b set when a word starts with the bytes a b, or
	// is the one byte a (then every b): most positions of a text fail
	// this test, and only the others are compared with words.
	pairs [256 * 256 / 64]uint64
	// first has bit c set when a word starts with the byte c in some
	// case: a test that keeps to one cache line, which most positions of a
	// text fail before the pairs filter is looked at, when the words start
	// with few letters (byFirst); with more, most positions pass it, and
	// it is not used. Any uses it; Mask, whose words (the proxy's) start
	// with many letters, does not.
	first    [256 / 64]uint64
	useFirst bool
	empty    bool // a word is "", which every text contains
}

// NewMatcher returns a Matcher of words, which must be lower-case ASCII.
func NewMatcher(words []string) *Matcher {
	m := &Matcher{words: words}
	for i, w := range words {
		if w == "" {
			m.empty = true
			continue
		}
		m.byFirst[w[0]] = append(m.byFirst[w[0]], int32(i))
		for c := range 256 {
			if lower[c] == w[0] {
				m.first[c>>6] |= 1 << (c & 63)
			}
		}
		for b := 0; b < 256; b++ {
			if len(w) == 1 || byte(b) == w[1] {
				k := int(w[0])<<8 | b
				m.pairs[k>>6] |= 1 << (k & 63)
			}
		}
	}
	starts := 0
	for _, ws := range m.byFirst {
		if len(ws) > 0 {
			starts++
		}
	}
	m.useFirst = starts <= maxFirstFiltered
	return m
}

// maxFirstFiltered is the most first bytes a Matcher's words may start with
// for its first filter to pay (BenchmarkMatcherOne, BenchmarkMatcherMask):
// one word (the router's "rollup" with no rollup defined) finds nothing in
// a pgbench statement in 49 ns with it and 62 without; 17 words starting
// with 10 letters, in 106 with it and 93 without.
const maxFirstFiltered = 4

// candidate reports whether a word may start at s[i]: its first two bytes
// (one at the end of s) pass the pairs filter.
func (m *Matcher) candidate(s string, i int) bool {
	k := int(lower[s[i]]) << 8
	if i+1 < len(s) {
		k |= int(lower[s[i+1]])
	}
	return m.pairs[k>>6]&(1<<(k&63)) != 0
}

// Any reports whether s contains one of the words, as ContainsFold finds
// them.
func (m *Matcher) Any(s string) bool {
	if m.empty {
		return true
	}
	if m.useFirst {
		return m.anyFirst(s)
	}
	for i := 0; i < len(s); i++ {
		if !m.candidate(s, i) {
			continue
		}
		for _, w := range m.byFirst[lower[s[i]]] {
			if HasPrefixFold(s[i:], m.words[w]) {
				return true
			}
		}
	}
	return false
}

// anyFirst is Any with the first filter before the pairs filter.
func (m *Matcher) anyFirst(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; m.first[c>>6]&(1<<(c&63)) == 0 || !m.candidate(s, i) {
			continue
		}
		for _, w := range m.byFirst[lower[s[i]]] {
			if HasPrefixFold(s[i:], m.words[w]) {
				return true
			}
		}
	}
	return false
}

// Mask returns the words s contains, as ContainsFold finds them: bit i
// for the i-th word. Words past the 64th are not looked for.
func (m *Matcher) Mask(s string) uint64 {
	var mask uint64
	for i, w := range m.words {
		if w == "" && i < 64 {
			mask |= 1 << i
		}
	}
	for i := 0; i < len(s); i++ {
		if !m.candidate(s, i) {
			continue
		}
		for _, w := range m.byFirst[lower[s[i]]] {
			if w < 64 && HasPrefixFold(s[i:], m.words[w]) {
				mask |= 1 << w
			}
		}
	}
	return mask
}

// lower maps every byte to its ASCII lower case, as Lower does.
var lower = func() (t [256]byte) {
	for c := range t {
		t[c] = Lower(byte(c))
	}
	return t
}()
