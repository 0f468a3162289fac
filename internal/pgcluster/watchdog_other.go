//go:build !unix

package pgcluster

type watchdog struct{}

func (c *Cluster) startWatchdog() error { return nil }

func (d *watchdog) release() {}
