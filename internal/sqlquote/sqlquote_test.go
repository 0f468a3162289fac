package sqlquote

import "testing"

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Ident("orders"), `"orders"`},
		{Ident(`we"ird`), `"we""ird"`},
		{Ident(""), `""`},
		{Literal("it's"), `'it''s'`},
		{Literal(`a\b`), `'a\b'`},
		{EscapeLiteral("it's"), `E'it''s'`},
		{EscapeLiteral(`a\'b`), `E'a\\''b'`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}
