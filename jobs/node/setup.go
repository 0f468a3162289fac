package node

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream objects pgrollup uses.
const (
	StreamName    = "PGROLLUP_BUILDS"
	SubjectPrefix = "pgrollup.builds."
	ConsumerName  = "pgrollup-builders"
	CatalogBucket = "pgrollup_catalog"
)

// DedupWindow is how long JetStream remembers a job's message id: the same due build
// published by several proxies within it is queued once.
const DedupWindow = 15 * time.Minute

// Setup creates (or updates) the build stream and the catalog bucket.
func Setup(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, jetstream.KeyValue, error) {
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "pgrollup build jobs",
		Subjects:    []string{SubjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  DedupWindow,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("build stream: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      CatalogBucket,
		Description: "pgrollup catalog: one rollup.State per rollup definition",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("catalog bucket: %w", err)
	}
	return stream, kv, nil
}
