package cache

import "unsafe"

// SharesMemory reports whether blocks a and b of key are cached as
// consecutive pieces of one buffer (the blocks of a read-ahead run).
func (c *Blocks) SharesMemory(key string, a, b int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ea, oka := c.blocks[blockID{key, a}]
	eb, okb := c.blocks[blockID{key, b}]
	if !oka || !okb {
		return false
	}
	da, db := ea.Value.(*block).data, eb.Value.(*block).data
	return unsafe.Add(unsafe.Pointer(unsafe.SliceData(da)), len(da)) == unsafe.Pointer(unsafe.SliceData(db))
}
