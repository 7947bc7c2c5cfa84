package cluster

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerkit/peerkit/internal/acceptloop"
	"github.com/peerkit/peerkit/internal/wire"
)

// maxGossipDials bounds the dials in progress at once because gossip named
// an address: a flood of fake addresses costs at most this many.
const maxGossipDials = 128

// Node is one member of a cluster: it listens for peers, keeps a link to
// every remote it knows, and delivers their messages to Inbox.
//
// All methods are safe for concurrent use.
type Node struct {
	// Inbox delivers the messages other nodes send to this one, in order
	// per sender. It is closed when Close returns. While the application
	// does not drain it, the node stops reading from its links (the
	// transport's backpressure reaches the senders) and removes nobody.
	// With WithHandler, messages go to the handler instead and Inbox
	// carries none.
	Inbox <-chan *Message

	inbox   chan *Message
	opts    options
	ln      net.Listener
	self    wire.Peer
	meta    atomic.Pointer[[]byte]
	keys    atomic.Pointer[keyring] // nil: no authentication
	log     *slog.Logger
	events  *dispatcher
	stats   nodeStats
	linkCfg *linkConfig // what every link of the node shares

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the node but the dispatcher
	closed chan struct{}  // closed when Close has finished

	mu       sync.Mutex // guards the fields below; never held across I/O or callbacks
	table    *table     // the membership and every remote's lifecycle
	attempts map[string]*attempt
	timers   map[string]redialTimer
	upCh     chan struct{}      // closed and replaced whenever a link comes up
	links    map[*link]struct{} // every link whose goroutines have not stopped, for Stats
}

// New starts a node listening on addr ("host:port"; port 0 picks a free
// one) with the given options. The node is ready to Add peers and accept
// them when New returns.
func New(addr string, opts ...Option) (*Node, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	ln, err := o.transport.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen %s: %w", addr, err)
	}
	adv, iface := o.advertiseAddr, ""
	if adv == "" {
		if adv, iface, err = advertiseAddr(ln.Addr().String(), o.interfaces); err != nil {
			ln.Close()
			return nil, err
		}
		if len(adv) > wire.MaxAddr {
			ln.Close()
			return nil, fmt.Errorf("cluster: listen address %q is too long to advertise", adv)
		}
	}
	n := &Node{
		inbox:    make(chan *Message, o.inboxSize),
		opts:     o,
		ln:       ln,
		self:     wire.Peer{Addr: adv, Instance: newInstanceID()},
		events:   newDispatcher(),
		closed:   make(chan struct{}),
		attempts: make(map[string]*attempt),
		timers:   make(map[string]redialTimer),
		upCh:     make(chan struct{}),
		links:    make(map[*link]struct{}),
	}
	n.table = newTable(n.tableConfig())
	n.Inbox = n.inbox
	n.linkCfg = &linkConfig{
		codec: o.codec, queueSize: o.sendQueueSize, maxMessage: o.maxMessageSize,
		healthy: o.healthyInterval, timeout: o.networkTimeout,
		inbox: n.inbox, handler: o.handler, wg: &n.wg, owner: n,
	}
	n.meta.Store(&o.meta)
	if o.keys != nil {
		n.keys.Store(o.keys)
	}
	n.log = o.logger.With("node", adv)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, f := range o.onEvent {
		n.events.onEvent(f)
	}
	go n.events.run()
	n.wg.Go(n.acceptLoop)
	n.wg.Go(n.maintain)
	if len(o.seeds) > 0 {
		n.wg.Go(n.rejoin)
	}
	if iface != "" {
		n.log.Info("listening on a wildcard; advertising an address of this host", "listen", ln.Addr().String(), "advertise", adv, "interface", iface)
	}
	n.log.Info("node started", "instance", n.self.Instance, "transport", fmt.Sprintf("%T", o.transport), "codec", o.codec.Name())
	return n, nil
}

