package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/peerkit/peerkit/internal/connpool"
	"github.com/peerkit/peerkit/transport"
)

// Default values of the options.
const (
	DefaultKeepAlive = 15 * time.Second
	DefaultNoDelay   = true
)

// Option configures a Transport. Options apply in order (the last one for a
// setting wins) and are validated once, by New.
type Option func(*options) error

type options struct {
	tls         *tls.Config
	keepAlive   time.Duration
	noDelay     bool
	dialTimeout time.Duration
	log         *slog.Logger
}

// WithTLS runs every conn over TLS with conf, on both the listening and the
// dialling side. See the package documentation for how ServerName is set.
// A nil conf is an error.
func WithTLS(conf *tls.Config) Option {
	return func(o *options) error {
		if conf == nil {
			return errors.New("tcp: WithTLS: nil *tls.Config")
		}
		o.tls = conf
		return nil
	}
}

// WithKeepAlive sets the TCP keep-alive period of dialled and accepted
// conns (default DefaultKeepAlive). Zero means the default; a negative
// value disables keep-alives.
func WithKeepAlive(d time.Duration) Option {
	return func(o *options) error {
		o.keepAlive = d
		return nil
	}
}

// WithNoDelay sets TCP_NODELAY on dialled and accepted conns (default true:
// writes are sent at once, without Nagle's delay).
func WithNoDelay(on bool) Option {
	return func(o *options) error {
		o.noDelay = on
		return nil
	}
}

// WithDialTimeout bounds each Dial, including the TLS handshake, in
// addition to the context passed to Dial. Zero (the default) means only
// the context bounds it; a negative value is an error.
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("tcp: WithDialTimeout: negative duration %v", d)
		}
		o.dialTimeout = d
		return nil
	}
}

// WithLogger sets where the transport logs what it recovers from, such as
// an Accept that failed for a moment because the process ran out of file
// descriptors (default: nothing is logged). A nil logger is an error.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) error {
		if log == nil {
			return errors.New("tcp: WithLogger: nil *slog.Logger")
		}
		o.log = log
		return nil
	}
}

// Transport dials and accepts TCP (optionally TLS) conns. It implements
// transport.Transport and is safe for concurrent use.
type Transport struct {
	tls         *tls.Config // nil: plain TCP
	keepAlive   time.Duration
	noDelay     bool
	dialTimeout time.Duration
	log         *slog.Logger
}

var _ transport.Transport = (*Transport)(nil)

// New returns a Transport configured by opts.
func New(opts ...Option) (*Transport, error) {
	o := options{keepAlive: DefaultKeepAlive, noDelay: DefaultNoDelay, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("tcp: nil Option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.keepAlive == 0 {
		o.keepAlive = DefaultKeepAlive
	}
	t := &Transport{keepAlive: o.keepAlive, noDelay: o.noDelay, dialTimeout: o.dialTimeout, log: o.log}
	if o.tls != nil {
		t.tls = o.tls.Clone()
	}
	return t, nil
}

// Close does nothing and returns nil: the transport holds no shared state.
// Listeners and conns are closed by their own Close.
func (t *Transport) Close() error { return nil }

// Listen listens for TCP conns on addr ("host:port").
func (t *Transport) Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: t.keepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	if t.tls == nil {
		return &plainListener{Listener: ln, t: t}, nil
	}
	return newTLSListener(ln, t), nil
}

// Dial opens a TCP conn to addr and, with TLS, completes the handshake
// before it returns.
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	if t.dialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.dialTimeout)
		defer cancel()
	}
	d := net.Dialer{KeepAlive: t.keepAlive}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, wrapDialErr(err)
	}
	t.tune(c)
	if t.tls == nil {
		return c, nil
	}
	tc := tls.Client(c, t.clientConfig(addr))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tcp: TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// clientConfig returns the config for dialling addr, with ServerName set
// from addr's host when the caller left it empty and verifies certificates.
func (t *Transport) clientConfig(addr string) *tls.Config {
	if t.tls.ServerName != "" || t.tls.InsecureSkipVerify {
		return t.tls
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c := t.tls.Clone()
	c.ServerName = host
	return c
}

func (t *Transport) tune(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(t.noDelay)
	}
}

func wrapDialErr(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return connpool.Refused(err)
	}
	return err
}
