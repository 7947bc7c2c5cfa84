package cluster

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// payload is one data message's bytes, copied from the caller by Send or
// Broadcast, waiting in one or more send queues (Broadcast shares one copy
// among its links). Each queue holds one reference; the writer releases
// it once the bytes are in its buffer (or the frame is dropped), and the
// last release returns the buffer to its pool, so that a steady stream of
// messages costs no allocation on the send path.
type payload struct {
	b     []byte // the message; its capacity is the pool class's size
	class int8   // index into payloadPools, -1 if not pooled
	refs  atomic.Int32
}

const (
	minPooledShift = 6  // the smallest pooled buffer: 64 B
	maxPooledShift = 20 // the largest: 1 MiB; bigger payloads are not pooled
)

var payloadPools [maxPooledShift - minPooledShift + 1]sync.Pool

// poolClass returns the pool for an n-byte payload, or -1.
func poolClass(n int) int {
	switch {
	case n > 1<<maxPooledShift:
		return -1
	case n <= 1<<minPooledShift:
		return 0
	}
	return bits.Len(uint(n-1)) - minPooledShift
}

// newPayload copies src into a pooled buffer holding refs references.
func newPayload(src []byte, refs int) *payload {
	p := newPayloadSize(len(src))
	copy(p.b, src)
	p.refs.Store(int32(refs))
	return p
}

// newPayloadSize returns a pooled buffer of n bytes, whatever they hold,
// with one reference.
func newPayloadSize(n int) *payload {
	var p *payload
	if c := poolClass(n); c < 0 {
		p = &payload{b: make([]byte, n), class: -1}
	} else if v := payloadPools[c].Get(); v != nil {
		p = v.(*payload)
	} else {
		p = &payload{b: make([]byte, 0, 1<<(c+minPooledShift)), class: int8(c)}
	}
	p.b = p.b[:n]
	p.refs.Store(1)
	return p
}

// release drops one reference; the last one recycles the buffer. Nothing
// may read p.b after its release. A nil p holds nothing to release.
func (p *payload) release() {
	if p == nil {
		return
	}
	if p.refs.Add(-1) == 0 && p.class >= 0 {
		payloadPools[p.class].Put(p)
	}
}
