package config

// Broker describes a broker config that DescribeConfigs reports for an
// agent besides the broker synonyms of topic configs (Topic.Broker).
type Broker struct {
	Name string
	Type Type
	// Default is Kafka's default; an agent's value equal to it is
	// reported with source DEFAULT_CONFIG, any other with
	// STATIC_BROKER_CONFIG (agents are configured by flags).
	Default string
	Doc     string
}

// Brokers lists the broker configs agents report, by name. Their values
// come from the agent (protocol.Config.Broker and the handler's own).
var Brokers = map[string]Broker{
	"advertised.listeners":                      {Type: String, Doc: "Addresses clients are told to connect to, per listener (--advertised-listeners, --advertise)."},
	"authorizer.class.name":                     {Type: String, Doc: "The authorizer in use (--authorizer acl)."},
	"auto.create.topics.enable":                 {Type: Boolean, Default: "true", Doc: "Whether Metadata and Produce create topics that do not exist (--auto-create-topics)."},
	"broker.id":                                 {Type: Int, Default: "-1", Doc: "The agent's id (--node-id, else assigned by the metadata store)."},
	"broker.rack":                               {Type: String, Doc: "The agent's availability zone (--zone)."},
	"default.replication.factor":                {Type: Int, Default: "1", Doc: "Replication factor of auto-created topics; a partition has one replica in Floe, its data is in the bucket."},
	"delete.topic.enable":                       {Type: Boolean, Default: "true", Doc: "Whether topics may be deleted; always in Floe."},
	"fetch.max.bytes":                           {Type: Int, Default: "57671680", Doc: "Most bytes a Fetch returns (--fetch-max-bytes)."},
	"group.initial.rebalance.delay.ms":          {Type: Int, Default: "3000", Doc: "How long a new group waits for more members before its first rebalance (--group-initial-rebalance-delay)."},
	"group.max.session.timeout.ms":              {Type: Int, Default: "1800000", Doc: "Longest session timeout a consumer may ask for (--group-max-session-timeout)."},
	"group.min.session.timeout.ms":              {Type: Int, Default: "6000", Doc: "Shortest session timeout a consumer may ask for (--group-min-session-timeout)."},
	"listener.security.protocol.map":            {Type: String, Doc: "Security protocol of each listener name (--listener-security-protocol-map)."},
	"listeners":                                 {Type: String, Doc: "Addresses the agent listens on for Kafka clients (--listeners, --listen)."},
	"log.cleaner.enable":                        {Type: Boolean, Default: "true", Doc: "Whether compacted topics are cleaned; key compaction runs on agents with the jobs role."},
	"log.dirs":                                  {Type: List, Doc: "The agent's one virtual log dir: the bucket."},
	"max.incremental.fetch.session.cache.slots": {Type: Int, Default: "1000", Doc: "Incremental fetch sessions the agent keeps (--fetch-session-cache-slots)."},
	"node.id":                                   {Type: Int, Default: "-1", Doc: "The agent's id (--node-id, else assigned by the metadata store)."},
	"num.partitions":                            {Type: Int, Default: "1", Doc: "Partitions of auto-created topics and of CreateTopics asking for -1 (--default-partitions)."},
	"offsets.retention.minutes":                 {Type: Int, Default: "10080", Doc: "How long an empty group's committed offsets are kept (--offsets-retention)."},
	"offsets.topic.replication.factor":          {Type: Short, Default: "3", Doc: "Floe keeps committed offsets in the metadata store, not in a topic."},
	"quota.window.num":                          {Type: Int, Default: "11", Doc: "Samples client quotas are measured over (--quota-window-num)."},
	"sasl.enabled.mechanisms":                   {Type: List, Default: "GSSAPI", Doc: "SASL mechanisms the SASL listeners offer (--sasl-mechanisms)."},
	"socket.request.max.bytes":                  {Type: Int, Default: "104857600", Doc: "Largest request accepted (--max-request-bytes)."},
	"transaction.state.log.min.isr":             {Type: Int, Default: "2", Doc: "Floe keeps transaction state in the metadata store, not in a topic."},
	"transaction.state.log.replication.factor":  {Type: Short, Default: "3", Doc: "Floe keeps transaction state in the metadata store, not in a topic."},
}

// BrokerSynonym finds the topic config a broker config is a synonym of.
func BrokerSynonym(name string) (Topic, Synonym, bool) {
	for _, t := range Topics {
		for _, s := range t.Broker {
			if s.Name == name {
				if s.Type == 0 {
					s.Type = t.Type
				}
				return t, s, true
			}
		}
	}
	return Topic{}, Synonym{}, false
}
