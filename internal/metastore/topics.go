package metastore

import (
	"errors"
	"fmt"
)

// Rules of the TopicStore shared by the backends, so that they decide
// alike; they do no I/O.

// CheckTopicSpec validates a CreateTopic request: a name, and at least
// one partition (ErrInvalidPartitions, wrapped).
func CheckTopicSpec(spec TopicSpec) error {
	if spec.Name == "" {
		return errors.New("empty name")
	}
	if spec.Partitions < 1 {
		return fmt.Errorf("%d partitions: %w", spec.Partitions, ErrInvalidPartitions)
	}
	return nil
}

// CheckPartitionIncrease validates CreatePartitions of a topic that has
// current partitions: the count only grows (ErrInvalidPartitions,
// wrapped).
func CheckPartitionIncrease(current, total int32) error {
	if total <= current {
		return fmt.Errorf("%d partitions, want more than %d: %w", total, current, ErrInvalidPartitions)
	}
	return nil
}

// ApplyConfigChanges applies changes to a topic's explicit configs in
// order, a nil Value deleting the config, and returns them (a new map if
// configs is nil).
func ApplyConfigChanges(configs map[string]string, changes []ConfigChange) map[string]string {
	if configs == nil {
		configs = make(map[string]string)
	}
	for _, c := range changes {
		if c.Value == nil {
			delete(configs, c.Name)
		} else {
			configs[c.Name] = *c.Value
		}
	}
	return configs
}
