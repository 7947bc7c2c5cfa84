package memory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/peerkit/peerkit/transport"
)

// Network is an in-process network: a transport.Transport and
// transport.SourceDialer shared by every node of one simulated cluster,
// with fault injection (see the package documentation). Create it inside the synctest
// bubble that uses it. It is safe for concurrent use and starts no
// goroutines.
type Network struct {
	// mu guards every field below. Capacity 1. A pipe's lock may be taken
	// while mu is held (update does), never mu while a pipe's is held.
	mu   chan struct{}
	done chan struct{} // closed by Close
	opts options

	closed bool
	// changed is closed and replaced at every fault change: dials that wait
	// on a silent link re-check.
	changed chan struct{}

	listeners map[string]*listener
	// killed holds the addresses crashed by Kill and not listened on
	// since: a crashed host dials nothing.
	killed    map[string]bool
	ephemeral int // next local port for dialled conns
	pairs     map[*pair]struct{}
	pairID    uint64 // id of the last pair created

	faults faultState
	rng    *rand.Rand

	// faulty is false while no fault or delay is set: writes then skip
	// the lock. Written under mu.
	faulty atomic.Bool

	err error // an invalid option given to NewNetwork; set before use
}

var (
	_ transport.Transport    = (*Network)(nil)
	_ transport.SourceDialer = (*Network)(nil)
)

// New returns an empty network configured by opts, or the error of the
// first invalid option, which names it.
func New(opts ...Option) (*Network, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("memory: nil Option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Network{
		mu:        make(chan struct{}, 1),
		done:      make(chan struct{}),
		opts:      o,
		changed:   make(chan struct{}),
		listeners: make(map[string]*listener),
		killed:    make(map[string]bool),
		ephemeral: firstEphemeralPort,
		pairs:     make(map[*pair]struct{}),
		faults:    newFaultState(),
		rng:       newRand(o.seed),
	}, nil
}

// NewNetwork is New for the common case of options written in the test
// itself: it returns the network without an error. If an option is
// invalid, the network it returns is unusable: every Listen, Dial and
// DialFrom fails with the option's error (so cluster.New fails with it),
// and nothing panics.
func NewNetwork(opts ...Option) *Network {
	n, err := New(opts...)
	if err != nil {
		n, _ = New()
		n.err = err
	}
	return n
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
}

func (n *Network) lock()   { n.mu <- struct{}{} }
func (n *Network) unlock() { <-n.mu }

// Listen opens a listener at addr ("host:port"). Port 0 picks the lowest
// free port of host from 10000 up. An address already listened on fails
// with ErrAddrInUse.
func (n *Network) Listen(addr string) (net.Listener, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: "memory", Addr: Addr(addr), Err: err}
	}
	if n.err != nil {
		return nil, opErr(n.err)
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, opErr(err)
	}
	n.lock()
	defer n.unlock()
	if n.closed {
		return nil, opErr(net.ErrClosed)
	}
	if port == 0 {
		for p := firstListenPort; p <= lastPort; p++ {
			if _, used := n.listeners[joinAddr(host, p)]; !used {
				port = p
				break
			}
		}
		if port == 0 {
			return nil, opErr(ErrNoFreePort)
		}
	}
	key := joinAddr(host, port)
	if _, used := n.listeners[key]; used {
		return nil, opErr(ErrAddrInUse)
	}
	l := &listener{
		net:      n,
		addr:     Addr(key),
		backlog:  make(chan *conn, n.opts.backlog),
		done:     make(chan struct{}),
		closeTok: make(chan struct{}, 1),
	}
	n.listeners[key] = l
	delete(n.killed, key) // the crashed host is back
	return l, nil
}

// Dial connects to the listener at addr from an anonymous source, to which
// no per-link fault applies (partitions, cut links, per-link latency and
// bandwidth). Faults of the dialled node itself (BlackHole, Kill) and the
// network-wide latency and bandwidth do apply.
func (n *Network) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return n.dial(ctx, "", addr)
}

// DialFrom connects to the listener at addr on behalf of the node that
// listens at from, so that the faults between from and addr apply.
//
// A dial takes one round trip of the link's base latency. Across a silent
// link it waits until the link carries bytes again or ctx ends (then it
// fails with ctx's error). Where nothing listens it fails with an error
// matching transport.ErrRefused. From an address crashed by Kill and not
// listened on since, it fails with ErrHostDown, at once or as soon as Kill
// happens while it waits.
func (n *Network) DialFrom(ctx context.Context, from, addr string) (net.Conn, error) {
	return n.dial(ctx, normalize(from), addr)
}

