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
		if lower(s[i]) != first {
			continue
		}
		j := 1
		for j < len(substr) && lower(s[i+j]) == substr[j] {
			j++
		}
		if j == len(substr) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
