package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/agent"
)

// authzFlags enable authorization on the Kafka listener.
type authzFlags struct {
	authorizer   string
	superUsers   string
	allowIfNoACL bool
}

func (f *authzFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.authorizer, "authorizer", "", "`KIND` of authorization: acl (Kafka ACLs, kept in the metadata store and managed with CreateAcls, DescribeAcls and DeleteAcls) or empty (everything is allowed; the ACL APIs answer SECURITY_DISABLED)")
	fs.StringVar(&f.superUsers, "super-users", "", "principals that may do everything, separated by semicolons, e.g. 'User:admin;User:ops' (super.users)")
	fs.BoolVar(&f.allowIfNoACL, "allow-everyone-if-no-acl-found", false, "allow an operation on a resource that no ACL names (allow.everyone.if.no.acl.found)")
}

func (f *authzFlags) apply(cfg *agent.Config) error {
	switch f.authorizer {
	case "":
		if f.superUsers != "" || f.allowIfNoACL {
			return fmt.Errorf("--super-users and --allow-everyone-if-no-acl-found need --authorizer acl")
		}
		return nil
	case "acl":
	default:
		return fmt.Errorf("--authorizer %q: want acl or nothing", f.authorizer)
	}
	opts := &acl.AuthorizerOptions{Options: acl.Options{AllowIfNoACL: f.allowIfNoACL}}
	for _, p := range strings.Split(f.superUsers, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return fmt.Errorf("--super-users: %q is not a principal like User:admin", p)
		}
		opts.SuperUsers = append(opts.SuperUsers, p)
	}
	cfg.ACL = opts
	return nil
}
