package mux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/peerkit/peerkit/internal/connpool"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/tcp"
)

// Option configures a Transport. Options apply in order (the last one for a
// setting wins) and are validated once, by New.
type Option func(*options) error

type options struct {
	tls     *tls.Config
	yamux   *yamux.Config
	tcpOpts []tcp.Option
	log     *slog.Logger
	idle    time.Duration
}

// WithTLS runs every session over TLS with conf, on both the listening and
// the dialling side (see package tcp for how ServerName is chosen). A nil
// conf is an error.
func WithTLS(conf *tls.Config) Option {
	return func(o *options) error {
		if conf == nil {
			return errors.New("mux: WithTLS: nil *tls.Config")
		}
		o.tls = conf
		return nil
	}
}

// DefaultStreamWindow is the largest yamux stream window the default
// configuration grants (yamux's own default is 256 KiB). peerkit runs one
// stream per link, so TCP already does the flow control; with a small
// window, a receiver's window updates queue behind its own outgoing data
// under packet loss, the sender's writer stalls with its heartbeats, and a
// healthy peer looks silent. The window is credit, not memory allocated up
// front: buffers grow only with data actually unread.
const DefaultStreamWindow = 16 << 20

// DefaultStreamCloseTimeout is how long, in the default configuration, a
// closed stream waits for the peer to close its side before it is reset
// (yamux's own default is 5 minutes). yamux v0.1.2 arms that timer on
// Close and does not stop it when the session ends, so every session that
// ended with a stream half-closed stayed in memory for the whole timeout:
// under churn, five minutes of sessions (tens of KiB each). A peerkit peer
// closes its side as soon as it reads the end of the stream, so a few
// seconds is plenty.
const DefaultStreamCloseTimeout = 5 * time.Second

// WithConfig sets the yamux configuration of every session (default
// yamux.DefaultConfig with its log discarded, MaxStreamWindowSize set to
// DefaultStreamWindow and StreamCloseTimeout to DefaultStreamCloseTimeout). New validates it with
// yamux.VerifyConfig and keeps a copy. A nil config is an error.
func WithConfig(conf *yamux.Config) Option {
	return func(o *options) error {
		if conf == nil {
			return errors.New("mux: WithConfig: nil *yamux.Config")
		}
		o.yamux = conf.Clone()
		return nil
	}
}

// WithTCP passes options to the underlying TCP transport, such as
// tcp.WithKeepAlive or tcp.WithDialTimeout. Use WithTLS, not tcp.WithTLS.
func WithTCP(opts ...tcp.Option) Option {
	return func(o *options) error {
		o.tcpOpts = append(o.tcpOpts, opts...)
		return nil
	}
}

// WithLogger sets where the transport logs what it recovers from, such as
// an Accept that failed for a moment because the process ran out of file
// descriptors (default: nothing is logged). The TCP transport underneath
// logs to it too, in place of a tcp.WithLogger passed with WithTCP. A nil
// logger is an error.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) error {
		if log == nil {
			return errors.New("mux: WithLogger: nil *slog.Logger")
		}
		o.log = log
		return nil
	}
}

// DefaultIdleConnTimeout is how long a dialled session with no open stream
// is kept before it is closed (see WithIdleConnTimeout).
const DefaultIdleConnTimeout = 30 * time.Second

// WithIdleConnTimeout sets how long a dialled session is kept once its last
// stream has been closed (default DefaultIdleConnTimeout), after the field
// of the same name in net/http's Transport: a Dial within that time opens
// its stream on the same session, and after it the session and its TCP
// conn are closed. It must be positive.
func WithIdleConnTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("mux: WithIdleConnTimeout: %v is not positive", d)
		}
		o.idle = d
		return nil
	}
}

// Transport multiplexes Dials to one address over one yamux session. It
// implements transport.Transport and io.Closer and is safe for concurrent
// use.
type Transport struct {
	tcp  *tcp.Transport
	conf *yamux.Config
	log  *slog.Logger
	pool *connpool.Pool[*session]

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
}

var (
	_ transport.Transport = (*Transport)(nil)
	_ io.Closer           = (*Transport)(nil)
)

// session is one dialled yamux session and, with TLS, its conn.
type session struct {
	sess *yamux.Session
	tls  *tls.Conn // nil without TLS
}

func (s *session) Alive() bool  { return !s.sess.IsClosed() }
func (s *session) Close() error { return s.sess.Close() }

// New returns a Transport configured by opts.
func New(opts ...Option) (*Transport, error) {
	o := options{idle: DefaultIdleConnTimeout}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("mux: nil Option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	conf := o.yamux
	if conf == nil {
		conf = yamux.DefaultConfig()
		conf.LogOutput = nil
		conf.MaxStreamWindowSize = DefaultStreamWindow
		conf.StreamCloseTimeout = DefaultStreamCloseTimeout
	}
	if conf.LogOutput == nil && conf.Logger == nil {
		conf.LogOutput = io.Discard
	}
	if err := yamux.VerifyConfig(conf); err != nil {
		return nil, fmt.Errorf("mux: invalid yamux config: %w", err)
	}
	tcpOpts := slices.Clip(o.tcpOpts)
	if o.tls != nil {
		tcpOpts = append(tcpOpts, tcp.WithTLS(o.tls))
	}
	if o.log != nil {
		tcpOpts = append(tcpOpts, tcp.WithLogger(o.log))
	} else {
		o.log = slog.New(slog.DiscardHandler)
	}
	tt, err := tcp.New(tcpOpts...)
	if err != nil {
		return nil, fmt.Errorf("mux: %w", err)
	}
	t := &Transport{
		tcp: tt, conf: conf, log: o.log,
		listeners: make(map[*listener]struct{}),
	}
	t.pool = connpool.New(connpool.Config[*session]{Net: "mux", Dial: t.dialSession, IdleTimeout: o.idle})
	return t, nil
}

// Dial opens a new stream to addr, on the session to addr if one is alive
// and on a new session otherwise.
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var st *yamux.Stream
	lease, err := t.pool.Open(ctx, addr, func(s *session) (err error) {
		st, err = s.sess.OpenStream()
		return err
	})
	if err != nil {
		return nil, err
	}
	return newConn(st, lease.Session().tls, lease.Release), nil
}

// dialSession dials addr and runs a yamux client session on the conn.
func (t *Transport) dialSession(ctx context.Context, addr string) (*session, error) {
	c, err := t.tcp.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	sess, err := yamux.Client(c, t.conf)
	if err != nil { // cannot happen: New verified the config
		c.Close()
		return nil, err
	}
	tc, _ := c.(*tls.Conn)
	return &session{sess: sess, tls: tc}, nil
}

// Sessions reports how many dialled sessions the transport holds (live or
// not yet noticed dead). It is meant for tests and metrics.
func (t *Transport) Sessions() int { return t.pool.Len() }

// Close closes every session the transport dialled and every listener it
// made, and waits for their goroutines. Later Dials and Listens fail with
// net.ErrClosed. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	listeners := t.listeners
	t.listeners = make(map[*listener]struct{})
	t.mu.Unlock()
	t.pool.Close()
	for l := range listeners {
		l.Close()
	}
	return nil
}
