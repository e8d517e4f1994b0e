package metastore

import (
	"cmp"
	"context"
	"slices"
)

// ACL is one Kafka ACL binding: a resource pattern and an access control
// entry. The enumerations carry Kafka's wire codes (kmsg's ACLResourceType,
// ACLResourcePatternType, ACLOperation and ACLPermissionType), which are
// part of the protocol and never renumbered, so the store keeps them as
// they are and never interprets them: matching is the authorizer's.
type ACL struct {
	ResourceType int8   // 2 topic, 3 group, 4 cluster, 5 transactional id, 6 delegation token, 7 user
	ResourceName string // "*" in a literal pattern is every resource of the type
	PatternType  int8   // 3 literal, 4 prefixed
	Principal    string // "User:alice", or "User:*"
	Host         string // an IP address, or "*"
	Operation    int8   // 2 all, 3 read, 4 write, … (kmsg.ACLOperation)
	Permission   int8   // 2 deny, 3 allow
}

// CompareACLs orders ACLs by every field, resource first: the order
// ACLStore.ACLs returns them in.
func CompareACLs(a, b ACL) int {
	return cmp.Or(
		cmp.Compare(a.ResourceType, b.ResourceType),
		cmp.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.PatternType, b.PatternType),
		cmp.Compare(a.Principal, b.Principal),
		cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation),
		cmp.Compare(a.Permission, b.Permission),
	)
}

// SortACLs sorts acls in CompareACLs order and drops duplicates.
func SortACLs(acls []ACL) []ACL {
	slices.SortFunc(acls, CompareACLs)
	return slices.Compact(acls)
}

// ACLStore keeps the cluster's ACL bindings. A binding is a set member:
// creating one that exists changes nothing, deleting one that does not
// exist is not an error.
//
// Every change that adds or removes a binding moves the version, so that
// agents caching the ACLs notice a change made through any agent by
// reading one number (ACLVersion) instead of every binding.
type ACLStore interface {
	// CreateACLs adds the bindings in one transaction.
	CreateACLs(ctx context.Context, acls []ACL) error
	// DeleteACLs removes exactly these bindings (the caller matches
	// filters) in one transaction, and returns those that existed.
	DeleteACLs(ctx context.Context, acls []ACL) ([]ACL, error)
	// ACLs returns every binding, sorted (CompareACLs), and the version
	// they are at, read in one transaction.
	ACLs(ctx context.Context) ([]ACL, int64, error)
	// ACLVersion returns the current version: 0 before any change, and
	// higher after every change that added or removed a binding.
	ACLVersion(ctx context.Context) (int64, error)
}
