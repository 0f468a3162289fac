package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPprof checks that the profiles are served only when asked for, and
// behind the token like /metrics.
func TestPprof(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pprof bool
		token string
		auth  string
		want  int
	}{
		{name: "off", want: http.StatusNotFound},
		{name: "on", pprof: true, want: http.StatusOK},
		{name: "on, no token given", pprof: true, token: "secret", want: http.StatusUnauthorized},
		{name: "on, wrong token", pprof: true, token: "secret", auth: "Bearer other", want: http.StatusUnauthorized},
		{name: "on, token", pprof: true, token: "secret", auth: "Bearer secret", want: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(Options{Gatherer: prometheus.NewRegistry(), Token: tc.token, Pprof: tc.pprof})
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Errorf("GET %s: %d, want %d", path, rec.Code, tc.want)
				}
			}
		})
	}
}
