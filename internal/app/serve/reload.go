package serve

import (
	"log/slog"
	"reflect"
	"strings"

	"github.com/pgrollup/pgrollup/config"
	"github.com/pgrollup/pgrollup/internal/app"
)

// restartOnlySettings are the settings a reload cannot change in a running
// process, as the config file names them and as config.Config holds them:
// the listeners, connections and caches are set up once.
var restartOnlySettings = []struct{ name, field string }{
	{"listen", "Listen"},
	{"warehouse", "Warehouse"},
	{"nats", "NATS"},
	{"data_dir", "DataDir"},
	{"storage", "Storage"},
	{"worker", "Worker"},
	{"routing.worker_timeout", "Routing.WorkerTimeout"},
	{"routing.privilege_cache_ttl", "Routing.PrivilegeCacheTTL"},
	{"routing.result_cache_bytes", "Routing.ResultCacheBytes"},
	{"routing.finish_max_rows", "Routing.FinishMaxRows"},
	{"routing.answer_on", "Routing.AnswerOn"},
	{"proxy_protocol", "ProxyProtocol"},
	{"tls", "TLS"},
	{"auth", "Auth"},
	{"max_message_bytes", "MaxMessageBytes"},
	{"limits", "Limits"},
	{"admin", "Admin"},
}

// setting is the field at a dotted path of c.
func setting(c *config.Config, path string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for _, name := range strings.Split(path, ".") {
		v = v.FieldByName(name)
	}
	return v
}

// restartOnly names the settings that need a restart and differ in next.
func restartOnly(running, next *config.Config) []string {
	var changed []string
	for _, s := range restartOnlySettings {
		if !reflect.DeepEqual(setting(running, s.field).Interface(), setting(next, s.field).Interface()) {
			changed = append(changed, s.name)
		}
	}
	return changed
}

// reloader applies a configuration file read again on SIGHUP: tables,
// rollups, build_timezone, routing.rollup_only and routing.max_staleness
// take effect without dropping a connection; a file that does not validate
// changes nothing.
type reloader struct {
	path    string
	running *config.Config
	builds  *app.Builds
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
	if err := r.builds.Reconfigure(applied); err != nil {
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
	for _, s := range restartOnlySettings {
		setting(&c, s.field).Set(setting(running, s.field))
	}
	return &c
}
