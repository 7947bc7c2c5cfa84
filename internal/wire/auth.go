package wire

import (
	"crypto/hmac"
	"crypto/sha256"
)

// Authentication (PROTOCOL.md, "Authentication"): the dialer proves first,
// the listener only after it has verified the dialer's proof.
const (
	// ProofLen is the length of an authentication proof (HMAC-SHA256).
	ProofLen = sha256.Size
	// ExporterLabel is the TLS exporter label that binds proofs to the
	// TLS session when the transport has one.
	ExporterLabel = "EXPORTER-peerkit-auth-v1"
	// ExporterLen is how many bytes of keying material are bound.
	ExporterLen = 32
	// Roles, mixed into the proof so a proof cannot be reflected back.
	RoleDialer   byte = 'D'
	RoleListener byte = 'L'
	proofContext      = "peerkit auth v1"
)

// Proof computes the proof that the side with the given role knows secret:
// HMAC-SHA256(secret, context || role || dialer hello || listener hello ||
// exporter). Both hellos carry fresh nonces, so a proof is good for one
// handshake only.
func Proof(secret []byte, role byte, dialerHello, listenerHello, exporter []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(proofContext))
	m.Write([]byte{role})
	m.Write(dialerHello)
	m.Write(listenerHello)
	m.Write(exporter)
	return m.Sum(nil)
}

// VerifyProof reports, in constant time, whether got is the proof for role.
func VerifyProof(got, secret []byte, role byte, dialerHello, listenerHello, exporter []byte) bool {
	return hmac.Equal(got, Proof(secret, role, dialerHello, listenerHello, exporter))
}
