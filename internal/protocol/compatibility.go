package protocol

// The conformance table (docs/compatibility.md) is generated from the
// registry and the notes below, so that it cannot drift: the versions come
// from register, and TestCompatibilityDoc fails when the file, the
// registry and these notes disagree. Regenerate it with
//
//	go run ./cmd/floe docs compatibility > docs/compatibility.md
//
// Every API key Kafka defines (every key kmsg knows) has exactly one note:
// a served API says what Floe does and what differs from Kafka; an API
// Floe does not serve says why. A new handler needs a note here.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// servedNote says what Floe does with an API it serves and how that
// differs from Kafka ("" when it does not).
type servedNote struct {
	does, differs string
}

var servedNotes = map[int16]servedNote{
	0: {"Appends batches to the agent's open segment; acknowledged after the segment's PUT and metadata commit. Idempotent and transactional producers. v13 names topics by ID.",
		"v0-v2 (message formats 0 and 1) are advertised, as Kafka 4 does, and refused per partition with UNSUPPORTED_VERSION. Latency is the agent's linger plus a PUT. KIP-951 leader hints are left empty. Transaction version 2 (v12's implicit partition adds) is not enabled."},
	1: {"Reads batches from the bucket through the zone's block cache, long-polls on commit notices; incremental fetch sessions (KIP-227); read_committed; v13+ by topic ID.",
		"PreferredReadReplica is always -1; KIP-951 leader hints are left empty. Sessions belong to one agent and one connection. INCONSISTENT_TOPIC_ID is never answered: Kafka sends it when a replica's log has another ID than its metadata, but a Floe partition's data is found by its topic ID."},
	2: {"Latest, earliest, by timestamp, max timestamp (-3), earliest local (-4, the earliest), latest tiered (-5: -1); read_committed bounds by the last stable offset.",
		"v0's list of segment offsets is the one offset v1+ answers (plus the log start for latest). Nothing is tiered."},
	3: {"Every live agent of the client's zone and pool; every partition led by its rendezvous owner, one replica, leader epoch 0; topic IDs; auto-creation (KIP-204).",
		"No replicas: ISR is the leader. v13's top-level error is always 0."},
	8:  {"Commits a group's offsets into the metadata store; generation, member and epoch checks (classic and KIP-848); v10 by topic ID.", "v0-v1 are not served (Kafka 4 removed them too)."},
	9:  {"Committed offsets, several groups at once (v8+), RequireStable (v7+); v10 by topic ID.", "v0 is not served (Kafka 4 removed it too)."},
	10: {"The rendezvous owner of the group or transactional id among live agents; batched keys (v4).", "v5-v6 are not advertised (v6 adds share-group keys, KIP-932)."},
	11: {"Classic group protocol: static membership, cooperative rebalancing, KIP-394 member ids, KIP-814.", ""},
	12: {"Keeps a classic member's session alive.", ""},
	13: {"Leaves a classic group, by member id or group.instance.id.", ""},
	14: {"Distributes the leader's assignment.", ""},
	15: {"Classic and KIP-848 groups, as classic tools expect.", ""},
	16: {"Groups this agent coordinates (clients ask every agent); state and type filters.", ""},
	17: {"SASL listeners: PLAIN, SCRAM-SHA-256/512, OAUTHBEARER.", "On a listener without SASL it answers ILLEGAL_SASL_STATE."},
	18: {"Versions from the handler registry.", "Unsupported versions get v0 UNSUPPORTED_VERSION listing ApiVersions' own range, as Kafka. v3+ lists feature levels (KIP-584): group.version 0-1 and transaction.version 0-2 supported, the cluster's finalized levels. As in Kafka, the APIs a feature gates are listed whatever its level (ConsumerGroupHeartbeat and ConsumerGroupDescribe at group.version 0 answer UNSUPPORTED_VERSION)."},
	19: {"Creates topics in the metadata store (validate-only, configs, KIP-525 answers, topic IDs); limits and the controller mutation quota (KIP-599).", "Any replication factor is accepted and reported as one replica; manual assignments decide nothing."},
	20: {"Deletes topics by name or ID (v6); objects are left to the cleaner.", ""},
	21: {"Moves log start offsets; extents below are dropped, objects deleted by the cleaner.", ""},
	22: {"Producer ids and epochs from the metadata store (KIP-360 bumps); transactional ids through their coordinator.", ""},
	23: {"End offset of epoch 0 (the only epoch) is the high watermark.", "Every partition has leader epoch 0 forever: no truncation can happen."},
	24: {"Adds partitions to a transaction; v4+ batches (KIP-890 part 1).", "verifyOnly requests are answered, but agents check transaction membership in the metadata commit."},
	25: {"Adds a group to a transaction.", ""},
	26: {"Ends a transaction: markers of every partition and the group offsets in one metadata step.", "v5 (transaction version 2) is not advertised."},
	28: {"Pending transactional offsets, published or dropped with the transaction's end.", "v5-v6 (transaction version 2) are not advertised."},
	29: {"With --authorizer acl: bindings from the metadata store.", "Without an authorizer, SECURITY_DISABLED, as Kafka."},
	30: {"With --authorizer acl: adds bindings; every agent applies them within a second.", "Without an authorizer, SECURITY_DISABLED."},
	31: {"With --authorizer acl: deletes bindings.", "Without an authorizer, SECURITY_DISABLED."},
	32: {"Topic configs (explicit and defaults, synonyms, documentation) and the agent's broker configs.", "Broker configs are the agent's flags."},
	33: {"Replaces a topic's explicit configs.", "Broker configs are static: INVALID_REQUEST."},
	34: {"One virtual log dir per agent (the bucket): a move to where the data is succeeds, nothing moves.", "No local disks."},
	35: {"One virtual log dir per agent, listing the partitions it leads with their bytes in the bucket.", "Sizes are bucket bytes; offset lag is 0."},
	36: {"SASL listeners: the SASL exchange (KIP-152), session lifetime (KIP-368).", "On a listener without SASL it answers ILLEGAL_SASL_STATE."},
	37: {"Raises partition counts; assignments validated as Kafka does, then ignored.", "No partition lives on an agent."},
	42: {"Deletes groups without members and their offsets.", ""},
	43: {"ELECTION_NOT_NEEDED for every partition: its one replica leads.", "No elections exist."},
	44: {"SET, DELETE, APPEND, SUBTRACT on topic configs.", "Broker configs are static."},
	45: {"Validated as Kafka validates reassignments and accepted; nothing moves.", "No replicas to move."},
	46: {"Never lists a reassignment in progress.", "No replicas to move."},
	47: {"Deletes a group's offsets (GROUP_SUBSCRIBED_TO_TOPIC rules).", ""},
	48: {"Quotas per user and client id from the metadata store.", ""},
	49: {"Sets producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate.", "Byte rates are cluster-wide (each agent its share); controller_mutation_rate is stored, the agent flag enforces."},
	50: {"SCRAM mechanisms and iterations of SASL users.", ""},
	51: {"Sets and deletes SCRAM credentials.", ""},
	57: {"Feature levels (group.version, transaction.version): an update to the level already finalized succeeds; one Kafka refuses gets its INVALID_UPDATE_VERSION reason.", "Levels are per-agent flags (--transaction-version): any real change is refused with INVALID_UPDATE_VERSION naming the flag to restart the agents with. No DescribeFeatures API: levels are read through ApiVersions v3+, as Kafka's admin clients do."},
	60: {"The live agents as brokers.", "v2 (KIP-1073's fenced brokers) is not served. Controllers (endpoint type 2): UNSUPPORTED_ENDPOINT_TYPE."},
	61: {"Producer state per partition from the metadata store.", "CoordinatorEpoch is always -1."},
	65: {"Transactional ids this agent coordinates.", "PrepareCommit and PrepareAbort never appear: ends are one atomic step."},
	66: {"Transactional ids this agent coordinates; state, duration (KIP-994) and pattern filters.", ""},
	68: {"KIP-848 consumer groups: uniform and range server-side assignors, member epochs, static membership.", "No rack-aware assignment. A group with members moves between the classic and consumer protocols online (--group-consumer-migration-policy)."},
	69: {"Describes KIP-848 groups.", ""},
	71: {"KIP-714 subscriptions: a standard set of client metrics, lz4/gzip/snappy.", "No client-metrics config resources: the agent's options decide; zstd pushes are refused."},
	72: {"Takes pushed metrics, exposed on /metrics per client id (bounded).", ""},
	74: {"Topics, agents and groups with dynamic configs as config resources (KIP-1142).", "No broker-logger or client-metrics config resources; at most 10,000 groups per response, shorter names first."},
	75: {"Metadata's topic answer, paged by cursor (KIP-966).", "Eligible leader replicas and offline replicas are always empty."},
	76: {"KIP-932 share groups: client-chosen member ids, the simple assignor (partitions shared when members outnumber them), member epochs; membership stored, so members continue at their epochs after a coordinator change.", "A consumer group and a share group may share a name."},
	77: {"Describes share groups.", ""},
	78: {"Acquires records for a share-group member at the partition's leader, in share sessions tied to their connection; acknowledgements are stored (shared writes) before they are answered; whole batches (batch-optimized mode) or, v2, exactly MaxRecords (record-limit mode); v2 renewed acknowledgements (KIP-1222). Group configs per group. See docs/share-groups.md.", "—"},
	79: {"Acknowledges acquired records in the member's share session; v2 renews locks (KIP-1222) and answers the lock duration.", "—"},
	90: {"Share-partition start offsets as stored, and lag (v1, KIP-1226).", "Leader epochs are -1."},
	91: {"Sets start offsets of a share group without members.", "Offsets must lie within the log."},
	92: {"Deletes share-partition states of whole topics of a share group without members.", ""},
}

