package serve

import (
	"reflect"
	"testing"

	"github.com/pgrollup/pgrollup/config"
)

func TestRestartOnly(t *testing.T) {
	for _, s := range restartOnlySettings {
		if !setting(&config.Config{}, s.field).IsValid() {
			t.Fatalf("restart-only setting %s names no field %s of config.Config", s.name, s.field)
		}
	}
	base := func() *config.Config {
		return &config.Config{
			Listen:    "127.0.0.1:7432",
			Warehouse: config.Warehouse{DSN: "postgres://a@h/db"},
			Routing:   config.Routing{RollupOnly: false, MaxStaleness: 0, WorkerTimeout: 30},
			Rollups:   []config.Rollup{{Name: "r1"}},
		}
	}
	cases := []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"rollups and live routing", func(c *config.Config) {
			c.Rollups = append(c.Rollups, config.Rollup{Name: "r2"})
			c.Routing.RollupOnly, c.Routing.MaxStaleness = true, 60
			c.BuildTimezone = "Europe/Berlin"
		}, nil},
		{"listen and warehouse", func(c *config.Config) {
			c.Listen = "0.0.0.0:7432"
			c.Warehouse.DSN = "postgres://b@h/db"
		}, []string{"listen", "warehouse"}},
		{"routing caches", func(c *config.Config) {
			c.Routing.WorkerTimeout = 60
			c.Routing.ResultCacheBytes = 1
		}, []string{"routing.worker_timeout", "routing.result_cache_bytes"}},
		{"who answers and the balancers", func(c *config.Config) {
			c.Routing.AnswerOn = config.AnswerLocal
			c.ProxyProtocol.Trusted = []string{"10.0.0.0/8"}
		}, []string{"routing.answer_on", "proxy_protocol"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			running, next := base(), base()
			tc.change(next)
			if got := restartOnly(running, next); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("restartOnly = %v, want %v", got, tc.want)
			}
			// What is applied keeps the running value of every restart-only
			// setting and takes the rest from the new file.
			applied := withRestartOnly(next, running)
			if got := restartOnly(running, applied); got != nil {
				t.Fatalf("applied config still differs in %v", got)
			}
			if !reflect.DeepEqual(applied.Rollups, next.Rollups) || applied.Routing.RollupOnly != next.Routing.RollupOnly ||
				applied.Routing.MaxStaleness != next.Routing.MaxStaleness || applied.BuildTimezone != next.BuildTimezone {
				t.Fatalf("applied config lost a live setting: %+v", applied)
			}
		})
	}
}
