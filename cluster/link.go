package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
)

const linkBufferSize = 16 << 10

var (
	errGoodbye  = errors.New("remote said goodbye")
	errLeft     = errors.New("closed locally")
	errReplaced = errors.New("replaced by a new instance")
	errAborted  = errors.New("node aborted")
)

// linkConfig is what every link of a node shares: the settings, where
// received messages go, the WaitGroup that owns the links' goroutines, and
// the owner that hears what happens on a link. A link calls nothing else
// of its node.
type linkConfig struct {
	codec      codec.Codec
	queueSize  int           // send queue depth
	healthy    time.Duration // heartbeat period, and the goodbye's linger
	timeout    time.Duration // silence that ends a link; bound on a wait for room
	maxMessage int
	inbox      chan<- *Message
	handler    func(*Message) // WithHandler's; nil: the Inbox
	wg         *sync.WaitGroup
	owner      linkOwner
}

// linkOwner is told what happens on a link. Its methods are called from
// the link's goroutines (or shutdown's caller), never under a lock of the
// link.
type linkOwner interface {
	// linkDown: the link shut down, for cause. Called once.
	linkDown(l *link, cause error)
	// remoteLeft: the remote said goodbye; the owner shuts the link down.
	remoteLeft(l *link)
	// handleControl: a control message arrived.
	handleControl(l *link, c *wire.Control)
	// linkStopped: both goroutines have stopped; the counters are final.
	linkStopped(l *link)
	// countDropped: k queued messages will never be written.
	countDropped(l *link, k uint64)
}

// link is one live connection to one remote. It owns two goroutines: the
// reader (frames to the Inbox or to membership) and the writer (the send
// queue to the conn, batched, with heartbeats when idle).
type link struct {
	cfg    *linkConfig
	peer   *peer
	conn   net.Conn
	dialed bool // this node dialled the conn
	// caps are the protocol capabilities both hellos announced: a frame
	// type or control field that needs one is sent only if it is here.
	caps byte

	first *wire.Control // the view sent before anything queued; set before start
	msg   Message       // the reader's, lent to the handler for each message
	queue *sendQueue
	// wmu is held by whoever writes to conn: the writer, for each burst,
	// heartbeat or goodbye, or a sender writing a frame directly.
	wmu        writeLock
	direct     atomic.Bool               // senders may write directly: the first view is out, no goodbye yet
	now        nowWriter                 // the conn's writes that do not wait; nil if it has none
	directHdr  [wire.FrameHeaderLen]byte // a direct send's frame header; wmu guards it
	answerNow  bool                      // small answers are written directly: the conn is a transport.NowWriter
	answered   atomic.Uint64             // msgsIn at the last small direct send (sendSmallDirect)
	done       chan struct{}             // closed by shutdown
	leaving    chan struct{}             // closed by leave: say goodbye, then shut down
	readerDone chan struct{}
	closeOnce  sync.Once
	leaveOnce  sync.Once

	heard   atomic.Int64 // unix nanoseconds when bytes last arrived
	stats   linkStats
	running atomic.Int32 // goroutines of the link still running
	retired bool         // counters folded into the node's totals; guarded by Node.mu
}