func (n *Network) dial(ctx context.Context, from, addr string) (net.Conn, error) {
	to := normalize(addr)
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "memory", Addr: Addr(to), Err: err}
	}
	if n.err != nil {
		return nil, opErr(n.err)
	}
	if _, _, err := splitAddr(to); err != nil {
		return nil, opErr(err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, opErr(err)
		}
		n.lock()
		if n.closed {
			n.unlock()
			return nil, opErr(net.ErrClosed)
		}
		if n.killed[from] {
			n.unlock()
			return nil, opErr(ErrHostDown)
		}
		silent := n.silentLocked(from, to)
		rtt := 2 * n.faults.latency(from, to).base
		changed := n.changed
		n.unlock()

		if silent {
			// Like SYNs into a partition: no answer until it heals.
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, opErr(ctx.Err())
			case <-n.done:
				return nil, opErr(net.ErrClosed)
			}
		}
		if rtt > 0 {
			t := time.NewTimer(rtt)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, opErr(ctx.Err())
			case <-n.done:
				t.Stop()
				return nil, opErr(net.ErrClosed)
			}
		}
		c, l, err := n.connect(from, to)
		if err != nil {
			return nil, opErr(err)
		}
		if c == nil {
			continue // the link went silent during the handshake
		}
		return n.enqueue(ctx, c, l, opErr)
	}
}

// connect creates the conn pair for a dial from from to to, or returns nil
// (and no error) if the link is silent now.
func (n *Network) connect(from, to string) (*conn, *listener, error) {
	n.lock()
	defer n.unlock()
	if n.closed {
		return nil, nil, net.ErrClosed
	}
	if n.killed[from] {
		return nil, nil, ErrHostDown
	}
	if n.silentLocked(from, to) {
		return nil, nil, nil
	}
	l := n.listeners[to]
	if l == nil {
		return nil, nil, fmt.Errorf("%w: nothing listens at %s", transport.ErrRefused, to)
	}
	host := anonHost
	if from != "" {
		if h, _, err := splitAddr(from); err == nil {
			host = h
		}
	}
	local := Addr(joinAddr(host, n.ephemeral))
	n.ephemeral++
	if n.ephemeral > lastPort {
		n.ephemeral = firstEphemeralPort
	}
	size := n.opts.bufferSize
	n.pairID++
	p := &pair{id: n.pairID, from: from, to: to, ab: newPipe(size), ba: newPipe(size)}
	p.client = newConn(n, p, local, l.addr, from, to, p.ba, p.ab)
	p.server = newConn(n, p, l.addr, local, to, from, p.ab, p.ba)
	n.pairs[p] = struct{}{}
	return p.client, l, nil
}

// enqueue hands c's peer to the listener's backlog.
func (n *Network) enqueue(ctx context.Context, c *conn, l *listener, opErr func(error) error) (net.Conn, error) {
	p := c.pair
	select {
	case l.backlog <- p.server:
		// If the listener closed meanwhile, our conn was either accepted
		// before (it lives), or is still queued, or was reset by Close or
		// Accept (refused).
		if isClosed(l.done) && (l.drain(p.server) || p.isReset()) {
			return nil, opErr(fmt.Errorf("%w: listener %s closed", transport.ErrRefused, l.addr))
		}
		return c, nil
	case <-l.done:
		n.forget(p, ErrConnReset)
		return nil, opErr(fmt.Errorf("%w: listener %s closed", transport.ErrRefused, l.addr))
	case <-ctx.Done():
		n.forget(p, ErrConnReset)
		return nil, opErr(ctx.Err())
	}
}

// forget resets p and drops it from the registry.
func (n *Network) forget(p *pair, err error) {
	n.lock()
	delete(n.pairs, p)
	n.unlock()
	p.reset(err)
}

// endClosed records that one end of p was closed. It reports whether the
// link is silent: then the other end is told nothing now, and is reset
// when the link heals (see update), as a FIN lost in a partition would
// leave it.
func (n *Network) endClosed(p *pair) (held bool) {
	n.lock()
	defer n.unlock()
	p.closedEnds++
	if p.closedEnds == 2 {
		delete(n.pairs, p)
		return false
	}
	if _, ok := n.pairs[p]; ok && n.silentLocked(p.from, p.to) {
		p.held = true
		return true
	}
	return false
}

// Close closes every listener and every conn of the network; later
// Listen, Dial, Read and Write calls fail with errors matching
// net.ErrClosed. Close is idempotent.
func (n *Network) Close() error {
	n.lock()
	if n.closed {
		n.unlock()
		return nil
	}
	n.closed = true
	close(n.done)
	ls := make([]*listener, 0, len(n.listeners))
	for _, l := range n.listeners {
		l.closeLocked()
		ls = append(ls, l)
	}
	ps := n.takePairsLocked(func(*pair) bool { return true })
	n.unlock()
	for _, l := range ls {
		l.drain(nil)
	}
	for _, p := range ps {
		p.reset(net.ErrClosed)
	}
	n.tracef("network closed")
	return nil
}

// takePairsLocked removes from the registry, and returns, the pairs that
// match.
func (n *Network) takePairsLocked(match func(*pair) bool) []*pair {
	var ps []*pair
	for p := range n.pairs {
		if match(p) {
			ps = append(ps, p)
			delete(n.pairs, p)
		}
	}
	return ps
}

func (n *Network) tracef(format string, args ...any) {
	if n.opts.trace != nil {
		n.opts.trace("memory: " + fmt.Sprintf(format, args...))
	}
}
