// Package localdir is an objstore.Bucket kept in a directory of the local
// file system: one file per object. It backs `floe playground`, the tests,
// and single-machine deployments.
//
// It must never let a key escape the bucket directory, and never let a
// reader see a partly written object: every Put writes a temporary file
// under .tmp/, fsyncs it, renames it into place and fsyncs the directory.
//
// Limits of the mapping from keys to paths: a key cannot be both an object
// and a "directory" of other objects ("a" and "a/b"), because a path
// cannot be both a file and a directory. Floe's own keys never do this.
// Directories left empty by Delete are kept.
package localdir

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/floe-io/floe/internal/objstore"
)

// tmpDir is the directory under the bucket root that holds Puts in
// progress. Keys whose first element is tmpDir are rejected.
const tmpDir = ".tmp"

// staleTmpAge is how old a temporary file must be before Open removes it
// as the leftover of a crashed Put.
const staleTmpAge = time.Hour

// Bucket is a bucket kept in a local directory. It is safe for concurrent
// use, including by several processes sharing the directory.
type Bucket struct {
	root string
	tmp  string
}

var _ objstore.Bucket = (*Bucket)(nil)

// Open returns the bucket kept in dir, creating dir if needed.
func Open(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, errors.New("open local bucket: empty directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open local bucket %s: %w", dir, err)
	}
	tmp := filepath.Join(root, tmpDir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("open local bucket %s: %w", root, err)
	}
	removeStaleTmp(tmp, time.Now().Add(-staleTmpAge))
	return &Bucket{root: root, tmp: tmp}, nil
}

// Dir returns the bucket's root directory.
func (b *Bucket) Dir() string { return b.root }

// removeStaleTmp deletes temporary files older than cutoff: leftovers of
// Puts that crashed. Younger files may belong to a Put still running in
// another process. Failures are ignored; the files only waste space.
func removeStaleTmp(tmp string, cutoff time.Time) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) {
			continue
		}
		_ = os.Remove(filepath.Join(tmp, e.Name()))
	}
}

// ValidateKey reports whether key can name an object in a local bucket:
// non-empty, relative, '/'-separated, with no empty, "." or ".." elements,
// no NUL or backslash, and not inside the bucket's temporary directory.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("key %q is absolute", key)
	case strings.ContainsRune(key, 0):
		return fmt.Errorf("key %q contains NUL", key)
	case strings.ContainsRune(key, '\\'):
		// A separator on Windows; rejected everywhere so that a bucket
		// directory means the same on every OS.
		return fmt.Errorf("key %q contains a backslash", key)
	}
	for i, elem := range strings.Split(key, "/") {
		switch {
		case elem == "":
			return fmt.Errorf("key %q has an empty path element", key)
		case elem == "." || elem == "..":
			return fmt.Errorf("key %q has a %q path element", key, elem)
		case i == 0 && elem == tmpDir:
			return fmt.Errorf("key %q is inside the reserved %s directory", key, tmpDir)
		}
	}
	return nil
}

func (b *Bucket) path(key string) string {
	return filepath.Join(b.root, filepath.FromSlash(key))
}

// Put stores data under key atomically.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := b.put(key, data); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (b *Bucket) put(key string, data []byte) (err error) {
	f, err := os.CreateTemp(b.tmp, "put-*")
	if err != nil {
		return err
	}
	tmpName := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	parent, err := b.mkdirs(path.Dir(key))
	if err != nil {
		return err
	}
	if err := os.Rename(tmpName, b.path(key)); err != nil {
		return err
	}
	return syncDir(parent)
}

// mkdirs creates the directories of the '/'-separated relative path rel
// under the root, fsyncing the parent of each one it creates so the new
// entry survives a crash. It returns the deepest directory.
func (b *Bucket) mkdirs(rel string) (string, error) {
	dir := b.root
	if rel == "." {
		return dir, nil
	}
	for _, elem := range strings.Split(rel, "/") {
		parent := dir
		dir = filepath.Join(dir, elem)
		err := os.Mkdir(dir, 0o755)
		switch {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return "", err
			}
		case errors.Is(err, fs.ErrExist):
			// Already there, or a file in the way; the rename reports the
			// latter.
		default:
			return "", err
		}
	}
	return dir, nil
}

// syncDir makes the directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// isNotFound reports whether err from opening a path means there is no
// object there: the path is missing, or one of its parents is a file.
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// GetRange returns exactly length bytes of key from offset; length < 0
// reads to the end.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, offset)
	}
	f, err := os.Open(b.path(key))
	if isNotFound(err) {
		return nil, fmt.Errorf("get %s: %w", key, objstore.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if !info.Mode().IsRegular() {
		// A directory holding other keys, not an object.
		return nil, fmt.Errorf("get %s: %w", key, objstore.ErrNotFound)
	}
	size := info.Size()
	if offset > size {
		return nil, fmt.Errorf("get %s: offset %d is past the end (size %d)", key, offset, size)
	}
	if length < 0 {
		length = size - offset
	}
	if length > size-offset {
		return nil, fmt.Errorf("get %s: range %d+%d is past the end (size %d)", key, offset, length, size)
	}
	buf := make([]byte, length)
	n, err := f.ReadAt(buf, offset)
	if int64(n) == length {
		// ReadAt may report io.EOF along with a full read of the tail.
		return buf, nil
	}
	if err == nil {
		err = errors.New("short read")
	}
	return nil, fmt.Errorf("get %s: read %d of %d bytes at %d: %w", key, n, length, offset, err)
}

// Delete removes key; a missing key is not an error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	p := b.path(key)
	info, err := os.Lstat(p)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if info.IsDir() {
		// Only a prefix of other keys; there is no object to delete.
		return nil
	}
	if err := os.Remove(p); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List calls fn for every object whose key starts with prefix, in lexical
// key order.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if err := b.list(ctx, b.root, "", prefix, fn); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return nil
}

// list visits the directory dir, whose key prefix is rel ("" for the root
// or "a/b/"). Walking each directory with its subdirectories sorted as
// "name/" yields keys in exact lexical order: every key below a directory
// starts with "name/", and a file name never contains '/'.
func (b *Bucket) list(ctx context.Context, dir, rel, prefix string, fn func(objstore.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if rel != "" && isNotFound(err) {
			return nil // removed while we walked
		}
		return err
	}
	type entry struct {
		name string // key element, with a trailing '/' for directories
		de   fs.DirEntry
	}
	sorted := make([]entry, 0, len(entries))
	for _, de := range entries {
		name := de.Name()
		if rel == "" && name == tmpDir {
			continue
		}
		if de.IsDir() {
			name += "/"
		}
		sorted = append(sorted, entry{name: name, de: de})
	}
	slices.SortFunc(sorted, func(x, y entry) int { return cmp.Compare(x.name, y.name) })

	for _, e := range sorted {
		key := rel + e.name
		if e.de.IsDir() {
			// Descend only if keys below could start with prefix.
			if strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key) {
				if err := b.list(ctx, filepath.Join(dir, e.de.Name()), key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) || !e.de.Type().IsRegular() {
			continue
		}
		info, err := e.de.Info()
		if isNotFound(err) {
			continue // deleted while we walked
		}
		if err != nil {
			return err
		}
		if err := fn(objstore.ObjectInfo{Key: key, Size: info.Size(), Modified: info.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}