// tableConfig is the configuration of the node's membership table.
func (n *Node) tableConfig() tableConfig {
	o := &n.opts
	return tableConfig{
		self:              n.self,
		maxRemotes:        o.maxRemotes,
		maxPeerList:       o.maxPeerList,
		maxTombstones:     o.maxTombstones,
		tombstoneTTL:      o.tombstoneTTL,
		reconnectAttempts: o.reconnectAttempts,
		backoff:           func(i int) time.Duration { return backoff(o.reconnectBase, o.reconnectMax, i) },
		pick:              rand.N[int],
		newPeer:           func(addr string, instance uint64, meta []byte) *peer { return newPeer(n, addr, instance, meta) },
		wants:             n.events.wants,
	}
}

func newInstanceID() uint64 {
	var b [8]byte
	for {
		crand.Read(b[:])
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// Addr returns the address the node listens on.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// AdvertiseAddr returns the address other nodes know this node by.
func (n *Node) AdvertiseAddr() string { return n.self.Addr }

// Instance returns the random id this node drew when it started.
func (n *Node) Instance() uint64 { return n.self.Instance }

// hold keeps Close from finishing while a caller's goroutine may start
// node goroutines. It fails once Close has begun.
func (n *Node) hold() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.table.closing {
		return false
	}
	n.wg.Add(1)
	return true
}

// Add connects to the node at addr and returns once the handshake with it
// is done (nil) or has failed. Through it the node learns, and connects
// to, every peer the other node knows. Add on an address that is already
// connected returns nil at once. An explicit Add overrides a goodbye
// remembered for addr.
func (n *Node) Add(addr string) error {
	return n.AddContext(context.Background(), addr)
}

// AddContext is Add with a context that bounds the whole operation (the
// network timeout bounds it too).
func (n *Node) AddContext(ctx context.Context, addr string) error {
	if addr == n.self.Addr {
		return ErrSelf
	}
	if !n.hold() {
		return ErrClosed
	}
	defer n.wg.Done()
	// The dial must also end when the node closes.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.wg.Go(func() {
		select {
		case <-n.ctx.Done():
			cancel()
		case <-ctx.Done():
		}
	})
	err := n.connect(ctx, addr, dialExplicit)
	switch {
	case err == nil:
		return nil
	case n.ctx.Err() != nil:
		// Close cut the dial or the handshake short: say so, whatever
		// error the cut produced on the way.
		return fmt.Errorf("%w: Add %s cut short: %w", ErrClosed, addr, err)
	case errors.Is(err, errPending):
		// The peer has a link with us on another conn (both dialled at
		// once) or is verifying a restart: wait for it.
		var he *HandshakeError
		if errors.As(err, &he) && n.waitUp(ctx, he.Addr, n.opts.networkTimeout) {
			return nil
		}
	case errors.Is(err, ErrSelf):
		return ErrSelf
	}
	return err
}

// Remotes returns the connected remotes, sorted by address.
func (n *Node) Remotes() []Remote {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.table.members()
}

// RemoteAdded registers f to run whenever a remote is added (connected or
// reconnected). Callbacks run on one goroutine of the node, one at a time,
// in the order the events happened, and never under a node lock; a slow
// callback delays later callbacks only. Callbacks may call any method but
// Close. A callback registered after New sees the events delivered after
// it is registered, which may include some that happened just before but
// not all of them; WithOnEvent registers one before the node starts. A nil
// f is ignored.
func (n *Node) RemoteAdded(f func(Remote)) { n.events.onAdded(f) }

// RemoteRemoved registers f to run whenever a remote is removed, gracefully
// or not. See RemoteAdded for how callbacks run.
func (n *Node) RemoteRemoved(f func(Remote)) { n.events.onRemoved(f) }

// RemoteChanged registers f to run after every addition or removal, with
// the membership right after it (which f must not modify). See RemoteAdded
// for how callbacks run.
func (n *Node) RemoteChanged(f func([]Remote)) { n.events.onChanged(f) }

