package zonecache

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// The handshake proves to each side that the other knows the cluster
// secret, without sending it, before any request is read:
//
//	asker  → server: magic(9) askerNonce(32)
//	server → asker:  serverNonce(32) HMAC-SHA256(secret, "server" askerNonce serverNonce)
//	asker  → server: HMAC-SHA256(secret, "asker" askerNonce serverNonce)
//
// Every message has a fixed size. The labels keep one side's proof from
// serving as the other's; fresh nonces on both sides keep an old proof
// from being replayed. The secret authenticates, it does not encrypt: on a
// network an attacker can tamper with, wrap the connection in TLS
// (--peer-tls-*).

const (
	nonceBytes = 32
	macBytes   = sha256.Size
)

// magic opens every peer connection: it names the protocol and its
// version, so that a Kafka client (or anything else) dialling the peer
// port by mistake is turned away at once. A connection that carries
// commit notices (internal/peernotice) opens with noticeMagic instead;
// agents that predate notices turn it away, which tells the sender so.
var (
	magic       = []byte("FLOEPEER\x01")
	noticeMagic = []byte("FLOENOTE\x01")
)

// errAuth reports a peer that failed the handshake.
var errAuth = errors.New("peer authentication failed")

func proof(secret []byte, label string, askerNonce, serverNonce []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	m.Write(askerNonce)
	m.Write(serverNonce)
	return m.Sum(nil)
}

// Handshake runs the asking side of the handshake on rw for a connection
// that asks for blocks: it proves that the caller knows secret and checks
// that the server does too.
func Handshake(rw io.ReadWriter, secret []byte) error {
	return handshake(rw, secret, magic)
}

// HandshakeNotices is Handshake for a connection that carries commit
// notices (internal/peernotice). The server then answers one byte,
// noticesReady, once it checked the caller's proof and takes notices, so
// that a sender knows its notices will be read: the notice protocol has
// no other answer.
func HandshakeNotices(rw io.ReadWriter, secret []byte) error {
	if err := handshake(rw, secret, noticeMagic); err != nil {
		return err
	}
	var ready [1]byte
	if _, err := io.ReadFull(rw, ready[:]); err != nil {
		return fmt.Errorf("peer takes no notices: %w", err)
	}
	if ready[0] != noticesReady {
		return errAuth
	}
	return nil
}

// noticesReady is the server's answer to a notice connection's handshake.
const noticesReady = 1

func handshake(rw io.ReadWriter, secret, magic []byte) error {
	hello := make([]byte, 0, len(magic)+nonceBytes)
	hello = append(hello, magic...)
	nonce := make([]byte, nonceBytes)
	rand.Read(nonce)
	hello = append(hello, nonce...)
	if _, err := rw.Write(hello); err != nil {
		return err
	}
	answer := make([]byte, nonceBytes+macBytes)
	if _, err := io.ReadFull(rw, answer); err != nil {
		return err
	}
	serverNonce, serverProof := answer[:nonceBytes], answer[nonceBytes:]
	if !hmac.Equal(serverProof, proof(secret, "server", nonce, serverNonce)) {
		return errAuth
	}
	_, err := rw.Write(proof(secret, "asker", nonce, serverNonce))
	return err
}

// handshakeServer runs the server's side on rw; notices reports a
// connection that carries commit notices rather than block requests.
func handshakeServer(rw io.ReadWriter, secret []byte) (notices bool, err error) {
	hello := make([]byte, len(magic)+nonceBytes)
	if _, err := io.ReadFull(rw, hello); err != nil {
		return false, err
	}
	switch {
	case bytes.Equal(hello[:len(magic)], magic):
	case bytes.Equal(hello[:len(noticeMagic)], noticeMagic):
		notices = true
	default:
		return false, errAuth
	}
	askerNonce := hello[len(magic):]
	serverNonce := make([]byte, nonceBytes)
	rand.Read(serverNonce)
	answer := append(serverNonce, proof(secret, "server", askerNonce, serverNonce)...)
	if _, err := rw.Write(answer); err != nil {
		return false, err
	}
	got := make([]byte, macBytes)
	if _, err := io.ReadFull(rw, got); err != nil {
		return false, err
	}
	if !hmac.Equal(got, proof(secret, "asker", askerNonce, serverNonce)) {
		return false, errAuth
	}
	return notices, nil
}
