// Package acl decides whether a principal may do an operation on a
// resource, with Kafka's ACL semantics, and keeps each agent's copy of the
// cluster's ACLs current (Authorizer).
//
// The matching is pure: Rules is an immutable set of bindings and every
// decision is a function of it, the principal, the client's host, the
// operation and the resource. The Authorizer loads Rules from the metadata
// store and swaps them in when the store's ACL version moves; it never
// holds a lock across a store call, and a decision never waits for the
// store.
//
// Kafka's rules, which this package follows:
//
//   - A binding names a resource pattern (a type; a literal name, "*" for
//     every name, or a prefix) and an entry (a principal or User:*, a host
//     or *, an operation, allow or deny).
//   - Super users may do everything. Otherwise a matching deny wins over
//     any allow; without a matching allow the answer is no, unless no
//     binding at all matches the resource and allow-everyone-if-no-acl-found
//     is set.
//   - ALL matches every operation. An allow of READ, WRITE, DELETE or
//     ALTER implies DESCRIBE; an allow of ALTER_CONFIGS implies
//     DESCRIBE_CONFIGS. Deny bindings imply nothing: denying DESCRIBE does
//     not deny READ.
package acl

import (
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
)

// Resource types, pattern types, operations and permissions are Kafka's
// wire codes, as kmsg names them.
const (
	Topic           = kmsg.ACLResourceTypeTopic
	Group           = kmsg.ACLResourceTypeGroup
	Cluster         = kmsg.ACLResourceTypeCluster
	TransactionalID = kmsg.ACLResourceTypeTransactionalId

	Literal  = kmsg.ACLResourcePatternTypeLiteral
	Prefixed = kmsg.ACLResourcePatternTypePrefixed

	All             = kmsg.ACLOperationAll
	Read            = kmsg.ACLOperationRead
	Write           = kmsg.ACLOperationWrite
	Create          = kmsg.ACLOperationCreate
	Delete          = kmsg.ACLOperationDelete
	Alter           = kmsg.ACLOperationAlter
	Describe        = kmsg.ACLOperationDescribe
	ClusterAction   = kmsg.ACLOperationClusterAction
	DescribeConfigs = kmsg.ACLOperationDescribeConfigs
	AlterConfigs    = kmsg.ACLOperationAlterConfigs
	IdempotentWrite = kmsg.ACLOperationIdempotentWrite

	Allow = kmsg.ACLPermissionTypeAllow
	Deny  = kmsg.ACLPermissionTypeDeny
)

// ClusterName is the one name of the cluster resource.
const ClusterName = "kafka-cluster"

// Wildcard is the literal resource name, principal name and host that
// match every one.
const Wildcard = "*"

// wildcardPrincipal is the principal matching every user.
const wildcardPrincipal = "User:*"

// Rules is an immutable set of ACL bindings, indexed by resource type.
type Rules struct {
	byType map[kmsg.ACLResourceType][]metastore.ACL
}

// NewRules indexes acls. The slice is not kept.
func NewRules(acls []metastore.ACL) *Rules {
	r := &Rules{byType: map[kmsg.ACLResourceType][]metastore.ACL{}}
	for _, a := range acls {
		t := kmsg.ACLResourceType(a.ResourceType)
		r.byType[t] = append(r.byType[t], a)
	}
	return r
}

// Options are the authorizer's settings, as Kafka names them.
type Options struct {
	// SuperUsers may do everything (super.users), e.g. "User:admin".
	SuperUsers []string
	// AllowIfNoACL allows an operation on a resource that no binding
	// matches (allow.everyone.if.no.acl.found).
	AllowIfNoACL bool
}

// Authorize reports whether principal, connected from host (an IP
// address, with or without Kafka's leading "/"), may do op on the
// resource of type rt named name.
func (r *Rules) Authorize(o *Options, principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if o.superUser(principal) {
		return true
	}
	host = strings.TrimPrefix(host, "/")
	found, allowed := false, false
	for _, a := range r.byType[rt] {
		if !patternMatches(a, name) {
			continue
		}
		found = true
		if !entryMatches(a, principal, host) {
			continue
		}
		switch kmsg.ACLPermissionType(a.Permission) {
		case Deny:
			if opDenies(kmsg.ACLOperation(a.Operation), op) {
				return false
			}
		case Allow:
			allowed = allowed || opAllows(kmsg.ACLOperation(a.Operation), op)
		}
	}
	return allowed || (!found && o.AllowIfNoACL)
}

