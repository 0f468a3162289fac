package routing

import (
	"strings"
	"testing"
)

func TestPolicyEvaluate(t *testing.T) {
	str := func(s string) *string { return &s }
	sess := sessionValues{currentUser: `bob "the" builder`, sessionUser: "alice", settings: map[string]*string{
		"app.tenant": str("2"), "app.quote": str(`a'b\c`), "app.unset": nil,
	}}
	tests := []struct {
		qual    string
		want    string // the evaluated policy; "" when it must not be evaluated
		parseOK bool
	}{
		{qual: `(status = ANY (ARRAY['a'::text, 'b'::text]))`, want: `status = ANY(ARRAY['a'::text, 'b'::text])`, parseOK: true},
		{qual: `(tenant_id = (current_setting('app.tenant'::text))::integer)`, want: `tenant_id = E'2'::int`, parseOK: true},
		{qual: `(tenant_id = (pg_catalog.current_setting('app.tenant'::text))::integer)`, want: `tenant_id = E'2'::int`, parseOK: true},
		{qual: `(status = current_setting('app.quote'::text))`, want: `status = (E'a''b\\c'::text)`, parseOK: true},
		{qual: `(status = current_setting('app.unset'::text, true))`, want: `status = (NULL::text)`, parseOK: true},
		{qual: `((current_setting('app.unset'::text, true))::integer = tenant_id)`, want: `NULL::int = tenant_id`, parseOK: true},
		// Postgres fails the statement: the warehouse must say so.
		{qual: `(status = current_setting('app.unset'::text))`, parseOK: true},
		{qual: `(status = current_setting('app.never_read'::text))`, parseOK: true},
		{qual: `(owner = CURRENT_USER)`, want: `owner = (E'bob "the" builder'::name)`, parseOK: true},
		{qual: `(owner = (SESSION_USER)::text)`, want: `owner = E'alice'::text`, parseOK: true},
		{qual: `(status = current_setting(status))`},
		{qual: `(status = current_setting('a'::text, (tenant_id > 1)))`},
		{qual: `(status = '__pgrollup_session_part_0__'::text)`},
	}
	for _, tt := range tests {
		t.Run(tt.qual, func(t *testing.T) {
			tmpl, parts, err := parsePolicy(tt.qual)
			if (err == nil) != tt.parseOK {
				t.Fatalf("parsePolicy: %v, want ok=%v", err, tt.parseOK)
			}
			p := &policy{template: tmpl, parts: parts, err: err}
			got, ok := p.evaluate(sess)
			if ok != (tt.want != "") {
				t.Fatalf("evaluate = %q, %v; want %q", got, ok, tt.want)
			}
			if ok && strings.ReplaceAll(got, "integer", "int") != tt.want {
				t.Fatalf("evaluate = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRowFilterCombinesPolicies(t *testing.T) {
	mk := func(permissive bool, qual string) *policy {
		tmpl, parts, err := parsePolicy(qual)
		if err != nil {
			t.Fatal(err)
		}
		return &policy{permissive: permissive, template: tmpl, parts: parts}
	}
	st := &contextState{
		policies: map[uint32]*policy{
			1: mk(true, "(status = 'a'::text)"),
			2: mk(true, "(status = 'b'::text)"),
			3: mk(false, "(tenant_id > 0)"),
			4: mk(false, "(tenant_id = (current_setting('app.missing'::text))::integer)"),
		},
		byTable: map[uint32]map[uint32]bool{10: {1: true, 2: true, 3: true, 4: true}},
	}
	s := sessionValues{settings: map[string]*string{}}
	for _, tt := range []struct {
		applicable []uint32
		want       string
	}{
		{nil, "false"},
		{[]uint32{3}, "false"}, // restrictive alone lets nothing through
		{[]uint32{1}, "((status = 'a'::text))"},
		{[]uint32{1, 2, 3}, "((status = 'a'::text) OR (status = 'b'::text)) AND (tenant_id > 0)"},
		{[]uint32{1, 4}, ""},  // fails in Postgres
		{[]uint32{1, 99}, ""}, // not polled yet
	} {
		if got := st.rowFilter(10, tt.applicable, s); got != tt.want {
			t.Errorf("rowFilter(%v) = %q, want %q", tt.applicable, got, tt.want)
		}
	}
}
