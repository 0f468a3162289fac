package rollup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgrollup/pgrollup/config"
)

// Storage holds rollup files under slash-separated keys such as
// "orders_daily/1a2b3c4d5e6f7a8b/v20240101T000000Z-1a2b/part-20240101T000000Z.parquet".
type Storage interface {
	// Put stores the content of r under key, replacing any previous object; the object
	// becomes visible whole or not at all.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Open returns the object's content. A missing key yields an error wrapping fs.ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the objects whose keys start with prefix.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the object; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the storage for logs and errors (never with credentials).
	String() string
}

// Object is one stored object as List reports it.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag is the service's entity tag (S3), which changes when the object is
	// replaced; empty for file storage.
	ETag string
}

// Stat returns the object stored under key as List reports it; a missing key
// yields an error wrapping fs.ErrNotExist.
func Stat(ctx context.Context, s Storage, key string) (Object, error) {
	objs, err := s.List(ctx, key)
	if err != nil {
		return Object{}, err
	}
	for _, o := range objs {
		if o.Key == key {
			return o, nil
		}
	}
	return Object{}, fmt.Errorf("%s/%s: %w", s, key, fs.ErrNotExist)
}

// OpenStorage returns the storage named by cfg.URL: file://DIR or s3://BUCKET/PREFIX.
func OpenStorage(ctx context.Context, cfg config.Storage) (Storage, error) {
	switch {
	case strings.HasPrefix(cfg.URL, "file://"):
		dir, _ := cfg.LocalDir()
		return NewFileStorage(dir)
	case strings.HasPrefix(cfg.URL, "s3://"):
		bucket, prefix, _ := cfg.S3Location()
		return NewS3Storage(ctx, S3Options{
			Bucket: bucket, Prefix: prefix, Endpoint: cfg.S3.Endpoint, Region: cfg.S3.Region,
			AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey, ForcePathStyle: cfg.S3.ForcePathStyle,
		})
	}
	return nil, fmt.Errorf("storage %q: want file://DIR or s3://BUCKET/PREFIX", cfg.URL)
}

// FileStorage keeps objects as files under a local directory.
type FileStorage struct {
	dir string
}

// NewFileStorage returns storage rooted at dir, creating it if needed.
func NewFileStorage(dir string) (*FileStorage, error) {
	if dir == "" {
		return nil, errors.New("file storage: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("file storage: %w", err)
	}
	return &FileStorage{dir: dir}, nil
}

// String implements Storage.
func (s *FileStorage) String() string { return "file://" + filepath.ToSlash(s.dir) }

// Dir is the root directory.
func (s *FileStorage) Dir() string { return s.dir }

func (s *FileStorage) path(key string) (string, error) {
	clean := path.Clean("/" + key)
	if key == "" || clean != "/"+key {
		return "", fmt.Errorf("file storage: invalid key %q", key)
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Put implements Storage. It writes a temporary file and renames it into place, so
// readers never see a partial file.
func (s *FileStorage) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this finds nothing
	n, err := io.Copy(f, readerWithContext{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("wrote %d bytes, want %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Open implements Storage.
func (s *FileStorage) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return f, nil
}

// List implements Storage.
func (s *FileStorage) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		out = append(out, Object{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return out, nil
}

// Delete implements Storage; it also removes directories the deletion left empty.
func (s *FileStorage) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	for dir := filepath.Dir(p); dir != s.dir && strings.HasPrefix(dir, s.dir); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty
		}
	}
	return nil
}

// readerWithContext stops a copy when ctx ends.
type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
