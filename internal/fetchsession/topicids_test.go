package fetchsession_test

import (
	"errors"
	"testing"

	"github.com/floe-io/floe/internal/fetchsession"
)

// TestTopicIDUsage: a session keeps the kind of topic naming it was made
// with (names before Fetch v13, IDs from v13). An incremental fetch of the
// other kind is ErrTopicIDUsage (FETCH_SESSION_TOPIC_ID_ERROR) and leaves
// the session as it was, epoch included, as Kafka's FetchManager does.
func TestTopicIDUsage(t *testing.T) {
	for _, made := range []bool{false, true} {
		c := fetchsession.New(fetchsession.Options{})
		parts := []fetchsession.Partition{{Key: fetchsession.Key{Topic: "t", Partition: 0}}}
		f, err := c.Begin(fetchsession.Request{Conn: 1, Epoch: fetchsession.NewSession, Partitions: parts, TopicIDs: made})
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := c.Finish(f, []fetchsession.Result{{HighWatermark: 1}})
		if err != nil || id == 0 {
			t.Fatalf("no session: %d, %v", id, err)
		}
		other := fetchsession.Request{Conn: 1, SessionID: id, Epoch: 1, TopicIDs: !made,
			Partitions: []fetchsession.Partition{{Key: fetchsession.Key{Topic: "u", Partition: 0}}}}
		if _, err := c.Begin(other); !errors.Is(err, fetchsession.ErrTopicIDUsage) {
			t.Fatalf("made with ids=%v, incremental with ids=%v: %v, want ErrTopicIDUsage", made, !made, err)
		}
		// Unchanged: the same epoch, and only the session's partition.
		f, err = c.Begin(fetchsession.Request{Conn: 1, SessionID: id, Epoch: 1, TopicIDs: made})
		if err != nil {
			t.Fatalf("the session's own kind after the error: %v", err)
		}
		if len(f.Partitions) != 1 || f.Partitions[0].Topic != "t" {
			t.Fatalf("session partitions %+v", f.Partitions)
		}
	}
}
