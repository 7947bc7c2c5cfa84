package cluster

import (
	"fmt"

	"github.com/peerkit/peerkit/internal/wire"
)

// Meta returns this node's metadata (see WithMeta).
func (n *Node) Meta() []byte { return *n.meta.Load() }

// SetMeta replaces this node's metadata (at most 4096 bytes) and tells
// every connected remote, without reconnecting: their Remote.Meta for this
// node changes shortly after. A remote whose send queue is full at that
// moment learns it with the next anti-entropy round.
func (n *Node) SetMeta(meta []byte) error {
	if len(meta) > wire.MaxMeta {
		return fmt.Errorf("cluster: SetMeta: at most %d bytes, got %d", wire.MaxMeta, len(meta))
	}
	meta = append([]byte(nil), meta...)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.table.closing {
		return ErrClosed
	}
	n.meta.Store(&meta)
	for _, l := range n.table.links() {
		l.tryEnqueue(outFrame{ctl: &wire.Control{MetaSet: true, Meta: meta}})
	}
	return nil
}