// AuthorizeAny reports whether principal may do op on at least one
// resource of type rt, as Kafka's authorizeByResourceType does (an
// idempotent producer with WRITE on some topic, KIP-679): some allow
// binding for op (or ALL) names a resource that no deny binding covers
// entirely.
func (r *Rules) AuthorizeAny(o *Options, principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	// A name no binding is likely to name checks super users, wildcard
	// allows and allow-everyone-if-no-acl-found in one go, as Kafka does.
	if r.Authorize(o, principal, host, op, rt, "\x00floe-any") {
		return true
	}
	host = strings.TrimPrefix(host, "/")
	var denyLiteral, denyPrefix []string
	for _, a := range r.byType[rt] {
		if kmsg.ACLPermissionType(a.Permission) != Deny || !entryMatches(a, principal, host) || !opDenies(kmsg.ACLOperation(a.Operation), op) {
			continue
		}
		switch kmsg.ACLResourcePatternType(a.PatternType) {
		case Literal:
			if a.ResourceName == Wildcard {
				return false
			}
			denyLiteral = append(denyLiteral, a.ResourceName)
		case Prefixed:
			denyPrefix = append(denyPrefix, a.ResourceName)
		}
	}
	coveredByDenyPrefix := func(name string) bool {
		for _, p := range denyPrefix {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	for _, a := range r.byType[rt] {
		if kmsg.ACLPermissionType(a.Permission) != Allow || !entryMatches(a, principal, host) {
			continue
		}
		if o := kmsg.ACLOperation(a.Operation); o != op && o != All {
			continue
		}
		switch kmsg.ACLResourcePatternType(a.PatternType) {
		case Literal:
			denied := false
			for _, d := range denyLiteral {
				denied = denied || d == a.ResourceName
			}
			if !denied && !coveredByDenyPrefix(a.ResourceName) {
				return true
			}
		case Prefixed:
			if !coveredByDenyPrefix(a.ResourceName) {
				return true
			}
		}
	}
	return false
}

func (o *Options) superUser(principal string) bool {
	for _, s := range o.SuperUsers {
		if s == principal {
			return true
		}
	}
	return false
}

// patternMatches reports whether a's resource pattern covers name.
func patternMatches(a metastore.ACL, name string) bool {
	switch kmsg.ACLResourcePatternType(a.PatternType) {
	case Literal:
		return a.ResourceName == name || a.ResourceName == Wildcard
	case Prefixed:
		return strings.HasPrefix(name, a.ResourceName)
	}
	return false
}

// entryMatches reports whether a's principal and host cover the request's.
func entryMatches(a metastore.ACL, principal, host string) bool {
	return (a.Principal == principal || a.Principal == wildcardPrincipal && strings.HasPrefix(principal, "User:")) &&
		(a.Host == host || a.Host == Wildcard)
}

// opAllows reports whether an allow binding for granted permits op.
func opAllows(granted, op kmsg.ACLOperation) bool {
	switch {
	case granted == op, granted == All:
		return true
	case op == Describe:
		return granted == Read || granted == Write || granted == Delete || granted == Alter
	case op == DescribeConfigs:
		return granted == AlterConfigs
	}
	return false
}

// opDenies reports whether a deny binding for denied forbids op.
func opDenies(denied, op kmsg.ACLOperation) bool {
	return denied == op || denied == All
}

// Filter selects bindings, as DescribeAcls and DeleteAcls filters do:
// ANY matches every resource type, pattern type, operation and
// permission; a nil name, principal or host matches every one. The MATCH
// pattern type selects the bindings that would apply to the named
// resource: the literal name, the literal wildcard, and every prefix of
// it.
type Filter struct {
	ResourceType kmsg.ACLResourceType
	Name         *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Matches reports whether the filter selects a.
func (f Filter) Matches(a metastore.ACL) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != kmsg.ACLResourceType(a.ResourceType) {
		return false
	}
	pt := kmsg.ACLResourcePatternType(a.PatternType)
	anyPattern := f.PatternType == kmsg.ACLResourcePatternTypeAny
	if !anyPattern && f.PatternType != kmsg.ACLResourcePatternTypeMatch && f.PatternType != pt {
		return false
	}
	if f.Name != nil {
		if anyPattern || f.PatternType == pt {
			if *f.Name != a.ResourceName {
				return false
			}
		} else if !patternMatches(a, *f.Name) { // MATCH
			return false
		}
	}
	return (f.Principal == nil || *f.Principal == a.Principal) &&
		(f.Host == nil || *f.Host == a.Host) &&
		(f.Operation == kmsg.ACLOperationAny || f.Operation == kmsg.ACLOperation(a.Operation)) &&
		(f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == kmsg.ACLPermissionType(a.Permission))
}

// ErrInvalid reports a binding that cannot be created; CreateAcls
// answers it INVALID_REQUEST.
var ErrInvalid = errors.New("invalid acl binding")

// Validate checks a binding before it is created, as Kafka does.
func Validate(a metastore.ACL) error {
	invalid := func(why string) error { return errors.Join(ErrInvalid, errors.New(why)) }
	switch rt := kmsg.ACLResourceType(a.ResourceType); {
	case rt < Topic || rt > kmsg.ACLResourceTypeUser:
		return invalid("invalid resource type")
	case rt == Cluster && a.ResourceName != ClusterName:
		return invalid("the only valid name for the CLUSTER resource is " + ClusterName)
	}
	switch pt := kmsg.ACLResourcePatternType(a.PatternType); {
	case pt != Literal && pt != Prefixed:
		return invalid("invalid pattern type: bindings are LITERAL or PREFIXED")
	case a.ResourceName == "":
		return invalid("resource name must not be empty")
	}
	if op := kmsg.ACLOperation(a.Operation); op < All || op > kmsg.ACLOperationDescribeTokens {
		return invalid("invalid operation")
	}
	if p := kmsg.ACLPermissionType(a.Permission); p != Allow && p != Deny {
		return invalid("invalid permission type: ALLOW or DENY")
	}
	if typ, name, ok := strings.Cut(a.Principal, ":"); !ok || typ == "" || name == "" {
		return invalid("principal must be TYPE:NAME, e.g. User:alice")
	}
	if a.Host == "" {
		return invalid("host must be an IP address or *")
	}
	return nil
}
