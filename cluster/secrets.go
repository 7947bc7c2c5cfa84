package cluster

import (
	"fmt"

	"github.com/peerkit/peerkit/internal/wire"
)

// Secrets: one to prove with, others accepted, so that a cluster can
// change its secret without downtime (PROTOCOL.md, "Authentication").
//
// Rotation in three steps, each done on every node before the next:
//
//  1. SetSecrets(old, new): still proving with old, accepting new.
//  2. SetSecrets(new, old): proving with new, still accepting old.
//  3. SetSecrets(new): old is refused from now on.
//
// A secret authenticates handshakes only, so links already up stay up
// throughout, whatever the step.

// MaxSecrets bounds the secrets a node accepts (the primary included): a
// listener may compute a proof for each when a dialer proves.
const MaxSecrets = 8

// keyring is a node's secrets; it is replaced whole, never changed.
type keyring struct {
	primary  []byte   // proves this node's side of a handshake it dials
	accepted [][]byte // primary first, then the others
}

func newKeyring(primary []byte, accepted [][]byte) (*keyring, error) {
	if len(primary) < 16 {
		return nil, fmt.Errorf("secret must be at least 16 bytes, got %d", len(primary))
	}
	if len(accepted)+1 > MaxSecrets {
		return nil, fmt.Errorf("at most %d secrets, got %d", MaxSecrets, len(accepted)+1)
	}
	k := &keyring{primary: append([]byte(nil), primary...)}
	k.accepted = append(k.accepted, k.primary)
	for i, s := range accepted {
		if len(s) < 16 {
			return nil, fmt.Errorf("accepted secret %d must be at least 16 bytes, got %d", i+1, len(s))
		}
		k.accepted = append(k.accepted, append([]byte(nil), s...))
	}
	return k, nil
}

// verify returns the secret that made proof, or nil if none of the
// accepted ones did. Each is checked in constant time.
func (k *keyring) verify(proof []byte, role byte, dialerHello, listenerHello, exporter []byte) []byte {
	var found []byte
	for _, s := range k.accepted {
		if wire.VerifyProof(proof, s, role, dialerHello, listenerHello, exporter) && found == nil {
			found = s
		}
	}
	return found
}

// WithSecret makes the node require that every peer prove knowledge of
// the same secret (mutual HMAC challenge-response, bound to the TLS session
// when the transport has one). The secret should hold at least 16 random
// bytes. It is WithSecrets(secret).
func WithSecret(secret []byte) Option {
	return func(o *options) error {
		k, err := newKeyring(secret, nil)
		if err != nil {
			return fmt.Errorf("cluster: WithSecret: %v", err)
		}
		o.keys = k
		return nil
	}
}

// WithSecrets is WithSecret with secrets to accept besides the one this
// node proves with (primary), for a rotation: a peer proving with any of
// them is admitted, and is answered with the secret it used. At most
// MaxSecrets in all, each at least 16 bytes.
func WithSecrets(primary []byte, accepted ...[]byte) Option {
	return func(o *options) error {
		k, err := newKeyring(primary, accepted)
		if err != nil {
			return fmt.Errorf("cluster: WithSecrets: %v", err)
		}
		o.keys = k
		return nil
	}
}

// SetSecrets replaces the node's secrets at run time, as WithSecrets sets
// them (see the rotation above). It applies to handshakes that start after
// it returns; links already up are not touched. On a node without a
// secret it turns authentication on.
func (n *Node) SetSecrets(primary []byte, accepted ...[]byte) error {
	k, err := newKeyring(primary, accepted)
	if err != nil {
		return fmt.Errorf("cluster: SetSecrets: %v", err)
	}
	if n.isClosed() {
		return ErrClosed
	}
	n.keys.Store(k)
	n.log.Info("secrets changed", "accepted", len(k.accepted))
	return nil
}
