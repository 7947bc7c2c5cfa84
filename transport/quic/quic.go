package quic

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/peerkit/peerkit/internal/connpool"
	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/transport"
)

// NextProto is the ALPN protocol the transport offers and requires when
// the TLS config names none.
const NextProto = "peerkit"

// Defaults of the options.
const (
	DefaultHandshakeTimeout = 3 * time.Second
	// DefaultIdleTimeout is short because a peer that died without a
	// trace (SIGKILL, power) and restarted on the same port drops the old
	// connection's packets without a word: until the idle timeout, Dials
	// reuse the dead connection and their handshakes time out.
	DefaultIdleTimeout     = 10 * time.Second
	DefaultMaxStreams      = 1024
	DefaultIdleConnTimeout = 30 * time.Second
)

// Option configures a Transport. Options apply in order (the last one for a
// setting wins) and are validated once, by New.
type Option func(*options) error

type options struct {
	handshake  time.Duration
	idle       time.Duration
	maxStreams int64
	log        *slog.Logger
	idleConn   time.Duration
}

// WithHandshakeTimeout bounds how long a Dial waits for the first answer
// of a new QUIC connection's handshake (quic-go's HandshakeIdleTimeout;
// default DefaultHandshakeTimeout). When no packet comes back the Dial
// fails with transport.ErrRefused. It must be positive.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("quic: WithHandshakeTimeout: %v is not positive", d)
		}
		o.handshake = d
		return nil
	}
}

// WithIdleTimeout sets how long a connection may hear nothing from its
// peer before it is declared dead (quic-go's MaxIdleTimeout; default
// DefaultIdleTimeout). Keep-alive packets are sent every third of it, so
// a live peer never idles out. It must be positive. This is about a dead
// peer; WithIdleConnTimeout is about an unused connection.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("quic: WithIdleTimeout: %v is not positive", d)
		}
		o.idle = d
		return nil
	}
}

// WithIdleConnTimeout sets how long a dialled connection is kept once its
// last stream has been closed (default DefaultIdleConnTimeout), after the
// field of the same name in net/http's Transport: a Dial within that time
// opens its stream on the same connection, and after it the connection is
// closed (with a CONNECTION_CLOSE, so the peer frees it too). It is not
// WithIdleTimeout, which bounds how long a connection may hear nothing
// from its peer, streams or not, before QUIC declares it dead; keep-alives
// stop that from ever happening to a live peer, so without this timeout an
// unused connection would stay open for good. It must be positive.
func WithIdleConnTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("quic: WithIdleConnTimeout: %v is not positive", d)
		}
		o.idleConn = d
		return nil
	}
}

// WithMaxStreams sets how many streams a peer may have open at once on one
// connection (default DefaultMaxStreams); further Dials wait for one to
// close. It must be positive.
func WithMaxStreams(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("quic: WithMaxStreams: %d is not positive", n)
		}
		o.maxStreams = int64(n)
		return nil
	}
}

// WithLogger sets where the transport logs what it recovers from, such as
// a listener whose accept loop met an error that was not its close
// (default: nothing is logged). A nil logger is an error.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) error {
		if log == nil {
			return errors.New("quic: WithLogger: nil *slog.Logger")
		}
		o.log = log
		return nil
	}
}

// InsecureLocalTLS returns a TLS config for local experiments and tests:
// it serves a freshly generated self-signed certificate and, when dialling,
// accepts any certificate (InsecureSkipVerify). Anyone on the path can
// impersonate a peer that uses it. The name says so on purpose: New never
// falls back to it.
func InsecureLocalTLS() (*tls.Config, error) {
	return selfsigned.InsecureConfig()
}

// Transport opens one QUIC connection per remote address and one stream
// per Dial. It implements transport.Transport and io.Closer and is safe for
// concurrent use.
type Transport struct {
	server *tls.Config // as given, with TLS 1.3 and ALPN
	client *tls.Config
	conf   *quicgo.Config
	log    *slog.Logger
	pool   *connpool.Pool[*session]

	mu        sync.Mutex
	closed    bool
	sock      *dialSocket // opened by the first Dial
	listeners map[*listener]struct{}
}

var (
	_ transport.Transport = (*Transport)(nil)
	_ io.Closer           = (*Transport)(nil)
)

// New returns a Transport that uses tlsConf for both directions: Listen
// serves its certificates, Dial verifies the server with it (ServerName is
// set from the dialled host when empty, unless InsecureSkipVerify is set).
// The config is cloned; MinVersion is raised to TLS 1.3 and NextProtos
// defaults to NextProto. A nil tlsConf is an error: for local use without
// certificates, pass InsecureLocalTLS() explicitly.
func New(tlsConf *tls.Config, opts ...Option) (*Transport, error) {
	if tlsConf == nil {
		return nil, errors.New("quic: nil *tls.Config (QUIC always runs TLS 1.3; see InsecureLocalTLS for local use)")
	}
	o := options{
		handshake:  DefaultHandshakeTimeout,
		idle:       DefaultIdleTimeout,
		idleConn:   DefaultIdleConnTimeout,
		maxStreams: DefaultMaxStreams,
		log:        slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("quic: nil Option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if tlsConf.MaxVersion != 0 && tlsConf.MaxVersion < tls.VersionTLS13 {
		return nil, errors.New("quic: tls.Config.MaxVersion is below TLS 1.3")
	}
	conf := tlsConf.Clone()
	conf.MinVersion = tls.VersionTLS13
	if len(conf.NextProtos) == 0 {
		conf.NextProtos = []string{NextProto}
	}
	t := &Transport{
		server: conf,
		client: conf,
		log:    o.log,
		conf: &quicgo.Config{
			HandshakeIdleTimeout: o.handshake,
			MaxIdleTimeout:       o.idle,
			KeepAlivePeriod:      o.idle / 3,
			MaxIncomingStreams:   o.maxStreams,
		},
		listeners: make(map[*listener]struct{}),
	}
	t.pool = connpool.New(connpool.Config[*session]{Net: "quic", Dial: t.dialSession, IdleTimeout: o.idleConn})
	return t, nil
}

// clientConfig returns the TLS config for dialling host.
func (t *Transport) clientConfig(host string) *tls.Config {
	if t.client.ServerName != "" || t.client.InsecureSkipVerify {
		return t.client
	}
	c := t.client.Clone()
	c.ServerName = host
	return c
}

// Connections reports how many dialled QUIC connections the transport
// holds. It is meant for tests and metrics.
func (t *Transport) Connections() int { return t.pool.Len() }

// Close closes every connection the transport dialled and every listener
// it made, and waits for the goroutines it started. Later Dials and Listens
// fail with net.ErrClosed. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	listeners := t.listeners
	t.listeners = make(map[*listener]struct{})
	t.mu.Unlock()
	for l := range listeners {
		l.Close()
	}
	t.pool.Close()
	t.mu.Lock()
	sock := t.sock
	t.sock = nil
	t.mu.Unlock()
	if sock != nil {
		sock.close()
	}
	return nil
}

func closedErr(op string) error {
	return &net.OpError{Op: op, Net: "quic", Err: net.ErrClosed}
}
