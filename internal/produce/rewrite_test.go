package produce_test

import (
	"testing"

	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/recordbatch"
)

func TestTopicRewrite(t *testing.T) {
	for _, tc := range []struct {
		configs map[string]string
		want    produce.Rewrite
	}{
		{nil, produce.Rewrite{Levels: recordbatch.DefaultLevels}},
		{map[string]string{"compression.type": "producer"}, produce.Rewrite{Levels: recordbatch.DefaultLevels}},
		{map[string]string{"compression.type": "uncompressed"}, produce.Rewrite{Recompress: true, Codec: recordbatch.None, Levels: recordbatch.DefaultLevels}},
		{map[string]string{"compression.type": "zstd", "compression.zstd.level": "19"},
			produce.Rewrite{Recompress: true, Codec: recordbatch.Zstd, Levels: recordbatch.Levels{Gzip: -1, LZ4: 9, Zstd: 19}}},
		{map[string]string{"compression.type": "gzip", "compression.gzip.level": " 1"},
			produce.Rewrite{Recompress: true, Codec: recordbatch.Gzip, Levels: recordbatch.Levels{Gzip: 1, LZ4: 9, Zstd: 3}}},
		{map[string]string{"message.timestamp.type": "LogAppendTime"}, produce.Rewrite{LogAppendTime: true, Levels: recordbatch.DefaultLevels}},
	} {
		if got := produce.TopicRewrite(tc.configs); got != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.configs, got, tc.want)
		}
	}
}

// TestRewriteApply: a batch of the topic's codec is stored as it came;
// one of another codec is recompressed; LogAppendTime stamps it, and
// AppendTime reports the stamp.
func TestRewriteApply(t *testing.T) {
	rec := recordbatch.Record{Timestamp: 5, Key: []byte("k"), Value: []byte("v")}
	zstdBatch := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.Zstd}, rec)
	lz4Batch := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.LZ4}, rec)
	rw := produce.TopicRewrite(map[string]string{"compression.type": "zstd"})
	h, _ := recordbatch.Validate(zstdBatch)
	if out, err := rw.Apply(zstdBatch, h, 0); err != nil || &out[0] != &zstdBatch[0] {
		t.Errorf("same codec: err %v, copied %v", err, &out[0] != &zstdBatch[0])
	}
	h, _ = recordbatch.Validate(lz4Batch)
	out, err := rw.Apply(lz4Batch, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	if oh, err := recordbatch.Validate(out); err != nil || oh.Compression() != recordbatch.Zstd {
		t.Errorf("recompressed: %+v, %v", oh, err)
	}
	if rw.AppendTime([][]byte{out}) != -1 {
		t.Error("CreateTime topic reports an append time")
	}
	la := produce.TopicRewrite(map[string]string{"message.timestamp.type": "LogAppendTime"})
	out, err = la.Apply(lz4Batch, h, 777)
	if err != nil {
		t.Fatal(err)
	}
	if got := la.AppendTime([][]byte{out}); got != 777 {
		t.Errorf("append time %d, want 777", got)
	}
}
