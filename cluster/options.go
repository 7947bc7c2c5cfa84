package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/wire"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/tcp"
)

// Option configures a Node. Options apply in order (the last one wins) and
// the result is validated once, by New; an invalid value makes New return
// an error that names the option.
type Option func(*options) error

// Defaults.
const (
	DefaultHealthyInterval      = 1 * time.Second
	DefaultNetworkTimeout       = 5 * time.Second
	DefaultReconnectInterval    = 1 * time.Second
	DefaultMaxReconnectInterval = 1 * time.Minute
	DefaultInboxSize            = 1024
	DefaultMaxMessageSize       = 4 << 20
	DefaultSendQueueSize        = 1024
	DefaultMaxHandshakes        = 128
	DefaultMaxRemotes           = 4096
	DefaultMaxPeerList          = 4096
	DefaultTombstoneTTL         = 10 * time.Minute
	DefaultMaxTombstones        = 4096
	DefaultRejoinInterval       = 30 * time.Second
	maxControlSize              = 4 << 20 // control frames: peer lists, meta
)

type options struct {
	transport         transport.Transport
	codec             codec.Codec
	healthyInterval   time.Duration
	networkTimeout    time.Duration
	handshakeTimeout  time.Duration
	reconnectBase     time.Duration
	reconnectMax      time.Duration
	reconnectMaxSet   bool
	reconnectAttempts int // 0: forever
	logger            *slog.Logger
	inboxSize         int
	handler           func(*Message)
	onEvent           []func(Event)
	maxMessageSize    int
	sendQueueSize     int
	maxHandshakes     int
	maxRemotes        int
	maxPeerList       int
	tombstoneTTL      time.Duration
	maxTombstones     int
	advertiseAddr     string
	keys              *keyring // nil: no authentication
	meta              []byte
	capabilities      byte                       // announced in the hello; tests set unknown bits
	interfaces        func() ([]hostAddr, error) // this host's addresses; tests replace it
	seeds             []string
	rejoinInterval    time.Duration
	resolver          Resolver
}

func defaultOptions() options {
	return options{
		codec:           codec.Gob,
		healthyInterval: DefaultHealthyInterval,
		networkTimeout:  DefaultNetworkTimeout,
		reconnectBase:   DefaultReconnectInterval,
		reconnectMax:    DefaultMaxReconnectInterval,
		inboxSize:       DefaultInboxSize,
		maxMessageSize:  DefaultMaxMessageSize,
		sendQueueSize:   DefaultSendQueueSize,
		maxHandshakes:   DefaultMaxHandshakes,
		maxRemotes:      DefaultMaxRemotes,
		maxPeerList:     DefaultMaxPeerList,
		tombstoneTTL:    DefaultTombstoneTTL,
		maxTombstones:   DefaultMaxTombstones,
		capabilities:    wire.Capabilities,
		interfaces:      interfaceAddrs,
		rejoinInterval:  DefaultRejoinInterval,
		resolver:        net.DefaultResolver,
	}
}

// validate checks the combination of options and fills derived defaults.
func (o *options) validate() error {
	if o.healthyInterval >= o.networkTimeout {
		return fmt.Errorf("cluster: WithHealthyInterval: %v must be shorter than the network timeout %v, or healthy peers time out", o.healthyInterval, o.networkTimeout)
	}
	if o.reconnectMax < o.reconnectBase && !o.reconnectMaxSet {
		o.reconnectMax = o.reconnectBase // only the base was set, above the default cap
	}
	if o.reconnectMax < o.reconnectBase {
		return fmt.Errorf("cluster: WithMaxReconnectInterval: %v is below the reconnect interval %v (WithReconnectInterval), the backoff's base", o.reconnectMax, o.reconnectBase)
	}
	if o.handshakeTimeout == 0 {
		o.handshakeTimeout = o.networkTimeout
	}
	if o.transport == nil {
		tr, err := tcp.New()
		if err != nil {
			return err
		}
		o.transport = tr
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func positive(name string, d time.Duration, set func(*options)) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("cluster: %s: must be positive, got %v", name, d)
		}
		set(o)
		return nil
	}
}

func atLeast(name string, n, least int, set func(*options)) Option {
	return func(o *options) error {
		if n < least {
			return fmt.Errorf("cluster: %s: must be at least %d, got %d", name, least, n)
		}
		set(o)
		return nil
	}
}

// WithTransport sets how the node listens and dials. The default is TCP
// (transport/tcp with its defaults). The node never closes a transport it
// is given.
func WithTransport(t transport.Transport) Option {
	return func(o *options) error {
		if t == nil {
			return fmt.Errorf("cluster: WithTransport: transport is nil")
		}
		o.transport = t
		return nil
	}
}

