package rollup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// Kinds of broken rollup files, as FileError.Kind and the kind label of
// pgrollup_rollup_file_errors_total name them.
const (
	// FileMissing: storage has no object under the file's key.
	FileMissing = "missing"
	// FileChecksum: the object's size, SHA-256 or ETag differs from what the
	// build recorded.
	FileChecksum = "checksum"
	// FileRead: the object's content cannot be read as the Parquet file the
	// build wrote (a disk's read error, or DuckDB rejecting a file for which
	// no checksum was recorded).
	FileRead = "read"
)

// FileKinds lists the kinds of FileError.
var FileKinds = []string{FileMissing, FileChecksum, FileRead}

// FileError is a rollup file that cannot serve queries because of what is (or
// is not) in storage, as opposed to storage being unreachable for a while: a
// version with such a file must be taken out of service and rebuilt.
type FileError struct {
	Key  string // storage key
	Kind string // FileMissing, FileChecksum or FileRead
	Err  error
}

func (e *FileError) Error() string {
	what := map[string]string{
		FileMissing:  "is missing from storage",
		FileChecksum: "does not match its checksum",
		FileRead:     "cannot be read",
	}[e.Kind]
	if what == "" {
		what = e.Kind
	}
	return fmt.Sprintf("rollup file %s %s: %v", e.Key, what, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Check compares a file's size and SHA-256 (hex) with what the build recorded;
// a partition built before checksums were recorded has no SHA-256, and then
// only the size is compared. The error is a *FileError.
func (p Partition) Check(size int64, sha string) error {
	if size != p.Bytes {
		return &FileError{Key: p.File, Kind: FileChecksum, Err: fmt.Errorf("%d bytes, the build stored %d", size, p.Bytes)}
	}
	if p.SHA256 != "" && !strings.EqualFold(sha, p.SHA256) {
		return &FileError{Key: p.File, Kind: FileChecksum, Err: fmt.Errorf("SHA-256 %s, the build stored %s", sha, p.SHA256)}
	}
	return nil
}

// Hasher computes the SHA-256 that Partition.SHA256 records.
func Hasher() hash.Hash { return sha256.New() }

// HashFile returns the size and SHA-256 (hex) of a local file.
func HashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// KeyRollup returns the rollup name and identity a storage key of the
// builder's layout (NAME/IDENTITY/VERSION/FILE) belongs to.
func KeyRollup(key string) (name, identity string, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}
