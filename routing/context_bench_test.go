package routing

import (
	"testing"

	"github.com/pgrollup/pgrollup/proxy"
	"github.com/pgrollup/pgrollup/rewrite"
)

// BenchmarkContextView: what each statement pays to read its session's
// context once the session has read it (the common case: nothing changed).
func BenchmarkContextView(b *testing.B) {
	tables := []*rewrite.Table{{Name: "public.customers", OID: 16401}, {Name: "public.orders", OID: 16409}, {Name: "public.products", OID: 16416}}
	w := NewContextWatch(nil, 0, nil)
	st := &contextState{database: "shop", names: unqualifiedNames(tables), tables: tables}
	st.probe = st.buildProbe()
	w.state.Store(st)
	sess := &proxy.SessionInfo{Probe: st.probe, Probed: []string{"shop", "ualice", "ualice", "on", "false",
		"16401", "16409", "16416", "16401,t,t,f", "16409,t,t,f", "16416,t,t,f"}}
	if v := w.view(sess); v == nil || v.tables["orders"] != "public.orders" || !v.readable["public.orders"] {
		b.Fatalf("view = %+v", v)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.view(sess)
	}
}
