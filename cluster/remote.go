package cluster

import (
	"fmt"
	"sync/atomic"
)

// Remote is another node as this node sees it. It prints as the remote's
// advertised address. Remote values are comparable: two are equal when they
// name the same incarnation (address and instance) as seen by the same
// Node, so a Remote may be a map key. A peer that reconnects after a
// network failure keeps its Remote; a peer that restarts gets a new one.
// The zero Remote names nobody.
type Remote struct {
	p *peer
}

// peer is one incarnation of a remote node, as known by one Node.
type peer struct {
	node     *Node
	addr     string
	instance uint64
	meta     atomic.Pointer[[]byte]
	link     atomic.Pointer[link] // the live link, nil while not connected
}

func newPeer(n *Node, addr string, instance uint64, meta []byte) *peer {
	p := &peer{node: n, addr: addr, instance: instance}
	p.meta.Store(&meta)
	return p
}

// String returns the remote's advertised address.
func (r Remote) String() string {
	if r.p == nil {
		return "<none>"
	}
	return r.p.addr
}

// Addr returns the remote's advertised address, the one other nodes dial.
func (r Remote) Addr() string {
	if r.p == nil {
		return ""
	}
	return r.p.addr
}

// Instance returns the random id the remote drew when it started. A
// restarted peer has a new one.
func (r Remote) Instance() uint64 {
	if r.p == nil {
		return 0
	}
	return r.p.instance
}

// Meta returns the remote's metadata (see WithMeta), as last heard. The
// caller must not modify it.
func (r Remote) Meta() []byte {
	if r.p == nil {
		return nil
	}
	return *r.p.meta.Load()
}

// GoString helps test output.
func (r Remote) GoString() string {
	return fmt.Sprintf("cluster.Remote{%s #%x}", r.String(), r.Instance())
}

// Message is a payload received from a remote.
type Message struct {
	// From is the sender.
	From Remote
	// Payload is the message's content. It belongs to the receiver; with
	// WithHandler, the message and its Payload are only lent to the
	// handler, until it returns.
	Payload []byte
}
