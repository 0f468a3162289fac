package builds

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pgrollup/pgrollup/jobs/node"
	"github.com/pgrollup/pgrollup/rollup"
)

// Build reasons, as recorded in jobs and build records.
const (
	ReasonStartup    = "startup"
	ReasonEvery      = "every"
	ReasonCron       = "cron"
	ReasonRefreshKey = "refresh_key"
	ReasonManual     = "manual"
	// ReasonBrokenFile: a file of the active version was found missing, corrupt
	// or unreadable, which took the version out of service.
	ReasonBrokenFile = "broken_file"
	// ReasonMismatch: a hit checked against the warehouse disagreed with the
	// active version, which quarantined it (rollup.State.MarkQuarantined).
	ReasonMismatch = "verify_mismatch"
	// ReasonWindow: the refresh key did not change, but a clock-relative filter
	// now folds to another bound than the active version's: the window moved.
	ReasonWindow = "window"
)

// Job asks a worker to build a new version of one rollup definition. It carries the
// definition, so a worker builds exactly what the proxy that published it means, even
// while workers run an older or newer config.
type Job struct {
	// ID is the JetStream message id: JetStream drops a second job with the same id
	// published within node.DedupWindow.
	ID string `json:"id"`
	// Def is the definition to build, and Identity its hash as the
	// publisher computed it: a worker drops a job whose two disagree.
	Def      *rollup.Definition `json:"definition"`
	Identity string             `json:"identity"`
	// RefreshSQL is the refresh key's query, whose value the version records.
	RefreshSQL string `json:"refresh_sql,omitempty"`
	// Incremental builds only the partitions within UpdateWindow.
	Incremental  bool          `json:"incremental,omitempty"`
	UpdateWindow time.Duration `json:"update_window,omitempty"`
	// Reason is why the build is due (Reason*).
	Reason string `json:"reason"`
	// Due: any version whose build snapshot was taken at or after Due satisfies the job,
	// so a job that a newer build overtook is acked without building again.
	Due time.Time `json:"due"`
	// Queued is when the job was published.
	Queued time.Time `json:"queued"`
}

// publish queues a job. duplicate is true when JetStream already had a job with its id.
func publish(ctx context.Context, js jetstream.JetStream, job *Job) (duplicate bool, err error) {
	if job.Queued.IsZero() {
		job.Queued = time.Now().UTC()
	}
	b, err := json.Marshal(job)
	if err != nil {
		return false, fmt.Errorf("publish build %s: %w", job.Def.Name, err)
	}
	msg := &nats.Msg{Subject: node.SubjectPrefix + job.Def.Name, Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, job.ID)
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return false, fmt.Errorf("publish build %s: %w", job.Def.Name, err)
	}
	return ack.Duplicate, nil
}

// consumer creates or updates the durable consumer every worker pulls from.
func consumer(ctx context.Context, js jetstream.JetStream, ackWait time.Duration, maxDeliver int) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, node.StreamName, jetstream.ConsumerConfig{
		Durable:       node.ConsumerName,
		Description:   "pgrollup workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: 1000,
		FilterSubject: node.SubjectPrefix + ">",
	})
	if err != nil {
		return nil, fmt.Errorf("build consumer: %w", err)
	}
	return c, nil
}
