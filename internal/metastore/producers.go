package metastore

import (
	"fmt"
	"math"
)

// NextProducerEpoch decides InitProducerID for a known producer whose
// stored epoch is current, asked with epoch: the epoch it moves to, or
// fresh when its epochs are exhausted and it continues under a new id at
// epoch 0. An epoch other than the current one fails with
// ErrInvalidProducerEpoch (wrapped). Both backends decide by this rule.
func NextProducerEpoch(epoch, current int16) (next int16, fresh bool, err error) {
	if epoch != current {
		return 0, false, fmt.Errorf("epoch %d, current %d: %w", epoch, current, ErrInvalidProducerEpoch)
	}
	if current == math.MaxInt16 {
		return 0, true, nil
	}
	return current + 1, false, nil
}