// unservedNotes says why Floe does not serve an API Kafka defines. A
// request for one closes the connection, as Kafka's socket server does for
// an API it has not enabled.
var unservedNotes = map[int16]string{
	4:  "Controller to broker (ZooKeeper era, removed in Kafka 4): no replicas to lead or follow.",
	5:  "Controller to broker (ZooKeeper era, removed in Kafka 4).",
	6:  "Controller to broker (ZooKeeper era, removed in Kafka 4).",
	7:  "Broker to controller: agents leave by their membership lease expiring or being released.",
	27: "Coordinator to partition leaders: Floe's transaction coordinator writes markers in the metadata commit that ends the transaction.",
	38: "Delegation tokens (KIP-48) are not implemented.",
	39: "Delegation tokens (KIP-48) are not implemented.",
	40: "Delegation tokens (KIP-48) are not implemented.",
	41: "Delegation tokens (KIP-48) are not implemented.",
	52: "KRaft quorum RPC: Floe's metadata is in a database, not a Raft log.",
	53: "KRaft quorum RPC.",
	54: "KRaft quorum RPC.",
	55: "Describes the KRaft quorum, which Floe does not have; any answer would be made up (kafka-metadata-quorum.sh reports it unsupported, as against a broker without KRaft).",
	56: "Broker to controller: no ISR.",
	58: "Forwarding from brokers to the KRaft controller.",
	59: "KRaft snapshot transfer.",
	62: "Broker to KRaft controller: agents register in the metadata store.",
	63: "Broker to KRaft controller: agents heartbeat the metadata store.",
	64: "Unregisters a broker from the KRaft controller: agents deregister themselves.",
	67: "Broker to controller: the metadata store hands out producer ids.",
	70: "KRaft controller registration.",
	73: "Broker to controller (JBOD directories): no local disks.",
	80: "KRaft voter changes (KIP-853).",
	81: "KRaft voter changes (KIP-853).",
	82: "KRaft voter changes (KIP-853).",
	83: "Share group state, broker to share coordinator (KIP-932).",
	84: "Share group state, broker to share coordinator (KIP-932).",
	85: "Share group state, broker to share coordinator (KIP-932).",
	86: "Share group state, broker to share coordinator (KIP-932).",
	87: "Share group state, broker to share coordinator (KIP-932).",
	88: "Streams groups (KIP-1071) are not implemented.",
	89: "Streams groups (KIP-1071) are not implemented.",
	93: "Streams groups (KIP-1071) are not implemented.",
	94: "KRaft controller deregistration.",
}

