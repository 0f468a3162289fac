package proc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Config is what every config of a pgrollup that a benchmark runs says:
// who wrote it, where it listens, its warehouse and its data directory.
type Config struct {
	Writer       string // the command that wrote it, for its first line
	Listen       string // the client listener, host:port
	Admin        string // the admin listener, host:port
	WarehouseDSN string
	// DataDir is data_dir; the rollups' files and the workers' cache go
	// below it, where pgrollup puts them by default.
	DataDir string
	// Pprof serves Go's runtime profiles on the admin listener
	// (admin.pprof), for profiling pgrollup under a benchmark's load.
	Pprof bool
}

// YAML is the config's text followed by more: the benchmark's own
// sections (routing, auth, tables, rollups).
func (c Config) YAML(more string) string {
	q := strconv.Quote
	pprof := ""
	if c.Pprof {
		pprof = "  pprof: true\n"
	}
	return `# written by ` + c.Writer + `
listen: ` + q(c.Listen) + `
warehouse:
  dsn: ` + q(c.WarehouseDSN) + `
data_dir: ` + q(c.DataDir) + `
admin:
  listen: ` + q(c.Admin) + `
` + pprof + more
}

// StartPgrollup writes cfg to dir/pgrollup.yaml and starts `bin serve`
// with it and args in CleanEnv, its log in dir/pgrollup.log.
func StartPgrollup(bin, dir, cfg string, args ...string) (*Process, error) {
	return StartPgrollupEnv(bin, dir, cfg, nil, args...)
}

// StartPgrollupEnv is StartPgrollup with env (KEY=value) added to CleanEnv.
func StartPgrollupEnv(bin, dir, cfg string, env []string, args ...string) (*Process, error) {
	cfgPath := filepath.Join(dir, "pgrollup.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"serve", "--config", cfgPath}, args...)...)
	cmd.Env = append(CleanEnv(), env...)
	return Start("pgrollup", filepath.Join(dir, "pgrollup.log"), cmd)
}
