package cluster

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/peerkit/peerkit/internal/wire"
	"github.com/peerkit/peerkit/transport"
)

// The handshake (PROTOCOL.md, "Handshake"): both sides send a hello at
// once; with a secret, the dialer sends its proof, and the listener checks
// it before it answers with its verdict followed by its own proof. Only
// fixed binary layouts are parsed before the verdict: no codec ever runs
// on bytes from a peer that has not completed it.

// hello builds this node's hello with a fresh nonce; keys are the secrets
// of this handshake (nil: none).
func (n *Node) hello(explicit bool, keys *keyring) (*wire.Hello, []byte) {
	h := &wire.Hello{
		Version:  wire.Version,
		Instance: n.self.Instance,
		Codec:    n.opts.codec.Name(),
		Addr:     n.self.Addr,
		Meta:     *n.meta.Load(),
	}
	if keys != nil {
		h.Flags |= wire.FlagAuth
	}
	if explicit {
		h.Flags |= wire.FlagExplicit
	}
	h.Flags |= n.opts.capabilities
	rand.Read(h.Nonce[:])
	raw, err := h.Append(nil)
	if err != nil {
		panic("cluster: own hello invalid: " + err.Error()) // options were validated
	}
	return h, raw
}

// checkHello reports why this node cannot talk to the peer that sent h.
func (n *Node) checkHello(h *wire.Hello, keys *keyring) (code byte, cause error) {
	switch {
	case h.Codec != n.opts.codec.Name():
		return wire.VerdictIncompatible, fmt.Errorf("%w: peer uses codec %q, this node %q", ErrIncompatible, h.Codec, n.opts.codec.Name())
	case h.Flags&wire.FlagAuth != 0 && keys == nil:
		return wire.VerdictUnauthorized, fmt.Errorf("%w: peer requires a secret, this node has none", ErrUnauthorized)
	case h.Flags&wire.FlagAuth == 0 && keys != nil:
		return wire.VerdictUnauthorized, fmt.Errorf("%w: peer has no secret, this node requires one", ErrUnauthorized)
	case h.Instance == n.self.Instance:
		return wire.VerdictSelf, ErrSelf
	}
	return wire.VerdictAccept, nil
}

// helloError turns a failure to read the peer's hello into a cause.
func helloError(err error) error {
	switch {
	case errors.Is(err, wire.ErrNotPeerkit), errors.Is(err, wire.ErrMalformed):
		return fmt.Errorf("%w: %v", ErrNotPeerkit, err)
	case errors.Is(err, wire.ErrVersion):
		return fmt.Errorf("%w: %v", ErrIncompatible, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("peer closed the connection during the handshake: %w", err)
	}
	return err
}

// proof computes the proof with secret, in role, for the two hellos,
// bound to conn's TLS session if it has one.
func proof(conn net.Conn, secret []byte, role byte, dialerHello, listenerHello []byte) ([]byte, error) {
	exporter, err := exporterKey(conn)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS exporter: %v", ErrUnauthorized, err)
	}
	return wire.Proof(secret, role, dialerHello, listenerHello, exporter), nil
}

// readProof reads the peer's proof, in role, checks it against every
// secret of keys in constant time each, and returns the one that made it.
// The dialer proves first; the listener proves only to a dialer that did,
// so a stranger that connects learns no proof at all.
func readProof(conn net.Conn, keys *keyring, role byte, dialerHello, listenerHello []byte) ([]byte, error) {
	var got [wire.ProofLen]byte
	if _, err := io.ReadFull(conn, got[:]); err != nil {
		return nil, helloError(err)
	}
	exporter, err := exporterKey(conn)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS exporter: %v", ErrUnauthorized, err)
	}
	secret := keys.verify(got[:], role, dialerHello, listenerHello, exporter)
	if secret == nil {
		return nil, fmt.Errorf("%w: wrong secret (or a relay between two TLS sessions)", ErrUnauthorized)
	}
	return secret, nil
}

