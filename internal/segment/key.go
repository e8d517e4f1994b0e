package segment

import "github.com/google/uuid"

// KeyPrefix is the bucket prefix under which segment objects live.
const KeyPrefix = "segments/"

// NewKey returns a fresh object key for a segment: KeyPrefix followed by a
// new UUID. Keys are never reused, so a retried or crashed flush can never
// overwrite an object a reader or the metadata store already refers to.
// Version 7 UUIDs sort by creation time, which keeps a bucket listing
// roughly chronological; if one cannot be made, a random version 4 is used.
func NewKey() string {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	return KeyPrefix + id.String()
}
