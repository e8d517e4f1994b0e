package protocol_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
)

func (f *fixture) listConfigResources(version int16, types ...int8) (string, []string) {
	f.t.Helper()
	req := kmsg.NewPtrListConfigResourcesRequest()
	req.ResourceTypes = types
	resp := do[*kmsg.ListConfigResourcesResponse](f, version, req)
	var out []string
	for _, c := range resp.ConfigResources {
		out = append(out, fmt.Sprintf("%d:%s", c.Type, c.Name))
	}
	return shortCode(resp.ErrorCode), out
}

func TestListConfigResources(t *testing.T) {
	f := start(t)
	f.createTopic("lcr-b", 1)
	f.createTopic("lcr-a", 2)
	broker := "4:" + strconv.Itoa(int(f.metadata(12, false).Brokers[0].NodeID))
	for _, tc := range []struct {
		name     string
		version  int16
		types    []int8
		wantCode string
		want     []string
	}{
		{name: "v0: client metrics, none", version: 0, wantCode: "NONE"},
		{name: "every type", version: 1, wantCode: "NONE", want: []string{broker, "2:lcr-a", "2:lcr-b"}},
		{name: "topics", version: 1, types: []int8{2}, wantCode: "NONE", want: []string{"2:lcr-a", "2:lcr-b"}},
		{name: "brokers", version: 1, types: []int8{4}, wantCode: "NONE", want: []string{broker}},
		{name: "loggers, client metrics, groups: none", version: 1, types: []int8{8, 16, 32}, wantCode: "NONE"},
		{name: "an unknown type", version: 1, types: []int8{2, 3}, wantCode: "UNSUPPORTED_VERSION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			code, got := f.listConfigResources(tc.version, tc.types...)
			if code != tc.wantCode || !slices.Equal(got, tc.want) {
				t.Errorf("got %s %v, want %s %v", code, got, tc.wantCode, tc.want)
			}
		})
	}
}

// alterGroupConfig sets (a non-nil value) or deletes a group's config
// with IncrementalAlterConfigs, and fails the test if it is refused.
func (f *fixture) alterGroupConfig(group, name string, value *string) {
	f.t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value, c.Op = name, value, kmsg.IncrementalAlterConfigOpSet
	if value == nil {
		c.Op = kmsg.IncrementalAlterConfigOpDelete
	}
	rr.Configs = append(rr.Configs, c)
	req.Resources = append(req.Resources, rr)
	if r := do[*kmsg.IncrementalAlterConfigsResponse](f, 1, req).Resources; len(r) != 1 || r[0].ErrorCode != 0 {
		f.t.Fatalf("IncrementalAlterConfigs on group %s, %s: %+v", group, name, r)
	}
}

// TestListConfigResourcesGroups: a group is listed (type 32) while it
// has a dynamic config, asked for by type or with every type, and not
// by v0 or another type; deleting its last config unlists it.
func TestListConfigResourcesGroups(t *testing.T) {
	f := startShares(t)
	f.createTopic("lcr", 1)
	broker := "4:" + strconv.Itoa(int(f.metadata(12, false).Brokers[0].NodeID))
	f.alterGroupConfig("sg-b", "share.delivery.count.limit", kmsg.StringPtr("3"))
	f.alterGroupConfig("sg-a", "share.record.lock.duration.ms", kmsg.StringPtr("20000"))
	f.alterGroupConfig("sg-a", "share.delivery.count.limit", kmsg.StringPtr("4"))
	check := func(version int16, types []int8, want ...string) {
		t.Helper()
		code, got := f.listConfigResources(version, types...)
		slices.Sort(got)
		if code != "NONE" || !slices.Equal(got, want) {
			t.Errorf("v%d %v: %s %v, want %v", version, types, code, got, want)
		}
	}
	check(1, []int8{32}, "32:sg-a", "32:sg-b")
	check(1, nil, "2:lcr", "32:sg-a", "32:sg-b", broker)
	check(1, []int8{2, 32}, "2:lcr", "32:sg-a", "32:sg-b")
	check(1, []int8{2, 4}, "2:lcr", broker)
	check(0, nil)

	// One of sg-a's two configs deleted: still listed; sg-b's only
	// one: not.
	f.alterGroupConfig("sg-a", "share.delivery.count.limit", nil)
	f.alterGroupConfig("sg-b", "share.delivery.count.limit", nil)
	check(1, []int8{32}, "32:sg-a")
	f.alterGroupConfig("sg-a", "share.record.lock.duration.ms", nil)
	check(1, []int8{32})
}

func TestListConfigResourcesUnauthorized(t *testing.T) {
	admin, mallory := aclFixtures(t, acl.Options{})
	admin.createTopic("secret", 1)
	if code, got := mallory.listConfigResources(1); code != "CLUSTER_AUTHORIZATION_FAILED" || len(got) != 0 {
		t.Errorf("without DESCRIBE_CONFIGS on the cluster: %s %v", code, got)
	}
	admin.allow("User:mallory", kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationDescribeConfigs)
	if code, got := mallory.listConfigResources(1, 2); code != "NONE" || !slices.Equal(got, []string{"2:secret"}) {
		t.Errorf("with it: %s %v", code, got)
	}
}
