package cluster

import (
	"context"
)

// Sending: to one remote, or to all of them.

// Send queues payload for the remote and returns; the payload is copied
// first (or, when the link's writer is idle, written to the conn at once:
// a large payload, and on transport.NowWriter conns a small one that
// answers the remote), so the caller may reuse it. If the remote's send queue is full,
// Send waits up to the network timeout, then returns ErrSendTimeout. Send
// to a remote that is not connected returns ErrUnknownRemote.
func (n *Node) Send(to Remote, payload []byte) error {
	return n.SendContext(context.Background(), to, payload)
}

// SendContext is Send with a context that bounds the wait for room in a
// full send queue.
func (n *Node) SendContext(ctx context.Context, to Remote, payload []byte) error {
	if len(payload) > n.opts.maxMessageSize {
		return ErrMessageTooLarge
	}
	if to.p == nil || to.p.node != n {
		return ErrUnknownRemote
	}
	l := to.p.link.Load()
	if l == nil {
		if n.isClosed() {
			return ErrClosed
		}
		return ErrUnknownRemote
	}
	if len(payload) <= maxSmallPayload {
		if l.sendSmallDirect(payload) {
			return nil
		}
		return l.enqueue(ctx, func(q *sendQueue) (bool, <-chan struct{}, bool) { return q.pushSmall(payload) })
	}
	if len(payload) >= directMin && l.sendDirect(payload) {
		return nil
	}
	f := outFrame{data: newPayload(payload, 1)}
	err := l.enqueue(ctx, f.push)
	if err != nil {
		f.drop()
	}
	return err
}

// Broadcast sends payload to every connected remote. A remote whose send
// queue is full does not delay the others: the payload is queued at once
// for every remote with room, and Broadcast then waits, for at most the
// network timeout in all, for room in the other queues at once, queueing
// the payload for each remote as soon as it has room. The error joins the
// failures, if any, each naming its remote.
func (n *Node) Broadcast(payload []byte) error {
	return n.BroadcastContext(context.Background(), payload)
}

// BroadcastContext is Broadcast with a context that also bounds the wait
// for room in full send queues.
func (n *Node) BroadcastContext(ctx context.Context, payload []byte) error {
	if len(payload) > n.opts.maxMessageSize {
		return ErrMessageTooLarge
	}
	n.mu.Lock()
	if n.table.closing {
		n.mu.Unlock()
		return ErrClosed
	}
	links := n.table.links()
	n.mu.Unlock()
	if len(links) == 0 {
		return nil
	}
	// A small payload is copied into every queue; a larger one is one
	// copy shared by every queue, each holding a reference: writers only
	// read it, and the last to be done with it recycles it.
	push, drop := func(q *sendQueue) (bool, <-chan struct{}, bool) { return q.pushSmall(payload) }, func() {}
	if len(payload) > maxSmallPayload {
		f := outFrame{data: newPayload(payload, len(links))}
		push, drop = f.push, f.drop
	}
	full := links[:0]
	for _, l := range links {
		if ok, _, _ := push(l.queue); !ok {
			full = append(full, l) // full, or closed: enqueueAll tells which
		}
	}
	if len(full) == 0 {
		return nil
	}
	return enqueueAll(ctx, full, push, drop, n.opts.networkTimeout)
}
