package admin

import (
	"crypto/subtle"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the admin HTTP handler.
type Options struct {
	// Ready reports readiness for /readyz.
	Ready func() bool
	// Details, when set, are lines /readyz adds below its verdict: what
	// an operator should know that does not make the process unready (a
	// proxy answering rollup queries itself because no worker does).
	Details func() []string
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Token, when set, is required as a Bearer token on every path except
	// /healthz and /readyz, which orchestrators probe without credentials.
	Token string
	// API, when set, serves everything under /api/.
	API http.Handler
	// Pprof serves net/http/pprof's profiles under /debug/pprof/: CPU,
	// heap, goroutines and the rest, as go tool pprof reads them.
	Pprof bool
}

// NewHandler returns the admin HTTP handler: /healthz, /readyz, /metrics,
// /api/ when opts.API is set and /debug/pprof/ when opts.Pprof is.
func NewHandler(opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		verdict, code := "ready\n", http.StatusOK
		if opts.Ready != nil && !opts.Ready() {
			verdict, code = "not ready\n", http.StatusServiceUnavailable
		}
		if opts.Details != nil {
			for _, d := range opts.Details() {
				verdict += d + "\n"
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(verdict))
	})
	metrics := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", requireToken(opts.Token, metrics))
	if opts.API != nil {
		mux.Handle("/api/", requireToken(opts.Token, opts.API))
	}
	if opts.Pprof {
		// The handlers are registered on this mux only: importing
		// net/http/pprof also registers them on http.DefaultServeMux,
		// which no listener of pgrollup's serves.
		profiles := http.NewServeMux()
		profiles.HandleFunc("/debug/pprof/", pprof.Index)
		profiles.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		profiles.HandleFunc("/debug/pprof/profile", pprof.Profile)
		profiles.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		profiles.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/debug/pprof/", requireToken(opts.Token, profiles))
	}
	return mux
}

// requireToken guards h with a Bearer token when token is set.
func requireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pgrollup"`)
			http.Error(w, "missing or wrong admin token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