func newLink(cfg *linkConfig, p *peer, conn net.Conn, dialed bool, caps byte) *link {
	l := &link{
		cfg:        cfg,
		peer:       p,
		conn:       conn,
		dialed:     dialed,
		caps:       caps,
		queue:      newSendQueue(cfg.queueSize),
		wmu:        make(writeLock, 1),
		done:       make(chan struct{}),
		leaving:    make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	l.msg.From = Remote{p}
	l.now = newNowWriter(conn)
	_, l.answerNow = l.now.(connNowWriter)
	l.heard.Store(time.Now().UnixNano())
	return l
}

// start runs the link's goroutines; the node's WaitGroup owns them. The
// owner hears when the last of the two stops: until then either may still
// count.
func (l *link) start() {
	l.running.Store(2)
	l.cfg.wg.Go(func() { l.readLoop(); l.stopped() })
	l.cfg.wg.Go(func() { l.writeLoop(); l.stopped() })
}

func (l *link) stopped() {
	if l.running.Add(-1) == 0 {
		l.cfg.owner.linkStopped(l)
	}
}

// shutdown ends the link at once, for cause, and tells membership. It must
// not be called with the node's lock held.
func (l *link) shutdown(cause error) {
	l.closeOnce.Do(func() {
		close(l.done)
		l.conn.Close()
		l.cfg.owner.linkDown(l, cause)
	})
}

// leave asks the writer to flush what is queued, send a goodbye and close.
//
// A writer blocked in Write (a peer that does not read) would never see the
// request, so leave also gives the conn's writes the linger deadline: the
// goodbye goes out within it, or the link is dropped.
func (l *link) leave() {
	l.leaveOnce.Do(func() {
		close(l.leaving)
		l.conn.SetWriteDeadline(time.Now().Add(l.cfg.healthy))
	})
}

// writeLock is a mutex made of a channel of capacity 1, so that a
// goroutine waiting for it is durably blocked in a synctest bubble, as
// everything the memory transport blocks on is: a link's writer waiting
// for a direct send to finish lets virtual time move on.
type writeLock chan struct{}

func (m writeLock) lock()   { m <- struct{}{} }
func (m writeLock) unlock() { <-m }

// tryLock takes the lock if it is free, without waiting.
func (m writeLock) tryLock() bool {
	select {
	case m <- struct{}{}:
		return true
	default:
		return false
	}
}

// pusher puts one message in a link's queue: see sendQueue.push.
type pusher func(q *sendQueue) (ok bool, room <-chan struct{}, closed bool)

// enqueue waits for room in the send queue until ctx ends, the link goes
// down, or the network timeout passes, and queues with push.
func (l *link) enqueue(ctx context.Context, push pusher) error {
	// One channel per select: a single-case select with a default is a
	// lock-free check, where a multi-case one locks every channel.
	select {
	case <-l.done:
		return ErrUnknownRemote
	default:
	}
	select {
	case <-l.leaving:
		return ErrUnknownRemote
	default:
	}
	var t *time.Timer
	for {
		ok, room, closed := push(l.queue)
		switch {
		case ok:
			return nil
		case closed:
			return ErrUnknownRemote
		}
		if t == nil {
			t = time.NewTimer(l.cfg.timeout)
			defer t.Stop()
		}
		select {
		case <-room:
		case <-l.done:
			return ErrUnknownRemote
		case <-l.leaving:
			return ErrUnknownRemote
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return ErrSendTimeout
		}
	}
}

// tryEnqueue queues a control frame if there is room, without waiting. It
// may be called under the node's lock.
func (l *link) tryEnqueue(f outFrame) bool {
	ok, _, closed := l.queue.push(f)
	if !ok && !closed {
		l.stats.shed.Add(1)
	}
	return ok
}

// enqueueAll queues a message with push for every link of full, waiting
// for room in all of their queues at once until ctx ends or timeout
// passes: each link gets it as soon as its queue has room, and a link
// whose queue stays full delays no other. drop is called for each link
// that does not get it. The error joins the failures.
func enqueueAll(ctx context.Context, full []*link, push pusher, drop func(), timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	// Cases 0 and 1 end the wait; then three per link: room in its queue,
	// the link down, the link leaving.
	const perLink = 3
	cases := make([]reflect.SelectCase, 2, 2+perLink*len(full))
	cases[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}
	cases[1] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)}
	var pending []*link
	var errs []error
	fail := func(l *link, err error) {
		drop()
		errs = append(errs, fmt.Errorf("%s: %w", l.peer.addr, err))
	}
	// try pushes to l's queue again; if it is still full, l waits on the
	// queue's new room channel (case i of its three).
	try := func(l *link) (waiting bool, room <-chan struct{}) {
		ok, room, closed := push(l.queue)
		switch {
		case ok:
			return false, nil
		case closed:
			fail(l, ErrUnknownRemote)
			return false, nil
		}
		return true, room
	}
	for _, l := range full {
		if waiting, room := try(l); waiting {
			pending = append(pending, l)
			cases = append(cases,
				reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(room)},
				reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(l.done)},
				reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(l.leaving)})
		}
	}
	for len(pending) > 0 {
		chosen, _, _ := reflect.Select(cases)
		if chosen < 2 {
			err := ErrSendTimeout
			if chosen == 0 {
				err = ctx.Err()
			}
			for _, l := range pending {
				fail(l, err)
			}
			break
		}
		i := (chosen - 2) / perLink
		l := pending[i]
		if (chosen-2)%perLink == 0 {
			if waiting, room := try(l); waiting {
				cases[chosen].Chan = reflect.ValueOf(room)
				continue
			}
		} else {
			fail(l, ErrUnknownRemote)
		}
		// Remove link i: move the last link's cases into its place.
		last := len(pending) - 1
		pending[i] = pending[last]
		pending = pending[:last]
		copy(cases[2+i*perLink:2+(i+1)*perLink], cases[2+last*perLink:])
		cases = cases[:2+last*perLink]
	}
	return errors.Join(errs...)
}
