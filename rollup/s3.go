package rollup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3Options configures S3Storage.
type S3Options struct {
	Bucket string
	Prefix string // key prefix without leading or trailing slash; may be empty
	// Endpoint is the URL of an S3-compatible service (MinIO, GCS through HMAC keys);
	// empty for AWS.
	Endpoint string
	Region   string
	// AccessKey and SecretKey are static credentials; both empty use the SDK's default
	// chain (environment, shared files, instance role).
	AccessKey, SecretKey string
	// Anonymous sends unsigned requests (public buckets).
	Anonymous bool
	// ForcePathStyle addresses buckets as ENDPOINT/BUCKET, as MinIO needs.
	ForcePathStyle bool
	// PartSize is the multipart upload part size; 0 uses the SDK's default (5 MiB).
	PartSize int64
}

// S3Storage keeps objects in an S3 bucket under a prefix.
type S3Storage struct {
	client *s3.Client
	//lint:ignore SA1019 the agreed dependency set pins feature/s3/manager; transfermanager is not in go.mod
	uploader *manager.Uploader
	bucket   string
	prefix   string
}

// NewS3Storage returns storage in the bucket. It does not contact the service.
func NewS3Storage(ctx context.Context, o S3Options) (*S3Storage, error) {
	if o.Bucket == "" {
		return nil, errors.New("s3 storage: no bucket (want s3://BUCKET/PREFIX)")
	}
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	switch {
	case o.Anonymous:
		opts = append(opts, awsconfig.WithCredentialsProvider(aws.AnonymousCredentials{}))
	case o.AccessKey != "" || o.SecretKey != "":
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 storage: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.ForcePathStyle
		// S3-compatible services do not all accept the SDK's newer default checksums.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	//lint:ignore SA1019 see S3Storage.uploader
	up := manager.NewUploader(client, func(u *manager.Uploader) {
		if o.PartSize > 0 {
			u.PartSize = o.PartSize
		}
	})
	return &S3Storage{client: client, uploader: up, bucket: o.Bucket, prefix: strings.Trim(o.Prefix, "/")}, nil
}

// String implements Storage.
func (s *S3Storage) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

func (s *S3Storage) key(k string) string {
	if s.prefix == "" {
		return k
	}
	return s.prefix + "/" + k
}

// Put implements Storage with a multipart upload for large files; S3 makes an object
// visible only once the whole upload completes.
func (s *S3Storage) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	in := &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), Body: r}
	if size >= 0 && size < manager.DefaultUploadPartSize {
		in.ContentLength = aws.Int64(size)
	}
	//lint:ignore SA1019 see S3Storage.uploader
	if _, err := s.uploader.Upload(ctx, in); err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

// Open implements Storage.
func (s *S3Storage) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(key))})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return out.Body, nil
}

// List implements Storage.
func (s *S3Storage) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.key(prefix))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if s.prefix != "" {
				k = strings.TrimPrefix(k, s.prefix+"/")
			}
			out = append(out, Object{Key: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified),
				ETag: strings.Trim(aws.ToString(o.ETag), `"`)})
		}
	}
	return out, nil
}

// Delete implements Storage.
func (s *S3Storage) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(key))})
	if err != nil {
		return s.wrap("delete", key, err)
	}
	return nil
}

// wrap turns the service's error codes into messages that say what to fix. The SDK's
// errors carry no credentials, only codes, request ids and the resource.
func (s *S3Storage) wrap(op, key string, err error) error {
	where := s.String() + "/" + key
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("%s %s: bucket %q does not exist (create it, or fix storage.url): %w", op, where, s.bucket, err)
		case "AccessDenied", "Forbidden", "AllAccessDisabled":
			return fmt.Errorf("%s %s: access denied: the credentials in storage.s3 lack permission to %s objects in bucket %q: %w", op, where, op, s.bucket, err)
		case "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return fmt.Errorf("%s %s: the service rejected the credentials in storage.s3 (%s): %w", op, where, apiErr.ErrorCode(), err)
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%s %s: %w", op, where, fs.ErrNotExist)
		}
	}
	return fmt.Errorf("%s %s: %w", op, where, err)
}
