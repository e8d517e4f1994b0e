package protocol

// ApiVersions v0-v4.
//
// Versions come from the registry (see register). A request for a version
// above ours (or below 0) is answered at v0 with UNSUPPORTED_VERSION and,
// as Kafka answers it (KIP-511), only ApiVersions' own range, so that the
// client asks again at the highest version we know and learns the other
// ranges and the features from that answer. (franz-go takes a v0 answer
// that lists every API as final, and would never see the features.)
//
// From v3 the client names its software (KIP-511); Kafka answers
// INVALID_REQUEST when the name or version is not made of letters,
// digits, '.' and '-', starting and ending with a letter or digit, and so
// do we.
//
// v3+ also lists feature levels (KIP-584), as a Kafka 4 broker of a new
// cluster does: supported group.version 0-1 and transaction.version 0-2,
// and the finalized levels, group.version 1 (the consumer rebalance
// protocol, KIP-848, which ConsumerGroupHeartbeat serves) and
// transaction.version Config.TransactionVersion (2 unless pinned lower).
// Clients decide on the finalized level: franz-go and the Java client use
// transaction version 2 (KIP-890 part 2: Produce v12 without
// AddPartitionsToTxn, TxnOffsetCommit v5 without AddOffsetsToTxn, EndTxn
// v5) only when transaction.version is finalized at 2. As in Kafka, the
// request versions are advertised whatever the level, and each request is
// served by its own version's semantics. Kafka leaves a feature at level
// 0 out of the finalized list. The finalized levels are cluster state in
// the metadata store (internal/features; UpdateFeatures changes them), the
// agents' flags being a new cluster's levels; the epoch counts their
// updates (Kafka's is the offset of their record in its metadata log), so
// it grows with every change, as clients that keep the features of the
// highest epoch they saw (the Java client) need. With a store that does
// not keep them, each agent finalizes its flags and the epoch is the
// transaction.version level.
//
// The APIs a feature gates are listed whatever its level, as Kafka's
// broker lists them (DefaultApiVersionManager builds the list from the
// listener's APIs, the unstable-versions setting and client telemetry,
// never from finalized features): at group.version 0 ConsumerGroupHeartbeat
// and ConsumerGroupDescribe stay listed and answer UNSUPPORTED_VERSION
// (consumerProtocolEnabled), and clients that try them fall back to the
// classic protocol (franz-go does). Leaving them out would also outlive
// the level on every open connection, since clients keep the list a
// connection was first answered.

import (
	"context"
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() { register(18, 0, 4, (*Handler).apiVersions) }

// Feature names and the highest levels Floe serves (KIP-584).
const (
	FeatureTransactionVersion = "transaction.version"
	FeatureGroupVersion       = "group.version"
	// MaxTransactionVersion is transaction version 2 (KIP-890 part 2):
	// every EndTxn bumps the producer epoch, and Produce and
	// TxnOffsetCommit add partitions and groups to the transaction
	// themselves.
	MaxTransactionVersion = 2
	// MaxGroupVersion is the consumer rebalance protocol (KIP-848).
	MaxGroupVersion = 1
)

// softwareNamePattern is what Kafka accepts as ClientSoftwareName and
// ClientSoftwareVersion (KIP-511).
var softwareNamePattern = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (h *Handler) apiVersions(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ApiVersionsRequest)
	resp := req.Req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if r.Version >= 3 && (!softwareNamePattern.MatchString(r.ClientSoftwareName) || !softwareNamePattern.MatchString(r.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return now(resp), nil
	}
	resp.ApiKeys = Supported()
	h.features(resp)
	return now(resp), nil
}

// features fills the feature levels of an ApiVersions response (sent from
// v3 on; kmsg leaves them out of older versions).
func (h *Handler) features(resp *kmsg.ApiVersionsResponse) {
	resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{
		{Name: FeatureGroupVersion, MinVersion: 0, MaxVersion: MaxGroupVersion},
		{Name: FeatureTransactionVersion, MinVersion: 0, MaxVersion: MaxTransactionVersion},
	}
	if h.cfg.Features != nil {
		f := h.cfg.Features.Finalized()
		resp.FinalizedFeaturesEpoch = f.Epoch
		for _, name := range []string{FeatureGroupVersion, FeatureTransactionVersion} {
			if l := f.Levels[name]; l > 0 {
				resp.FinalizedFeatures = append(resp.FinalizedFeatures,
					kmsg.ApiVersionsResponseFinalizedFeature{Name: name, MinVersionLevel: l, MaxVersionLevel: l})
			}
		}
		return
	}
	tv := h.transactionVersion()
	resp.FinalizedFeaturesEpoch = int64(tv)
	resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{
		{Name: FeatureGroupVersion, MinVersionLevel: MaxGroupVersion, MaxVersionLevel: MaxGroupVersion},
	}
	if tv > 0 {
		resp.FinalizedFeatures = append(resp.FinalizedFeatures,
			kmsg.ApiVersionsResponseFinalizedFeature{Name: FeatureTransactionVersion, MinVersionLevel: tv, MaxVersionLevel: tv})
	}
}

// finalizedLevels are the finalized levels of the features Floe knows:
// the cluster's (Config.Features), or this agent's flags.
func (h *Handler) finalizedLevels() map[string]int16 {
	if h.cfg.Features != nil {
		return h.cfg.Features.Finalized().Levels
	}
	return map[string]int16{FeatureGroupVersion: MaxGroupVersion, FeatureTransactionVersion: h.transactionVersion()}
}

// consumerProtocolEnabled reports group.version 1 finalized: Kafka
// answers ConsumerGroupHeartbeat and ConsumerGroupDescribe
// UNSUPPORTED_VERSION below it.
func (h *Handler) consumerProtocolEnabled() bool {
	return h.finalizedLevels()[FeatureGroupVersion] >= 1
}

// DefaultFeatureLevels are the levels a new cluster finalizes, from the
// agent's transaction.version setting (Config.TransactionVersion's
// meaning): group.version 1 and transaction.version 2 unless pinned.
func DefaultFeatureLevels(transactionVersion int16) map[string]int16 {
	return map[string]int16{FeatureGroupVersion: MaxGroupVersion, FeatureTransactionVersion: normalTransactionVersion(transactionVersion)}
}

// transactionVersion is the transaction.version level of this agent's
// flag.
func (h *Handler) transactionVersion() int16 {
	return normalTransactionVersion(h.cfg.TransactionVersion)
}

func normalTransactionVersion(v int16) int16 {
	switch {
	case v < 0:
		return 0
	case v == 0 || v > MaxTransactionVersion:
		return MaxTransactionVersion
	default:
		return v
	}
}

func unsupportedApiVersions() Reply {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	a := apis[wire.ApiVersionsKey]
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: a.key, MinVersion: a.min, MaxVersion: a.max}}
	return now(resp)
}
