package protocol

// AlterUserScramCredentials v0 (KIP-554). Clients send the salted
// password (Hi(password, salt, iterations)), never the password; the
// agent keeps the stored and server keys derived from it. A user's
// changes are applied together or not at all: an unknown mechanism
// (UNSUPPORTED_SASL_MECHANISM), iterations outside 4096-16384 or an empty
// name, salt or password (UNACCEPTABLE_CREDENTIAL), the same user and
// mechanism twice (DUPLICATE_RESOURCE) or the deletion of a credential
// that does not exist (RESOURCE_NOT_FOUND) fail all of that user's.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sasl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(51, 0, 0, (*Handler).alterUserScramCredentials) }

type scramAlteration struct {
	mech   metastore.ScramMechanism
	delete bool
	cred   metastore.ScramCredential
}

func (h *Handler) alterUserScramCredentials(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	var order []string
	alts := map[string][]scramAlteration{}
	failures := map[string]error{}
	fail := func(user string, code *kerr.Error, msg string) {
		if _, ok := failures[user]; !ok {
			failures[user] = &alterError{code: code, msg: msg}
		}
	}
	add := func(user string, a scramAlteration) {
		for _, b := range alts[user] {
			if b.mech == a.mech {
				fail(user, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
			}
		}
		alts[user] = append(alts[user], a)
	}
	note := func(user string) { // results in the order users first appear
		if _, ok := alts[user]; !ok {
			order = append(order, user)
			alts[user] = nil
		}
	}
	for _, d := range r.Deletions {
		note(d.Name)
		m := metastore.ScramMechanism(d.Mechanism)
		switch {
		case d.Name == "":
			fail(d.Name, kerr.UnacceptableCredential, "Username must not be empty")
		case m != metastore.ScramSHA256 && m != metastore.ScramSHA512:
			fail(d.Name, kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		}
		add(d.Name, scramAlteration{mech: m, delete: true})
	}
	for _, u := range r.Upsertions {
		note(u.Name)
		m := metastore.ScramMechanism(u.Mechanism)
		switch {
		case u.Name == "":
			fail(u.Name, kerr.UnacceptableCredential, "Username must not be empty")
		case m != metastore.ScramSHA256 && m != metastore.ScramSHA512:
			fail(u.Name, kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		case u.Iterations < 4096:
			fail(u.Name, kerr.UnacceptableCredential, "Too few iterations")
		case u.Iterations > 16384:
			fail(u.Name, kerr.UnacceptableCredential, "Too many iterations")
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			fail(u.Name, kerr.UnacceptableCredential, "Salt and salted password must not be empty")
		}
		add(u.Name, scramAlteration{mech: m, cred: sasl.NewCredential(m, u.SaltedPassword, u.Salt, u.Iterations)})
	}
	if !h.allowedOnCluster(req, acl.Alter) {
		for _, user := range order {
			fail(user, kerr.ClusterAuthorizationFailed, "")
		}
	}
	for _, user := range order {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		err := failures[user]
		if err == nil && h.cfg.Users == nil {
			err = &alterError{code: kerr.UnsupportedVersion, msg: "no user store"}
		}
		if err == nil {
			err = h.applyScram(ctx, user, alts[user])
		}
		if err != nil {
			var ae *alterError
			if errors.As(err, &ae) {
				res.ErrorCode = ae.code.Code
				res.ErrorMessage = &ae.msg
			} else {
				res.ErrorCode = errorCode(err)
				res.ErrorMessage = errMessage(err)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return now(resp), nil
}

type alterError struct {
	code *kerr.Error
	msg  string
}

func (e *alterError) Error() string { return e.msg }

// applyScram checks deletions first, so that a user's changes fail
// together when one names a credential that does not exist.
func (h *Handler) applyScram(ctx context.Context, user string, alts []scramAlteration) error {
	for _, a := range alts {
		if !a.delete {
			continue
		}
		if _, err := h.cfg.Users.ScramCredential(ctx, user, a.mech); errors.Is(err, metastore.ErrNoCredential) {
			return &alterError{code: kerr.ResourceNotFound, msg: "Attempt to delete a user credential that does not exist"}
		} else if err != nil {
			return err
		}
	}
	for _, a := range alts {
		var err error
		if a.delete {
			err = h.cfg.Users.DeleteScramCredential(ctx, user, a.mech)
		} else {
			err = h.cfg.Users.SetScramCredential(ctx, user, a.cred)
		}
		if errors.Is(err, metastore.ErrNoCredential) {
			return &alterError{code: kerr.ResourceNotFound, msg: "Attempt to delete a user credential that does not exist"}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