// WithCodec sets the codec of control messages (default codec.Gob). Nodes
// with different codecs refuse each other during the handshake.
func WithCodec(c codec.Codec) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("cluster: WithCodec: codec is nil")
		}
		if n := len(c.Name()); n == 0 || n > wire.MaxCodecName {
			return fmt.Errorf("cluster: WithCodec: codec name must be 1..%d bytes, got %q", wire.MaxCodecName, c.Name())
		}
		o.codec = c
		return nil
	}
}

// WithHealthyInterval sets how often an idle link sends a heartbeat
// (default 1 s). It must be shorter than the network timeout.
func WithHealthyInterval(d time.Duration) Option {
	return positive("WithHealthyInterval", d, func(o *options) { o.healthyInterval = d })
}

// WithNetworkTimeout sets how long a link may stay silent, while its reader
// waits on the network, before the remote is removed ungracefully (default
// 5 s). It also bounds dials, handshakes, and how long Send waits for room
// in a full send queue.
func WithNetworkTimeout(d time.Duration) Option {
	return positive("WithNetworkTimeout", d, func(o *options) { o.networkTimeout = d })
}

// WithHandshakeTimeout bounds a whole handshake, on both sides (default:
// the network timeout).
func WithHandshakeTimeout(d time.Duration) Option {
	return positive("WithHandshakeTimeout", d, func(o *options) { o.handshakeTimeout = d })
}

// WithReconnectInterval sets the base of the capped, jittered exponential
// backoff with which ungracefully removed remotes are redialled (default
// 1 s, doubling up to WithMaxReconnectInterval).
func WithReconnectInterval(d time.Duration) Option {
	return positive("WithReconnectInterval", d, func(o *options) { o.reconnectBase = d })
}

// WithMaxReconnectInterval caps the reconnect backoff (default 1 min, or
// the reconnect interval if that is longer). It must not be below the
// reconnect interval, the backoff's base.
func WithMaxReconnectInterval(d time.Duration) Option {
	return positive("WithMaxReconnectInterval", d, func(o *options) { o.reconnectMax, o.reconnectMaxSet = d, true })
}

// WithReconnectAttempts limits how many times an ungracefully removed
// remote is redialled before it is forgotten. 0, the default, retries
// forever.
func WithReconnectAttempts(n int) Option {
	return atLeast("WithReconnectAttempts", n, 0, func(o *options) { o.reconnectAttempts = n })
}

// WithLogger sets the structured logger (default: discard). Records carry
// stable keys: node, remote, instance, err, verdict, reason, attempt and
// dialed; lost and refused peers log at Info and Warn, routine detail at
// Debug.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("cluster: WithLogger: logger is nil")
		}
		o.logger = l
		return nil
	}
}

// WithInboxSize sets the capacity of the Inbox channel (default 1024).
// When the Inbox is full the node stops reading from its links; the stream
// transport's backpressure then reaches the senders. Nobody is removed
// for it.
func WithInboxSize(n int) Option {
	return atLeast("WithInboxSize", n, 0, func(o *options) { o.inboxSize = n })
}

// WithHandler has every message delivered by a call of h instead of on
// the Inbox, which then carries none. Each link's reader calls h with each
// message it reads, before reading the next: in order for each remote, and
// concurrently for different remotes. The message and its Payload are
// lent to h and valid only until it returns (their memory is reused for
// the next message), so h must copy what it keeps. A payload that fits
// in the read buffer is lent from it, a larger one is read into a pooled
// buffer of its size, and nothing is handed between goroutines on the
// way, which makes this the fastest way to receive.
//
// A slow h has the effect of a full Inbox: that remote's link stops
// reading until h returns, the transport's backpressure reaches the
// sender, and nobody is removed for it. h may call the node's methods,
// Send included, except Close: Close waits for running calls of h to
// return, so a Close from h would wait for itself (call it from another
// goroutine). A nil h restores the Inbox.
func WithHandler(h func(*Message)) Option {
	return func(o *options) error {
		o.handler = h
		return nil
	}
}

// WithOnEvent registers f as OnEvent does, before the node starts, so
// that f sees every membership event from the first. A callback
// registered after New returns may miss the first ones: by then the node
// may have joined a seed in the background (WithSeeds) or been dialled by
// a peer. It may be given more than once; the callbacks run in the order
// given. A nil f is an error.
func WithOnEvent(f func(Event)) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("cluster: WithOnEvent: nil callback")
		}
		o.onEvent = append(o.onEvent, f)
		return nil
	}
}

// WithMaxMessageSize sets the largest payload Send accepts and a peer may
// send (default 4 MiB, at most 1 GiB). A frame that declares more is
// refused from its header, before anything is allocated, and the link is
// dropped.
func WithMaxMessageSize(n int) Option {
	return func(o *options) error {
		if n < 1 || n > wire.MaxFrameLimit {
			return fmt.Errorf("cluster: WithMaxMessageSize: must be 1..%d, got %d", wire.MaxFrameLimit, n)
		}
		o.maxMessageSize = n
		return nil
	}
}

