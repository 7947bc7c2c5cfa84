package cluster

import (
	"net"
	"sync"

	"github.com/peerkit/peerkit/internal/wire"
	"github.com/peerkit/peerkit/transport"
)

// Direct sends: a large payload written by Send itself, without a copy.
//
// Send must copy a payload it queues, since the caller may reuse it once
// Send returns; for a large payload that copy is most of what a message
// costs beyond the transport. When the link's writer is idle and nothing
// waits in the queue, Send instead writes the frame to the conn itself,
// with a write that does not wait: if the conn takes all of it, there is
// nothing to copy and no handoff. What the conn does not take at once is
// copied, as before, and queued ahead of everything else, so Send never
// waits on the network longer than a queued send would, and the frames
// stay in order.

// directMin is the smallest payload Send writes directly as a rule.
// Smaller ones are copied into the queue, where a burst of them goes out in
// one write, unless they answer (sendSmallDirect).
const directMin = linkBufferSize

// sendSmallDirect writes a small payload directly, as sendDirect does a
// large one, but only if the remote has sent a message since the last
// small payload written so: a request and its response, where the handoff
// to the writer is much of a message's latency. A stream of sends that
// hears nothing back goes through the queue, where the writer batches it.
//
// Only on conns that are transport.NowWriters (the memory transport's),
// where it took a 64-byte round trip from 5.2–5.6 µs to 2.6–3.6 µs p50
// (four alternating runs each).
// Over TCP the round trip gained 3–5 %, within noise, and 64-byte streams
// sent both ways at once, whose sends are all answers, lost 10–15 % to
// the writes no longer batched; over memory they lose about 17 %, which
// tests in virtual time do not feel.
func (l *link) sendSmallDirect(payload []byte) bool {
	if !l.answerNow || !l.direct.Load() {
		return false
	}
	in := l.stats.msgsIn.Load()
	if in == l.answered.Load() {
		return false
	}
	if !l.sendDirect(payload) {
		return false
	}
	l.answered.Store(in)
	return true
}

// nowWriter writes as much of a frame's header and payload as the conn
// takes without waiting and returns how many bytes it wrote. An error
// means the conn is broken.
type nowWriter interface {
	writeNow(hdr, payload []byte) (int, error)
}

// newNowWriter returns the conn's nowWriter, or nil if it has none.
func newNowWriter(c net.Conn) nowWriter {
	if nw, ok := c.(transport.NowWriter); ok {
		return connNowWriter{nw}
	}
	return newSyscallNowWriter(c)
}

// connNowWriter is a transport.NowWriter (the memory transport's conns).
type connNowWriter struct{ c transport.NowWriter }

func (w connNowWriter) writeNow(hdr, payload []byte) (int, error) {
	if len(payload) <= maxSmallPayload {
		// One write, so that the reader wakes once, for all of it.
		buf := smallFrames.Get().(*[wire.FrameHeaderLen + maxSmallPayload]byte)
		n, err := w.c.WriteNow(append(append(buf[:0], hdr...), payload...))
		smallFrames.Put(buf)
		return n, err
	}
	n, err := w.c.WriteNow(hdr)
	if err != nil || n < len(hdr) {
		return n, err
	}
	k, err := w.c.WriteNow(payload)
	return n + k, err
}

// smallFrames holds the buffers in which connNowWriter joins a small
// payload to its header.
var smallFrames = sync.Pool{New: func() any { return new([wire.FrameHeaderLen + maxSmallPayload]byte) }}

// sendDirect writes a data frame of payload straight to the conn if the
// link allows it now (see above). It reports false if it wrote nothing:
// the caller then queues the payload as usual. A message is counted as
// sent once all of its frame is written (here, or its rest by the
// writer), or as dropped if the link goes down first: once either way.
func (l *link) sendDirect(payload []byte) bool {
	if l.now == nil || !l.direct.Load() {
		return false
	}
	select {
	case <-l.leaving: // Send refuses, as it does with the queue
		return false
	default:
	}
	if !l.wmu.tryLock() {
		return false
	}
	sent, dropped, broken := l.writeDirect(payload)
	l.wmu.unlock()
	// The owner hears of it with no lock of the link held.
	if dropped {
		l.cfg.owner.countDropped(l, 1)
	}
	if broken != nil {
		l.shutdown(broken)
	}
	return sent
}

// writeDirect is sendDirect's part with wmu held. sent is false if it
// wrote nothing; dropped, if the message will never be whole on the
// wire; broken, the error of a conn that took part of a frame and failed.
func (l *link) writeDirect(payload []byte) (sent, dropped bool, broken error) {
	// The writer takes batches only with wmu held: while we hold it,
	// nothing queued can be in its hands, and what is queued now comes
	// after this frame.
	if !l.direct.Load() || !l.queue.idle() {
		return false, false, nil
	}
	hdr := wire.AppendFrameHeader(l.directHdr[:0], wire.FrameData, len(payload))
	n, err := l.now.writeNow(hdr, payload)
	switch total := len(hdr) + len(payload); {
	case n <= 0:
		// Nothing written: queue it. A broken conn fails the writer too.
		return false, false, nil
	case err != nil: // part of a frame went out: the stream is broken
		return true, true, err
	case n == total:
		l.stats.msgsOut.Add(1)
		l.stats.bytesOut.Add(uint64(len(payload)))
		return true, false, nil
	default:
		// The conn took part of the frame: the rest goes first, by the
		// writer, which counts the message once it is written.
		rest := newPayloadSize(total - n)
		k := 0
		if n < len(hdr) {
			k = copy(rest.b, hdr[n:])
		}
		copy(rest.b[k:], payload[max(n-len(hdr), 0):])
		if !l.queue.pushFront(outFrame{data: rest, cont: true, size: len(payload)}) {
			rest.release() // the writer has stopped; the link is down
			return true, true, nil
		}
		return true, false, nil
	}
}