// OnEvent registers f to run on every membership event: a remote added, a
// remote removed with the reason (it left, was lost, was replaced by a
// restarted instance, or was closed here), and a change of a connected
// remote's metadata. It runs after the callbacks of RemoteAdded,
// RemoteRemoved and RemoteChanged for the same event. See RemoteAdded for
// how callbacks run.
func (n *Node) OnEvent(f func(Event)) { n.events.onEvent(f) }

// CloseRemote closes the link to r gracefully: queued messages are sent,
// then a goodbye; neither side reconnects, and gossip from other nodes
// does not bring r back (until an explicit Add on either side). It also
// stops redialling r if it was lost. It returns ErrUnknownRemote if r is
// not known.
func (n *Node) CloseRemote(r Remote) error {
	if r.p == nil || r.p.node != n {
		return ErrUnknownRemote
	}
	var found bool
	n.step(func(t *table, now time.Time) { found = t.closeRemote(r.p, now) })
	if !found {
		return ErrUnknownRemote
	}
	n.log.Info("remote closed", "remote", r.p.addr, "instance", r.p.instance)
	return nil
}

// Close leaves the cluster gracefully: every remote gets the messages
// already queued for it and a goodbye, and will not redial this node. Close
// returns when every goroutine of the node has stopped; then Inbox is
// closed. It waits for a callback in progress, so it must not be called
// from a callback. Close is idempotent; later calls wait for the first.
func (n *Node) Close() error {
	n.close(true)
	return nil
}

// close stops the node; without graceful it drops every link without a
// goodbye, as a crashed process would (tests use it to simulate crashes).
func (n *Node) close(graceful bool) {
	n.mu.Lock()
	if n.table.closing {
		n.mu.Unlock()
		<-n.closed
		return
	}
	n.table.close(graceful, time.Now())
	acts := n.applyLocked(n.table.take())
	n.stopTimersLocked()
	n.mu.Unlock()
	n.cancel() // stops dials and handshakes in progress
	n.run(acts)
	// Close the listener only once the goodbyes are out: with a
	// multiplexing transport (mux, quic) closing the listener may end the
	// sessions the links run on.
	for _, a := range acts {
		if a.link != nil {
			<-a.link.done
		}
	}
	n.ln.Close()
	n.wg.Wait()
	n.events.close()
	<-n.events.done
	close(n.inbox)
	n.log.Info("node closed", "graceful", graceful)
	close(n.closed)
}

// acceptLoop hands each incoming conn to a handshake goroutine, as long as
// fewer than the handshake limit are in progress.
func (n *Node) acceptLoop() {
	sem := make(chan struct{}, n.opts.maxHandshakes)
	var b acceptloop.Backoff
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil || acceptloop.Closed(err) {
				return
			}
			// A transient failure (out of file descriptors, a conn reset
			// before it was accepted): log, back off, go on.
			if !b.Wait(n.log, "node", err, n.ctx.Done()) {
				return
			}
			continue
		}
		b.Reset()
		select {
		case sem <- struct{}{}:
		default:
			n.stats.handshakesShed.Add(1)
			n.log.Debug("too many handshakes in progress; connection dropped", "conn", conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		n.wg.Go(func() {
			defer func() { <-sem }()
			n.serveConn(conn)
		})
	}
}

// maintain feeds the table its periodic tick: tombstone expiry and
// anti-entropy (the full view to one random live link).
func (n *Node) maintain() {
	// A timer restarted before each wait, not a ticker: a ticker that fell
	// due while step blocked would be run by this goroutine, which the
	// race detector does not survive in a synctest bubble
	// (internal/racerepro).
	t := time.NewTimer(n.opts.healthyInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.ctx.Done():
			return
		}
		n.step(func(t *table, now time.Time) { t.tick(now) })
		t.Reset(n.opts.healthyInterval)
	}
}
