package acl_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
)

// b builds a binding: resource type, pattern, name, principal, host,
// operation, permission.
func b(rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, name, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) metastore.ACL {
	return metastore.ACL{ResourceType: int8(rt), ResourceName: name, PatternType: int8(pt), Principal: principal, Host: host, Operation: int8(op), Permission: int8(perm)}
}

func TestAuthorize(t *testing.T) {
	const alice, bob = "User:alice", "User:bob"
	type check struct {
		principal, host string
		op              kmsg.ACLOperation
		rt              kmsg.ACLResourceType
		name            string
		want            bool
	}
	cases := []struct {
		name   string
		acls   []metastore.ACL
		opts   acl.Options
		checks []check
	}{
		{
			name: "no acls denies",
			checks: []check{
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "orders", false},
				{alice, "/10.0.0.1", acl.Create, acl.Cluster, acl.ClusterName, false},
			},
		},
		{
			name: "literal",
			acls: []metastore.ACL{b(acl.Topic, acl.Literal, "orders", alice, "*", acl.Read, acl.Allow)},
			checks: []check{
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "orders", true},
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "orders2", false},
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "order", false},
				{alice, "/10.0.0.1", acl.Write, acl.Topic, "orders", false},
				{alice, "/10.0.0.1", acl.Read, acl.Group, "orders", false},
				{bob, "/10.0.0.1", acl.Read, acl.Topic, "orders", false},
			},
		},
		{
			name: "prefixed",
			acls: []metastore.ACL{b(acl.Topic, acl.Prefixed, "logs-", alice, "*", acl.Write, acl.Allow)},
			checks: []check{
				{alice, "/10.0.0.1", acl.Write, acl.Topic, "logs-", true},
				{alice, "/10.0.0.1", acl.Write, acl.Topic, "logs-web", true},
				{alice, "/10.0.0.1", acl.Write, acl.Topic, "logs", false},
				{alice, "/10.0.0.1", acl.Write, acl.Topic, "xlogs-web", false},
			},
		},
		{
			name: "literal wildcard resource",
			acls: []metastore.ACL{b(acl.Group, acl.Literal, "*", alice, "*", acl.Read, acl.Allow)},
			checks: []check{
				{alice, "/10.0.0.1", acl.Read, acl.Group, "any", true},
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "any", false},
			},
		},
		{
			name: "a prefixed * is only a prefix",
			acls: []metastore.ACL{b(acl.Topic, acl.Prefixed, "*", alice, "*", acl.Read, acl.Allow)},
			checks: []check{
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "orders", false},
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "*x", true},
			},
		},
		{
			name: "deny wins over allow",
			acls: []metastore.ACL{
				b(acl.Topic, acl.Prefixed, "", alice, "*", acl.All, acl.Allow),
				b(acl.Topic, acl.Literal, "secret", alice, "*", acl.Read, acl.Deny),
			},
			checks: []check{
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "public", true},
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "secret", false},
				{alice, "/10.0.0.1", acl.Write, acl.Topic, "secret", true},
				// Deny implies nothing: denying READ leaves DESCRIBE.
				{alice, "/10.0.0.1", acl.Describe, acl.Topic, "secret", true},
			},
		},
		{
			name: "deny ALL denies everything",
			acls: []metastore.ACL{
				b(acl.Topic, acl.Literal, "*", "User:*", "*", acl.All, acl.Allow),
				b(acl.Topic, acl.Prefixed, "private-", bob, "*", acl.All, acl.Deny),
			},
			checks: []check{
				{bob, "/10.0.0.1", acl.Describe, acl.Topic, "private-x", false},
				{bob, "/10.0.0.1", acl.Describe, acl.Topic, "public", true},
				{alice, "/10.0.0.1", acl.Describe, acl.Topic, "private-x", true},
			},
		},
		{
			name: "wildcard principal is every user",
			acls: []metastore.ACL{b(acl.Topic, acl.Literal, "news", "User:*", "*", acl.Read, acl.Allow)},
			checks: []check{
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "news", true},
				{wireAnonymous, "/10.0.0.1", acl.Read, acl.Topic, "news", true},
				{"Group:ops", "/10.0.0.1", acl.Read, acl.Topic, "news", false},
			},
		},
		{
			name: "hosts",
			acls: []metastore.ACL{
				b(acl.Topic, acl.Literal, "orders", alice, "10.0.0.1", acl.Read, acl.Allow),
				b(acl.Topic, acl.Literal, "orders", "User:*", "10.0.0.66", acl.All, acl.Deny),
			},
			checks: []check{
				{alice, "/10.0.0.1", acl.Read, acl.Topic, "orders", true},
				{alice, "10.0.0.1", acl.Read, acl.Topic, "orders", true},
				{alice, "/10.0.0.2", acl.Read, acl.Topic, "orders", false},
				{alice, "/10.0.0.66", acl.Read, acl.Topic, "orders", false},
			},
		},
		{
			name: "implied operations",
			acls: []metastore.ACL{
				b(acl.Topic, acl.Literal, "r", alice, "*", acl.Read, acl.Allow),
				b(acl.Topic, acl.Literal, "w", alice, "*", acl.Write, acl.Allow),
				b(acl.Topic, acl.Literal, "d", alice, "*", acl.Delete, acl.Allow),
				b(acl.Topic, acl.Literal, "a", alice, "*", acl.Alter, acl.Allow),
				b(acl.Topic, acl.Literal, "ac", alice, "*", acl.AlterConfigs, acl.Allow),
				b(acl.Topic, acl.Literal, "c", alice, "*", acl.Create, acl.Allow),
				b(acl.Topic, acl.Literal, "all", alice, "*", acl.All, acl.Allow),
			},
			checks: []check{
				{alice, "/h", acl.Describe, acl.Topic, "r", true},
				{alice, "/h", acl.Describe, acl.Topic, "w", true},
				{alice, "/h", acl.Describe, acl.Topic, "d", true},
				{alice, "/h", acl.Describe, acl.Topic, "a", true},
				{alice, "/h", acl.DescribeConfigs, acl.Topic, "ac", true},
				{alice, "/h", acl.Describe, acl.Topic, "ac", false},
				{alice, "/h", acl.Describe, acl.Topic, "c", false},
				{alice, "/h", acl.Write, acl.Topic, "r", false},
				{alice, "/h", acl.DescribeConfigs, acl.Topic, "a", false},
				{alice, "/h", acl.AlterConfigs, acl.Topic, "all", true},
				{alice, "/h", acl.IdempotentWrite, acl.Topic, "all", true},
			},
		},
		{
			name: "super users",
			acls: []metastore.ACL{b(acl.Topic, acl.Literal, "*", "User:*", "*", acl.All, acl.Deny)},
			opts: acl.Options{SuperUsers: []string{"User:admin", "User:ops"}},
			checks: []check{
				{"User:admin", "/h", acl.Delete, acl.Topic, "orders", true},
				{"User:ops", "/h", acl.Alter, acl.Cluster, acl.ClusterName, true},
				{alice, "/h", acl.Read, acl.Topic, "orders", false},
			},
		},
		{
			name: "allow everyone if no acl found",
			acls: []metastore.ACL{b(acl.Topic, acl.Prefixed, "guarded-", bob, "*", acl.Read, acl.Allow)},
			opts: acl.Options{AllowIfNoACL: true},
			checks: []check{
				{alice, "/h", acl.Write, acl.Topic, "open", true},
				{alice, "/h", acl.Read, acl.Group, "g", true},
				// A binding for anyone on the resource takes it out of the
				// default.
				{alice, "/h", acl.Read, acl.Topic, "guarded-x", false},
				{bob, "/h", acl.Read, acl.Topic, "guarded-x", true},
				{bob, "/h", acl.Write, acl.Topic, "guarded-x", false},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := acl.NewRules(c.acls)
			for _, ch := range c.checks {
				if got := r.Authorize(&c.opts, ch.principal, ch.host, ch.op, ch.rt, ch.name); got != ch.want {
					t.Errorf("%s from %s: %s %s %q = %v, want %v", ch.principal, ch.host, ch.op, ch.rt, ch.name, got, ch.want)
				}
			}
		})
	}
}