// CompatibilityMarkdown is docs/compatibility.md: every API key Kafka
// defines, the versions Floe serves, what it does and what differs.
func CompatibilityMarkdown() string {
	var b strings.Builder
	b.WriteString(`# Kafka API conformance

<!-- Generated from the handler registry and the notes in
internal/protocol/compatibility.go by "go run ./cmd/floe docs compatibility";
TestCompatibilityDoc fails when this file disagrees with them. Do not edit. -->

Every API key Kafka defines (every key franz-go's kmsg knows), the versions
a Floe agent serves and advertises in ApiVersions, what it does, and what
differs from Apache Kafka 4.x.

As Kafka does: a request for an API key Floe does not serve, or for a
version outside the range it serves, closes the connection (Kafka's socket
server refuses a header its ApiVersionManager has not enabled), except
ApiVersions, which is answered at any version: a version above Floe's gets
a v0 answer with UNSUPPORTED_VERSION and ApiVersions' own range (KIP-511),
and a v3+ request whose client software name or version is not letters,
digits, '.' and '-' gets INVALID_REQUEST. A malformed frame closes the
connection too. Errors a client can recover from are answered with Kafka's
error codes. ` + "`TestEveryKeyAndVersion`" + ` checks all of this for every key
and every version from -1 to one past kmsg's newest.

| key | API | newest kmsg knows | Floe serves | what Floe does | differs from Kafka |
| ---: | --- | ---: | --- | --- | --- |
`)
	served := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range Supported() {
		served[k.ApiKey] = k
	}
	var keys []int
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		if kmsg.RequestForKey(k) != nil {
			keys = append(keys, int(k))
		}
	}
	sort.Ints(keys)
	for _, k := range keys {
		key := int16(k)
		newest := kmsg.RequestForKey(key).MaxVersion()
		name := kmsg.NameForKey(key)
		if a, ok := served[key]; ok {
			n := servedNotes[key]
			fmt.Fprintf(&b, "| %d | %s | %d | %s | %s | %s |\n", key, name, newest, versionRange(a.MinVersion, a.MaxVersion), cell(n.does), cell(n.differs))
			continue
		}
		fmt.Fprintf(&b, "| %d | %s | %d | not served | — | %s |\n", key, name, newest, cell(unservedNotes[key]))
	}
	return b.String()
}

