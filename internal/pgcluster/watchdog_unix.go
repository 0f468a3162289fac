//go:build unix

package pgcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// watchdogScript waits on its stdin, a pipe whose only writer is this
// process. A clean Stop writes "done"; anything else (EOF because the test
// binary panicked, timed out or was killed) stops the server and removes the
// directory, so that a crashed test run leaves no Postgres behind.
const watchdogScript = `read line
[ "$line" = done ] && exit 0
"$0" stop -D "$1" -m immediate -w >/dev/null 2>&1
rm -rf "$2"`

type watchdog struct {
	w   *os.File
	cmd *exec.Cmd
}

func (c *Cluster) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	args := []string{"-c", watchdogScript, filepath.Join(c.BinDir, "pg_ctl"), filepath.Join(c.Dir, "data"), c.Dir}
	var cmd *exec.Cmd
	if c.asUser != nil {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser.name, "--", "/bin/sh"}, args...)...)
	} else {
		cmd = exec.Command("/bin/sh", args...)
	}
	cmd.Stdin = r
	cmd.Dir = "/"
	// Its own session: a Ctrl-C to the test's process group must not kill
	// the watchdog before it has cleaned up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	c.dog = &watchdog{w: w, cmd: cmd}
	return nil
}

// release tells the watchdog that Stop cleaned up, and reaps it.
func (d *watchdog) release() {
	_, _ = d.w.WriteString("done\n")
	d.w.Close()
	_ = d.cmd.Wait()
}
