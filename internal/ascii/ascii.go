// Package ascii holds case-insensitive ASCII text helpers for the statement
// hot path, where lower-casing a whole statement would cost an allocation.
package ascii

// ContainsFold reports whether s contains substr, which must be lower-case
// ASCII, in any mix of ASCII case.
func ContainsFold(s, substr string) bool {
	if substr == "" {
		return true
	}
	first := substr[0]
	for i := 0; i+len(substr) <= len(s); i++ {
		if Lower(s[i]) != first {
			continue
		}
		j := 1
		for j < len(substr) && Lower(s[i+j]) == substr[j] {
			j++
		}
		if j == len(substr) {
			return true
		}
	}
	return false
}

// HasPrefixFold reports whether s begins with prefix, which must be
// lower-case ASCII, in any mix of ASCII case.
func HasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if Lower(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// Lower returns c lower-cased if it is an ASCII capital letter, else c.
func Lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
