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

	"github.com/hashicorp/yamux"

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

// WithConfig sets the yamux configuration of every session (default
// yamux.DefaultConfig with its log discarded and MaxStreamWindowSize set
// to DefaultStreamWindow). New validates it with
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

// Transport multiplexes Dials to one address over one yamux session. It
// implements transport.Transport and io.Closer and is safe for concurrent
// use.
type Transport struct {
	tcp  *tcp.Transport
	conf *yamux.Config
	log  *slog.Logger

	mu        sync.Mutex
	closed    bool
	sessions  map[string]*session
	listeners map[*listener]struct{}
}

var (
	_ transport.Transport = (*Transport)(nil)
	_ io.Closer           = (*Transport)(nil)
)

// session is one dialled yamux session, or the attempt to make it. ready is
// closed once sess or err is set.
type session struct {
	ready chan struct{}
	sess  *yamux.Session
	tls   *tls.Conn // nil without TLS
	err   error
}

// New returns a Transport configured by opts.
func New(opts ...Option) (*Transport, error) {
	var o options
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
	return &Transport{
		tcp: tt, conf: conf, log: o.log,
		sessions:  make(map[string]*session),
		listeners: make(map[*listener]struct{}),
	}, nil
}

// Dial opens a new stream to addr, on the session to addr if one is alive
// and on a new session otherwise.
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, &net.OpError{Op: "dial", Net: "mux", Err: err}
		}
		s, err := t.session(ctx, addr)
		if err != nil {
			return nil, err
		}
		st, err := s.sess.OpenStream()
		if err == nil {
			return newConn(st, s.tls), nil
		}
		// The session died between the check and the open: replace it once.
		t.drop(addr, s)
		if attempt > 0 {
			return nil, &net.OpError{Op: "dial", Net: "mux", Err: err}
		}
	}
}

// session returns a live session to addr, dialling one if needed. Callers
// that find a dial in progress wait for it instead of dialling again.
func (t *Transport) session(ctx context.Context, addr string) (*session, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: "mux", Err: net.ErrClosed}
		}
		s := t.sessions[addr]
		if s == nil {
			s = &session{ready: make(chan struct{})}
			t.sessions[addr] = s
			t.mu.Unlock()
			t.connect(ctx, addr, s)
			if s.err != nil {
				return nil, s.err
			}
			return s, nil
		}
		t.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: "mux", Err: ctx.Err()}
		}
		if s.err == nil && !s.sess.IsClosed() {
			return s, nil
		}
		t.drop(addr, s)
		if s.err != nil && !isCtxErr(s.err) {
			return nil, s.err // the shared attempt failed for a real reason
		}
		// Dead session, or another caller's context ended its dial: retry.
	}
}

// connect dials addr and fills s. Failed attempts leave the map at once so
// that the next Dial tries again.
func (t *Transport) connect(ctx context.Context, addr string, s *session) {
	defer close(s.ready)
	c, err := t.tcp.Dial(ctx, addr)
	if err == nil {
		s.sess, err = yamux.Client(c, t.conf)
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		s.err = err
		t.drop(addr, s)
		return
	}
	s.tls, _ = c.(*tls.Conn)
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed { // Close ran while we dialled and did not see this session
		s.sess.Close()
		s.sess, s.err = nil, &net.OpError{Op: "dial", Net: "mux", Err: net.ErrClosed}
	}
}

// drop removes s from the pool if it is still addr's entry, and closes its
// session.
func (t *Transport) drop(addr string, s *session) {
	t.mu.Lock()
	if t.sessions[addr] == s {
		delete(t.sessions, addr)
	}
	t.mu.Unlock()
	if s.sess != nil {
		s.sess.Close()
	}
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Sessions reports how many dialled sessions the transport holds (live or
// not yet noticed dead). It is meant for tests and metrics.
func (t *Transport) Sessions() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions)
}

// Close closes every session the transport dialled and every listener it
// made, and waits for their goroutines. Later Dials and Listens fail with
// net.ErrClosed. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	sessions := t.sessions
	t.sessions = make(map[string]*session)
	listeners := t.listeners
	t.listeners = make(map[*listener]struct{})
	t.mu.Unlock()
	for _, s := range sessions {
		<-s.ready
		if s.sess != nil {
			s.sess.Close()
		}
	}
	for l := range listeners {
		l.Close()
	}
	return nil
}
