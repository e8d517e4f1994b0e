package bench

import "syscall"

// offHeapClone copies data into memory mapped outside the Go heap (see
// memBucket); free releases it.
func offHeapClone(data []byte) (b []byte, free func(), err error) {
	if len(data) == 0 {
		return []byte{}, func() {}, nil
	}
	b, err = syscall.Mmap(-1, 0, len(data), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	copy(b, data)
	return b, func() { syscall.Munmap(b) }, nil
}