func versionRange(min, max int16) string {
	if min == max {
		return fmt.Sprintf("%d", min)
	}
	return fmt.Sprintf("%d–%d", min, max)
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	if s == "" {
		return "—"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

// CompatibilityProblems lists the API keys whose notes disagree with the
// registry: a served API without a note, a note for an API not served, a
// key kmsg knows with no note at all.
func CompatibilityProblems() []string {
	var out []string
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		known := kmsg.RequestForKey(k) != nil
		_, isServed := apis[k]
		_, hasServed := servedNotes[k]
		_, hasUnserved := unservedNotes[k]
		name := kmsg.NameForKey(k)
		switch {
		case isServed && !hasServed:
			out = append(out, fmt.Sprintf("%s (%d) is served but has no note in servedNotes", name, k))
		case isServed && hasUnserved:
			out = append(out, fmt.Sprintf("%s (%d) is served but unservedNotes says why it is not", name, k))
		case !isServed && hasServed:
			out = append(out, fmt.Sprintf("%s (%d) has a note in servedNotes but is not registered", name, k))
		case known && !isServed && !hasUnserved:
			out = append(out, fmt.Sprintf("%s (%d) is not served and unservedNotes does not say why", name, k))
		case !known && (hasServed || hasUnserved):
			out = append(out, fmt.Sprintf("key %d has a note but kmsg does not know it", k))
		}
	}
	return out
}
