package main

import (
	"log/slog"
	"reflect"

	"github.com/pgrollup/pgrollup/config"
)

// restartOnly lists the settings a reload cannot change in a running
// process: the listeners, connections and caches are set up once.
func restartOnly(old, next *config.Config) []string {
	var changed []string
	check := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			changed = append(changed, name)
		}
	}
	check("listen", old.Listen, next.Listen)
	check("warehouse", old.Warehouse, next.Warehouse)
	check("nats", old.NATS, next.NATS)
	check("data_dir", old.DataDir, next.DataDir)
	check("storage", old.Storage, next.Storage)
	check("worker", old.Worker, next.Worker)
	check("routing.worker_timeout", old.Routing.WorkerTimeout, next.Routing.WorkerTimeout)
	check("routing.privilege_cache_ttl", old.Routing.PrivilegeCacheTTL, next.Routing.PrivilegeCacheTTL)
	check("routing.result_cache_bytes", old.Routing.ResultCacheBytes, next.Routing.ResultCacheBytes)
	check("tls", old.TLS, next.TLS)
	check("auth", old.Auth, next.Auth)
	check("max_message_bytes", old.MaxMessageBytes, next.MaxMessageBytes)
	check("admin", old.Admin, next.Admin)
	return changed
}

// reloader applies a configuration file read again on SIGHUP: tables,
// rollups, build_timezone, routing.rollup_only and routing.max_staleness
// take effect without dropping a connection; a file that does not validate
// changes nothing.
type reloader struct {
	path    string
	running *config.Config
	builds  *builds
	router  *router
	log     *slog.Logger
}

// reload reads the file again and applies what it can.
func (r *reloader) reload() {
	next, err := config.Load(r.path)
	if err != nil {
		r.log.Error("config reload failed; the running configuration stays", "err", err)
		return
	}
	// What needs a restart stays as it runs, for the builds and the router too.
	applied := withRestartOnly(next, r.running)
	if err := r.builds.reconfigure(applied); err != nil {
		r.log.Error("config reload failed; the running configuration stays", "err", err)
		return
	}
	r.router.reload(applied)
	if changed := restartOnly(r.running, next); len(changed) > 0 {
		r.log.Warn("config reloaded; these settings take effect only after a restart", "settings", changed)
	} else {
		r.log.Info("config reloaded", "path", r.path, "rollups", len(next.Rollups))
	}
	r.running = applied
}

// withRestartOnly is next with the settings that need a restart as they are
// in running.
func withRestartOnly(next, running *config.Config) *config.Config {
	c := *next
	c.Listen, c.Warehouse, c.NATS, c.DataDir = running.Listen, running.Warehouse, running.NATS, running.DataDir
	c.Storage, c.Worker, c.TLS, c.Auth = running.Storage, running.Worker, running.TLS, running.Auth
	c.MaxMessageBytes, c.Admin = running.MaxMessageBytes, running.Admin
	c.Routing.WorkerTimeout = running.Routing.WorkerTimeout
	c.Routing.PrivilegeCacheTTL = running.Routing.PrivilegeCacheTTL
	c.Routing.ResultCacheBytes = running.Routing.ResultCacheBytes
	return &c
}
