package sqlstate

import "testing"

func TestClass(t *testing.T) {
	for code, want := range map[string]string{
		InvalidPassword:     "28",
		FeatureNotSupported: ClassFeatureNotSupported,
		UndefinedTable:      ClassSyntaxErrorOrAccessRuleViolation,
		"":                  "",
		"2":                 "",
		"42P011":            "",
	} {
		if got := Class(code); got != want {
			t.Errorf("Class(%q) = %q, want %q", code, got, want)
		}
	}
}