// exporterKey binds proofs to the TLS session when there is one.
func exporterKey(conn net.Conn) ([]byte, error) {
	tc, ok := conn.(transport.TLSConn)
	if !ok {
		return nil, nil
	}
	cs := tc.ConnectionState()
	if !cs.HandshakeComplete {
		return nil, nil
	}
	return cs.ExportKeyingMaterial(wire.ExporterLabel, nil, wire.ExporterLen)
}

// dialHandshake runs the dialer's side on conn and returns the peer's
// hello with the listener's verdict.
func (n *Node) dialHandshake(conn net.Conn, explicit bool) (*wire.Hello, byte, string, error) {
	keys := n.keys.Load() // one set of secrets for the whole handshake
	_, ours := n.hello(explicit, keys)
	if _, err := conn.Write(ours); err != nil {
		return nil, 0, "", err
	}
	theirs, raw, err := wire.ReadHello(conn)
	if err != nil {
		return nil, 0, "", helloError(err)
	}
	if _, cause := n.checkHello(theirs, keys); cause != nil {
		return theirs, 0, "", cause
	}
	if keys != nil {
		p, err := proof(conn, keys.primary, wire.RoleDialer, ours, raw)
		if err != nil {
			return theirs, 0, "", err
		}
		if _, err := conn.Write(p); err != nil {
			return theirs, 0, "", err
		}
	}
	code, reason, err := wire.ReadVerdict(conn)
	if err != nil {
		return theirs, 0, "", helloError(err)
	}
	if keys != nil && code != wire.VerdictUnauthorized {
		// The listener accepted our proof; its own follows the verdict,
		// made with the secret ours was. Until it checks, the verdict is
		// not believed.
		if _, err := readProof(conn, keys, wire.RoleListener, ours, raw); err != nil {
			return theirs, 0, "", err
		}
	}
	return theirs, code, reason, nil
}

// listenHandshake runs the listener's side of the handshake on an
// accepted conn, up to the verdict: it returns the peer's hello and, with a
// secret, the proof to send after the verdict. On failure it answers the
// peer (when it read its hello), logs, closes conn and reports false.
func (n *Node) listenHandshake(conn net.Conn) (theirs *wire.Hello, listenerProof []byte, ok bool) {
	from := conn.RemoteAddr().String()
	fail := func(h *wire.Hello, code byte, cause error) {
		if h != nil {
			from = h.Addr
		}
		n.stats.handshakeFailure(cause)
		n.stats.failure(from, "handshake", false, cause)
		n.log.Warn("handshake refused", "remote", from, "conn", conn.RemoteAddr().String(), "err", cause)
		if h != nil {
			conn.Write(wire.AppendVerdict(nil, code, cause.Error()))
		}
		conn.Close()
	}
	keys := n.keys.Load() // one set of secrets for the whole handshake
	_, ours := n.hello(false, keys)
	if _, err := conn.Write(ours); err != nil {
		fail(nil, 0, err)
		return nil, nil, false
	}
	theirs, raw, err := wire.ReadHello(conn)
	if err != nil {
		fail(nil, 0, helloError(err))
		return nil, nil, false
	}
	if code, cause := n.checkHello(theirs, keys); cause != nil {
		fail(theirs, code, cause)
		return nil, nil, false
	}
	if keys != nil {
		// Answer with the secret the dialer proved with: it may be one
		// this node only accepts, in the middle of a rotation.
		secret, err := readProof(conn, keys, wire.RoleDialer, raw, ours)
		if err != nil {
			fail(theirs, wire.VerdictUnauthorized, err)
			return nil, nil, false
		}
		if listenerProof, err = proof(conn, secret, wire.RoleListener, raw, ours); err != nil {
			fail(theirs, wire.VerdictUnauthorized, err)
			return nil, nil, false
		}
	}
	return theirs, listenerProof, true
}

// watch makes conn's I/O fail at once when ctx (if not nil) or the node
// ends, until stop is called; once stop returns, the watcher has stopped
// and will not touch conn again. The goroutine belongs to the node.
func (n *Node) watch(ctx interface{ Done() <-chan struct{} }, conn net.Conn) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	n.wg.Go(func() {
		defer close(exited)
		select {
		case <-done:
			return
		case <-ctxDone:
		case <-n.ctx.Done():
		}
		conn.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		close(done)
		<-exited
	}
}
