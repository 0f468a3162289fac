package rollup

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgrollup/pgrollup/internal/minio"
)

func startMinIO(t *testing.T) *minio.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	srv, err := minio.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("S3 tests need MinIO: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func s3Storage(t *testing.T, srv *minio.Server, bucket, prefix string) *S3Storage {
	t.Helper()
	st, err := NewS3Storage(context.Background(), S3Options{
		Bucket: bucket, Prefix: prefix, Endpoint: srv.Endpoint, Region: minio.Region,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, ForcePathStyle: true, PartSize: 5 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStorage runs the same contract against file:// and s3:// (MinIO).
func TestStorage(t *testing.T) {
	srv := startMinIO(t)
	fileSt, err := NewFileStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []Storage{fileSt, s3Storage(t, srv, srv.Bucket, "some/prefix")} {
		t.Run(strings.SplitN(st.String(), ":", 2)[0], func(t *testing.T) {
			ctx := context.Background()
			big := make([]byte, 12<<20+123) // three multipart parts on S3
			if _, err := rand.Read(big); err != nil {
				t.Fatal(err)
			}
			objs := map[string][]byte{"a/v1/part-1.parquet": []byte("small"), "a/v1/part-2.parquet": big, "b/x.parquet": {}}
			for k, v := range objs {
				if err := st.Put(ctx, k, bytes.NewReader(v), int64(len(v))); err != nil {
					t.Fatalf("put %s: %v", k, err)
				}
			}
			for k, v := range objs {
				r, err := st.Open(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, v) {
					t.Fatalf("read %s: %d bytes, want %d (%v)", k, len(got), len(v), err)
				}
			}
			list, err := st.List(ctx, "a/")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].Key != "a/v1/part-1.parquet" && list[1].Key != "a/v1/part-1.parquet" {
				t.Fatalf("list a/: %+v", list)
			}
			for _, o := range list {
				if o.Size != int64(len(objs[o.Key])) || o.ModTime.IsZero() {
					t.Errorf("list: %+v", o)
				}
				// S3 says when an object was replaced; file storage has no tag.
				if _, isS3 := st.(*S3Storage); isS3 == (o.ETag == "") {
					t.Errorf("list: ETag %q from %s", o.ETag, st)
				}
			}
			if err := st.Delete(ctx, "a/v1/part-1.parquet"); err != nil {
				t.Fatal(err)
			}
			if err := st.Delete(ctx, "a/v1/part-1.parquet"); err != nil {
				t.Fatalf("deleting a missing key: %v", err)
			}
			if _, err := st.Open(ctx, "a/v1/part-1.parquet"); err == nil {
				t.Fatal("deleted object still opens")
			}
			if list, _ = st.List(ctx, ""); len(list) != 2 {
				t.Fatalf("list all after delete: %+v", list)
			}
		})
	}
}

// TestS3Errors: a missing bucket and a denied PutObject say so.
func TestS3Errors(t *testing.T) {
	ctx := context.Background()
	srv := startMinIO(t)
	missing := s3Storage(t, srv, "no-such-bucket", "")
	err := missing.Put(ctx, "k", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Fatalf("missing bucket: %v", err)
	}
	// Anonymous clients may read the bucket but not write to it.
	client, err := srv.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::%[1]s","arn:aws:s3:::%[1]s/*"]}]}`, srv.Bucket)
	if _, err := client.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(srv.Bucket), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	anon, err := NewS3Storage(ctx, S3Options{Bucket: srv.Bucket, Endpoint: srv.Endpoint, Anonymous: true, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.List(ctx, ""); err != nil {
		t.Fatalf("anonymous list should be allowed: %v", err)
	}
	err = anon.Put(ctx, "k", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("denied put: %v", err)
	}
	if strings.Contains(err.Error(), srv.SecretKey) {
		t.Fatal("error shows the secret key")
	}
	wrong, err := NewS3Storage(ctx, S3Options{Bucket: srv.Bucket, Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: "wrong-secret-key", ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.Put(ctx, "k", strings.NewReader("x"), 1); err == nil || !strings.Contains(err.Error(), "rejected the credentials") || strings.Contains(err.Error(), "wrong-secret-key") {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestBuildToS3 builds a partitioned rollup straight into MinIO and compares it with
// Postgres; a build into a missing bucket fails without a version.
func TestBuildToS3(t *testing.T) {
	ctx := context.Background()
	srv := startMinIO(t)
	dsn := newDatabase(t, "s3_build", shopSchema...)
	cfg := loadConfig(t, dsn, t.TempDir(), shopTables+`
rollups:
  - name: monthly
    table: public.orders
    dimensions: [status, customers.country]
    time_dimension: created_at
    granularity: day
    measures: [sum(amount), count(*)]
    partition_granularity: month
`)
	def := mustDefinition(t, cfg, "monthly")
	st := s3Storage(t, srv, srv.Bucket, "rollups")
	b := &Builder{DSN: dsn, Storage: st, TempDir: t.TempDir()}
	v, err := b.Build(ctx, Request{Def: def, VersionID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	// Copy the objects down and compare them like local files.
	local, err := NewFileStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Partitions {
		r, err := st.Open(ctx, p.File)
		if err != nil {
			t.Fatal(err)
		}
		err = local.Put(ctx, p.File, r, p.Bytes)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The version records what storage holds: size, SHA-256 and ETag.
		size, sum, err := HashFile(filepath.Join(local.Dir(), p.File))
		if err != nil || p.Check(size, sum) != nil || p.SHA256 == "" {
			t.Errorf("%s: %d bytes, SHA-256 %s; recorded %d, %q (%v)", p.File, size, sum, p.Bytes, p.SHA256, err)
		}
		if o, err := Stat(ctx, st, p.File); err != nil || p.ETag == "" || o.ETag != p.ETag {
			t.Errorf("%s: recorded ETag %q, storage lists %+v (%v)", p.File, p.ETag, o, err)
		}
	}
	compareWithPostgres(t, dsn, "UTC", `SELECT o.status, c.country, date_trunc('day', o.created_at), sum(o.amount), count(*)
		FROM orders o LEFT JOIN customers c ON c.id = o.customer_id GROUP BY 1, 2, 3`, local.Dir(), v,
		map[string]string{"d0": "VARCHAR", "d1": "VARCHAR", "t": "TIMESTAMP WITH TIME ZONE", "m0_sum": "DECIMAL(38,2)", "m1_count": "BIGINT"})

	bad := &Builder{DSN: dsn, Storage: s3Storage(t, srv, "missing-bucket", ""), TempDir: t.TempDir()}
	if v, err := bad.Build(ctx, Request{Def: def, VersionID: "v2"}); err == nil || v != nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("build into a missing bucket: %v, %v", v, err)
	}
}
