package proc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a server a benchmark started, in its own process group so that
// Ctrl-C reaches the benchmark, which then stops it in order. Its output
// goes to a log file.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	// Exited is closed when the process has ended; WaitErr says how.
	Exited  chan struct{}
	WaitErr error
}

// Start starts cmd with its output appended to logPath: a process
// started again (a restart) keeps the earlier one's log before its own.
func Start(name, logPath string, cmd *exec.Cmd) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, LogPath: logPath, Exited: make(chan struct{})}
	go func() {
		p.WaitErr = cmd.Wait()
		logFile.Close()
		close(p.Exited)
	}()
	return p, nil
}

// Stop sends SIGTERM and kills the process if it has not ended after grace.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.Exited:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited:
	case <-time.After(grace):
		fmt.Fprintf(os.Stderr, "%s did not stop within %s of SIGTERM; killing it\n", p.Name, grace)
		_ = p.Cmd.Process.Kill()
		<-p.Exited
	}
}

// Failed describes an early exit or a start-up failure with the end of the
// process's log.
func (p *Process) Failed(err error) error {
	select {
	case <-p.Exited:
		err = fmt.Errorf("%w: %s exited (%v)", err, p.Name, p.WaitErr)
	default:
	}
	return fmt.Errorf("%w\n%s", err, Tail(p.LogPath, 20))
}
