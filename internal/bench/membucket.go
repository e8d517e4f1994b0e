package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/objstore"
)

// memBucket is the bench's simulated cloud bucket: objects in memory, no
// disk write and no fsync, so that behind a latencyBucket a request takes
// the injected delay and nothing else. A local directory under the same
// wrapper adds its write and fsync to every PUT (on a loaded disk, tens of
// milliseconds), which is not what a cloud bucket's latency looks like.
//
// It holds every byte the run writes, so it suits the bench's minutes of
// load, not a playground. Its contract is objstore.Bucket's: Put copies
// the data, GetRange returns a copy, List is in key order.
//
// The objects' bytes live outside the Go heap (offHeapClone), as a real
// bucket's do: on the heap, the 256 MiB of the catch-up preset's history
// raised the garbage collector's goal by as much, and the agent's reads
// went to fresh pages from the system instead of reusing its own (the
// catch-up read at 240–330 MiB/s, at 500–530 with GOGC=50, 430–490 on the
// local directory; docs/benchmarks.md).
type memBucket struct {
	mu      sync.RWMutex
	objects map[string]memObject
}

type memObject struct {
	data     []byte // off the heap: valid until free
	free     func()
	modified time.Time
}

var _ objstore.Bucket = (*memBucket)(nil)

func newMemBucket() *memBucket { return &memBucket{objects: map[string]memObject{}} }

func (m *memBucket) Put(ctx context.Context, key string, data []byte) error {
	if key == "" {
		return fmt.Errorf("put: empty key")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	b, free, err := offHeapClone(data)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.objects[key]; ok {
		old.free()
	}
	m.objects[key] = memObject{data: b, free: free, modified: time.Now()}
	return nil
}

func (m *memBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock() // until copied: Delete and Put free the bytes
	obj, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, objstore.ErrNotFound)
	}
	size := int64(len(obj.data))
	end := offset + length
	if length < 0 {
		end = size
	}
	if offset < 0 || offset > size || end > size || end < offset {
		return nil, fmt.Errorf("get %s: range %d+%d outside a %d-byte object", key, offset, length, size)
	}
	return slices.Clone(obj.data[offset:end:end]), nil
}

func (m *memBucket) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if obj, ok := m.objects[key]; ok {
		obj.free()
		delete(m.objects, key)
	}
	return nil
}

// release frees every object's bytes; the bucket is empty after it.
func (m *memBucket) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, obj := range m.objects {
		obj.free()
		delete(m.objects, k)
	}
}

func (m *memBucket) List(ctx context.Context, prefix string, fn func(objstore.ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	m.mu.RLock()
	infos := make([]objstore.ObjectInfo, 0, len(m.objects))
	for k, o := range m.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, objstore.ObjectInfo{Key: k, Size: int64(len(o.data)), Modified: o.modified})
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(infos, func(a, b objstore.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}
