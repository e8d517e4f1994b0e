package protocol

// DescribeUserScramCredentials v0 (KIP-554): the SCRAM mechanisms and
// iteration counts of users, never salts or keys. No users asks for all;
// a named user without credentials is RESOURCE_NOT_FOUND, a user named
// twice DUPLICATE_RESOURCE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(50, 0, 0, (*Handler).describeUserScramCredentials) }

func (h *Handler) describeUserScramCredentials(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if h.cfg.Users == nil {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return now(resp), nil
	}
	if !h.allowedOnCluster(req, acl.Describe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp), nil
	}
	users, err := h.cfg.Users.ScramUsers(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = errMessage(err)
		return now(resp), nil
	}
	byName := make(map[string]metastore.UserScram, len(users))
	for _, u := range users {
		byName[u.User] = u
	}
	result := func(u metastore.UserScram) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u.User
		for _, c := range u.Credentials {
			info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			info.Mechanism, info.Iterations = int8(c.Mechanism), c.Iterations
			res.CredentialInfos = append(res.CredentialInfos, info)
		}
		return res
	}
	if len(r.Users) == 0 {
		for _, u := range users {
			resp.Results = append(resp.Results, result(u))
		}
		return now(resp), nil
	}
	count := map[string]int{}
	for _, u := range r.Users {
		count[u.Name]++
	}
	for _, ru := range r.Users {
		if count[ru.Name] < 0 {
			continue // answered once
		}
		u, ok := byName[ru.Name]
		res := result(u)
		res.User = ru.Name
		switch {
		case count[ru.Name] > 1:
			res = kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = ru.Name, kerr.DuplicateResource.Code
			msg := "Cannot describe SCRAM credentials for the same user twice in a single request"
			res.ErrorMessage = &msg
		case !ok:
			res.ErrorCode = kerr.ResourceNotFound.Code
			msg := "Attempt to describe a user credential that does not exist"
			res.ErrorMessage = &msg
		}
		count[ru.Name] = -1
		resp.Results = append(resp.Results, res)
	}
	return now(resp), nil
}