// WithSendQueueSize sets how many messages may wait for one remote's
// writer, those in its hands included (default 1024). Send waits while the queue is full, until there
// is room, the network timeout passes (ErrSendTimeout) or SendContext's
// context ends (its error); Broadcast does not let one full queue delay
// the others.
func WithSendQueueSize(n int) Option {
	return atLeast("WithSendQueueSize", n, 1, func(o *options) { o.sendQueueSize = n })
}

// WithMaxHandshakes bounds the incoming handshakes in progress at once
// (default 128); connections beyond it are closed at once.
func WithMaxHandshakes(n int) Option {
	return atLeast("WithMaxHandshakes", n, 1, func(o *options) { o.maxHandshakes = n })
}

// WithMaxRemotes bounds the number of remotes (default 4096). Handshakes
// beyond it are refused as busy, and gossiped peers are not dialled.
func WithMaxRemotes(n int) Option {
	return atLeast("WithMaxRemotes", n, 1, func(o *options) { o.maxRemotes = n })
}

// WithMaxPeerList bounds how many peers one gossip message may carry
// (default 4096); the rest of a longer list is ignored.
func WithMaxPeerList(n int) Option {
	return atLeast("WithMaxPeerList", n, 1, func(o *options) { o.maxPeerList = n })
}

// WithTombstoneTTL sets how long a remote that said goodbye is kept from
// being redialled because of gossip (default 10 min).
func WithTombstoneTTL(d time.Duration) Option {
	return positive("WithTombstoneTTL", d, func(o *options) { o.tombstoneTTL = d })
}

// WithAdvertiseAddr sets the address other nodes should dial to reach this
// node. By default a node advertises its listener's address, except that
// on a wildcard (0.0.0.0, ::, or an empty host) it advertises an address
// of an up, non-loopback interface of this host, and logs which: a private
// IPv4 address if there is one, else another IPv4 address, and IPv6 only
// where the host has no IPv4 address. New fails if there is none. Set it behind a NAT, or to choose among several
// interfaces. A wildcard host or port 0 is an error: no other host can
// dial them.
func WithAdvertiseAddr(addr string) Option {
	return func(o *options) error {
		if err := checkAdvertise(addr); err != nil {
			return fmt.Errorf("cluster: WithAdvertiseAddr: %v", err)
		}
		if len(addr) > wire.MaxAddr {
			return fmt.Errorf("cluster: WithAdvertiseAddr: %q is longer than %d bytes", addr, wire.MaxAddr)
		}
		o.advertiseAddr = addr
		return nil
	}
}

// WithMeta sets metadata (at most 4096 bytes) carried in the handshake and
// visible to peers as Remote.Meta. Node.SetMeta changes it later.
func WithMeta(meta []byte) Option {
	return func(o *options) error {
		if len(meta) > wire.MaxMeta {
			return fmt.Errorf("cluster: WithMeta: at most %d bytes, got %d", wire.MaxMeta, len(meta))
		}
		o.meta = append([]byte(nil), meta...)
		return nil
	}
}

// WithSeeds makes the node join the cluster through seeds (the forms of
// Join: host:port, dns+host:port, dnssrv+_service._proto.name) when it
// starts, in the background, and again every rejoin interval while it knows
// fewer remotes than the seeds resolve to, so that a cluster restarted all
// at once, or a node started before its seeds, converges by itself. A seed
// may name this node; it is skipped.
func WithSeeds(seeds ...string) Option {
	return func(o *options) error {
		for _, s := range seeds {
			if err := checkSeed(s); err != nil {
				return fmt.Errorf("cluster: WithSeeds: %v", err)
			}
		}
		o.seeds = append([]string(nil), seeds...)
		return nil
	}
}

// checkSeed reports why s is not a seed in one of Join's forms.
func checkSeed(s string) error {
	if name, ok := strings.CutPrefix(s, "dnssrv+"); ok {
		if name == "" || strings.ContainsAny(name, ":/ ") {
			return fmt.Errorf("%q: dnssrv+ takes a DNS name such as _gossip._tcp.peers.default.svc", s)
		}
		return nil
	}
	hp := strings.TrimPrefix(s, "dns+")
	if host, port, err := net.SplitHostPort(hp); err != nil || host == "" || port == "" {
		return fmt.Errorf("%q is not host:port, dns+host:port or dnssrv+name", s)
	}
	return nil
}

// WithRejoinInterval sets how often a node with WithSeeds re-resolves and
// rejoins its seeds while it knows fewer remotes than they name (default
// 30 s).
func WithRejoinInterval(d time.Duration) Option {
	return positive("WithRejoinInterval", d, func(o *options) { o.rejoinInterval = d })
}

// WithResolver sets how seeds' names are looked up (default
// net.DefaultResolver): for instance a *net.Resolver that asks a given DNS
// server.
func WithResolver(r Resolver) Option {
	return func(o *options) error {
		if r == nil {
			return fmt.Errorf("cluster: WithResolver: resolver is nil")
		}
		o.resolver = r
		return nil
	}
}
