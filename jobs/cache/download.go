package cache

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/pgrollup/pgrollup/rollup"
)

// downloadTimeout bounds one download, so that a stalled connection does not
// keep the queries waiting for the file forever.
const downloadTimeout = 10 * time.Minute

// download fetches e's object into the cache.
func (c *Cache) download(e *cacheEntry) {
	defer c.tasks.Done()
	ctx, cancel := context.WithTimeout(c.life, downloadTimeout)
	defer cancel()
	started := time.Now()
	size, err := c.fetch(ctx, e.key, e.path)
	var fe *rollup.FileError
	if errors.As(err, &fe) {
		// Before the waiters learn of the failure: a statement that falls back
		// because of the file finds its version out of service already.
		c.o.Integrity.Report(ctx, fe)
	}
	c.mu.Lock()
	if err == nil && e.doomed {
		// Its version was taken out of service during the download.
		_ = os.Remove(e.path)
		err = fmt.Errorf("download %s: its version was taken out of service", e.key)
	}
	if err != nil {
		// Forget the entry so that the next use tries again.
		delete(c.entries, e.name)
		e.err = err
		c.stats.Failures++
	} else {
		e.size = size
		e.elem = c.lru.PushFront(e)
		c.bytes += size
		c.stats.Downloads++
		c.evictLocked()
	}
	close(e.ready)
	c.mu.Unlock()
	if err != nil {
		c.o.Log.Warn("cache download failed", "key", e.key, "err", err)
	} else {
		c.o.Log.Debug("cache download", "key", e.key, "bytes", size, "elapsed", time.Since(started).Round(time.Millisecond))
	}
}

// parquetMagic ends every complete Parquet file.
var parquetMagic = []byte("PAR1")

// fetch copies an object to path through a temporary file, so that a file
// at path is always whole, and checks it against what its build recorded.
// An object that storage does not have, or whose bytes are not the recorded
// ones, is a *rollup.FileError; a failure to reach storage is not.
func (c *Cache) fetch(ctx context.Context, key, dst string) (int64, error) {
	want, known := c.o.Integrity.Expect(ctx, key)
	r, err := c.o.Storage.Open(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, &rollup.FileError{Key: key, Kind: rollup.FileMissing, Err: err}
	}
	if err != nil {
		return 0, err
	}
	defer r.Close()
	f, err := os.CreateTemp(c.dir, ".download-*")
	if err != nil {
		return 0, fmt.Errorf("cache: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // finds nothing after the rename
	h := rollup.Hasher()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil && known {
		err = want.Check(n, hex.EncodeToString(h.Sum(nil)))
	}
	if err == nil && (!known || want.SHA256 == "") {
		// Nothing recorded to compare with: at least the whole file must be there.
		if err = checkParquetTail(f, n); err != nil {
			err = &rollup.FileError{Key: key, Kind: rollup.FileRead, Err: err}
		}
	}
	if err == nil {
		// A crash must not leave a short file under the final name.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		return 0, fmt.Errorf("download %s/%s: %w", c.o.Storage, key, err)
	}
	return n, nil
}

// checkParquetTail rejects a download that is not a whole Parquet file (a
// cut connection that the storage client did not report).
func checkParquetTail(f *os.File, size int64) error {
	if size < 8 {
		return fmt.Errorf("%d bytes is not a Parquet file", size)
	}
	tail := make([]byte, 4)
	if _, err := f.ReadAt(tail, size-4); err != nil {
		return err
	}
	if !bytes.Equal(tail, parquetMagic) {
		return errors.New("not a whole Parquet file (no PAR1 at its end)")
	}
	return nil
}