const wireAnonymous = "User:ANONYMOUS"

func TestAuthorizeAny(t *testing.T) {
	const alice = "User:alice"
	cases := []struct {
		name string
		acls []metastore.ACL
		opts acl.Options
		want bool
	}{
		{name: "nothing", want: false},
		{name: "one literal", acls: []metastore.ACL{b(acl.Topic, acl.Literal, "t", alice, "*", acl.Write, acl.Allow)}, want: true},
		{name: "one prefix", acls: []metastore.ACL{b(acl.Topic, acl.Prefixed, "p-", alice, "*", acl.Write, acl.Allow)}, want: true},
		{name: "all", acls: []metastore.ACL{b(acl.Topic, acl.Literal, "t", alice, "*", acl.All, acl.Allow)}, want: true},
		{name: "read is not write", acls: []metastore.ACL{b(acl.Topic, acl.Literal, "t", alice, "*", acl.Read, acl.Allow)}, want: false},
		{name: "other host", acls: []metastore.ACL{b(acl.Topic, acl.Literal, "t", alice, "10.9.9.9", acl.Write, acl.Allow)}, want: false},
		{name: "denied literal", acls: []metastore.ACL{
			b(acl.Topic, acl.Literal, "t", alice, "*", acl.Write, acl.Allow),
			b(acl.Topic, acl.Literal, "t", alice, "*", acl.Write, acl.Deny),
		}, want: false},
		{name: "denied by prefix", acls: []metastore.ACL{
			b(acl.Topic, acl.Prefixed, "p-x", alice, "*", acl.Write, acl.Allow),
			b(acl.Topic, acl.Prefixed, "p-", alice, "*", acl.All, acl.Deny),
		}, want: false},
		{name: "a narrower deny leaves the prefix", acls: []metastore.ACL{
			b(acl.Topic, acl.Prefixed, "p-", alice, "*", acl.Write, acl.Allow),
			b(acl.Topic, acl.Prefixed, "p-x", alice, "*", acl.Write, acl.Deny),
		}, want: true},
		{name: "wildcard deny", acls: []metastore.ACL{
			b(acl.Topic, acl.Literal, "t", alice, "*", acl.Write, acl.Allow),
			b(acl.Topic, acl.Literal, "*", "User:*", "*", acl.Write, acl.Deny),
		}, want: false},
		{name: "super user", opts: acl.Options{SuperUsers: []string{alice}}, want: true},
		{name: "no acls, allowed if none", opts: acl.Options{AllowIfNoACL: true}, want: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := acl.NewRules(c.acls).AuthorizeAny(&c.opts, alice, "/10.0.0.1", acl.Write, acl.Topic); got != c.want {
				t.Fatalf("AuthorizeAny = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	str := func(s string) *string { return &s }
	lit := b(acl.Topic, acl.Literal, "orders", "User:alice", "*", acl.Read, acl.Allow)
	wild := b(acl.Topic, acl.Literal, "*", "User:bob", "10.0.0.1", acl.Write, acl.Deny)
	pre := b(acl.Topic, acl.Prefixed, "ord", "User:alice", "*", acl.Describe, acl.Allow)
	grp := b(acl.Group, acl.Literal, "orders", "User:alice", "*", acl.Read, acl.Allow)
	all := []metastore.ACL{lit, wild, pre, grp}
	any := acl.Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	with := func(f func(*acl.Filter)) acl.Filter { c := any; f(&c); return c }
	cases := []struct {
		name string
		f    acl.Filter
		want []metastore.ACL
	}{
		{"any", any, all},
		{"topics", with(func(f *acl.Filter) { f.ResourceType = acl.Topic }), []metastore.ACL{lit, wild, pre}},
		{"any pattern, exact name", with(func(f *acl.Filter) { f.Name = str("orders") }), []metastore.ACL{lit, grp}},
		{"literal", with(func(f *acl.Filter) { f.PatternType = acl.Literal }), []metastore.ACL{lit, wild, grp}},
		{"prefixed named", with(func(f *acl.Filter) { f.PatternType = acl.Prefixed; f.Name = str("ord") }), []metastore.ACL{pre}},
		{"prefixed by a longer name", with(func(f *acl.Filter) { f.PatternType = acl.Prefixed; f.Name = str("orders") }), nil},
		{"match", with(func(f *acl.Filter) {
			f.ResourceType, f.PatternType, f.Name = acl.Topic, kmsg.ACLResourcePatternTypeMatch, str("orders")
		}), []metastore.ACL{lit, wild, pre}},
		{"match another name", with(func(f *acl.Filter) {
			f.ResourceType, f.PatternType, f.Name = acl.Topic, kmsg.ACLResourcePatternTypeMatch, str("payments")
		}), []metastore.ACL{wild}},
		{"match without name", with(func(f *acl.Filter) { f.PatternType = kmsg.ACLResourcePatternTypeMatch }), all},
		{"principal", with(func(f *acl.Filter) { f.Principal = str("User:bob") }), []metastore.ACL{wild}},
		{"host", with(func(f *acl.Filter) { f.Host = str("*") }), []metastore.ACL{lit, pre, grp}},
		{"operation", with(func(f *acl.Filter) { f.Operation = acl.Read }), []metastore.ACL{lit, grp}},
		{"permission", with(func(f *acl.Filter) { f.Permission = acl.Deny }), []metastore.ACL{wild}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []metastore.ACL
			for _, a := range all {
				if c.f.Matches(a) {
					got = append(got, a)
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("matched %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("matched %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := b(acl.Topic, acl.Literal, "orders", "User:alice", "*", acl.Read, acl.Allow)
	cases := []struct {
		name  string
		edit  func(*metastore.ACL)
		valid bool
	}{
		{"good", func(*metastore.ACL) {}, true},
		{"prefixed", func(a *metastore.ACL) { a.PatternType = int8(acl.Prefixed) }, true},
		{"cluster", func(a *metastore.ACL) { a.ResourceType, a.ResourceName = int8(acl.Cluster), acl.ClusterName }, true},
		{"cluster by another name", func(a *metastore.ACL) { a.ResourceType = int8(acl.Cluster) }, false},
		{"any resource type", func(a *metastore.ACL) { a.ResourceType = int8(kmsg.ACLResourceTypeAny) }, false},
		{"match pattern", func(a *metastore.ACL) { a.PatternType = int8(kmsg.ACLResourcePatternTypeMatch) }, false},
		{"empty name", func(a *metastore.ACL) { a.ResourceName = "" }, false},
		{"any operation", func(a *metastore.ACL) { a.Operation = int8(kmsg.ACLOperationAny) }, false},
		{"any permission", func(a *metastore.ACL) { a.Permission = int8(kmsg.ACLPermissionTypeAny) }, false},
		{"principal without type", func(a *metastore.ACL) { a.Principal = "alice" }, false},
		{"empty host", func(a *metastore.ACL) { a.Host = "" }, false},
	}
	for _, c := range cases {
		a := good
		c.edit(&a)
		if err := acl.Validate(a); (err == nil) != c.valid {
			t.Errorf("%s: Validate = %v, want valid %v", c.name, err, c.valid)
		}
	}
}

// TestAuthorizerReloads checks that a change made through the store,
// by any agent, reaches the Authorizer's decisions after one poll.
func TestAuthorizerReloads(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a, err := acl.NewAuthorizer(t.Context(), store, acl.AuthorizerOptions{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go a.Run(t.Context())
	read := b(acl.Topic, acl.Literal, "t", "User:alice", "*", acl.Read, acl.Allow)
	eventually := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for a.Authorize("User:alice", "/127.0.0.1", acl.Read, acl.Topic, "t") != want {
			if time.Now().After(deadline) {
				t.Fatalf("decision never became %v", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	eventually(false)
	if err := store.CreateACLs(t.Context(), []metastore.ACL{read}); err != nil {
		t.Fatal(err)
	}
	eventually(true)
	if _, err := store.DeleteACLs(t.Context(), []metastore.ACL{read}); err != nil {
		t.Fatal(err)
	}
	eventually(false)
}
