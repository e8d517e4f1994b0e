package protocol_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The records of a fetch response come from recycled buffers, given back
// once the response is encoded (Handler.ReleaseResponse): reading the
// same history over and over, on several connections at once, always
// returns the same bytes, so no buffer is reused while a response still
// holds it and no recycled byte leaks into an answer.
func TestFetchRecycledBuffersKeepAnswersIntact(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	// Batches large enough that their reads use pooled buffers (64 KiB
	// and up).
	for p := range int32(2) {
		for i := range 3 {
			f.produce("t", p, 6000+1000*i, int64(1000*i))
		}
	}
	want := make([][]byte, 2)
	for p := range int32(2) {
		resp := do[*kmsg.FetchResponse](f, 12, fetchRequest("t", p, 0))
		want[p] = resp.Topics[0].Partitions[0].RecordBatches
		if len(want[p]) < 64<<10 {
			t.Fatalf("partition %d: %d bytes of records, want a read of pooled size", p, len(want[p]))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for c := range 4 {
		cl := dial(t, f)
		p := int32(c % 2)
		wg.Go(func() {
			for range 25 {
				req := fetchRequest("t", p, 0)
				req.SetVersion(12)
				resp, ok := cl.Do(req).(*kmsg.FetchResponse)
				if !ok {
					errs <- "not a fetch response"
					return
				}
				if got := resp.Topics[0].Partitions[0].RecordBatches; !bytes.Equal(got, want[p]) {
					errs <- "a fetch of the same history answered different bytes"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
