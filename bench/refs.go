package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// ErrTestOnly reports a reference baseline that exists only in the
// package's test binary (go test -bench): the yamux and quic-go references
// import those libraries directly, which only their transport packages may
// do in the module's non-test code.
var ErrTestOnly = errors.New("reference baseline available only under go test")

// libraryRefs holds the reference baselines defined in test files.
var libraryRefs = map[string]func(p *Pair, fail func(error) (*Pair, error)) (*Pair, error){}

// RefAvailable reports whether RawPair can build the reference baseline
// name in this binary.
func RefAvailable(name string) bool {
	return name == RefTCP || name == RefTLS || name == RefPipe || libraryRefs[name] != nil
}

// refPair builds a reference baseline: the underlying library used
// directly, without peerkit's transport packages.
func refPair(name string) (*Pair, error) {
	p := &Pair{}
	fail := func(err error) (*Pair, error) {
		p.Close()
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	switch name {
	case RefPipe:
		a, b := net.Pipe()
		p.close = append(p.close, func() { a.Close(); b.Close() })
		p.A, p.B = newRawEnd(a), newRawEnd(b)
		return p, nil
	}
	if f := libraryRefs[name]; f != nil {
		return f(p, fail)
	}
	if name == RefYamux || name == RefQUIC {
		return nil, fmt.Errorf("bench: %s: %w", name, ErrTestOnly)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	p.close = append(p.close, func() { ln.Close() })
	a, b, err := connect(ln, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) })
	if err != nil {
		return fail(err)
	}
	p.close = append(p.close, func() { a.Close(); b.Close() })
	switch name {
	case RefTCP:
		p.A, p.B = newRawEnd(a), newRawEnd(b)
	case RefTLS:
		conf, err := TLSConfig()
		if err != nil {
			return fail(err)
		}
		ta, tb := tls.Client(a, conf), tls.Server(b, conf)
		errc := make(chan error, 1)
		go func() { errc <- tb.Handshake() }()
		err = ta.Handshake()
		if err2 := <-errc; err == nil {
			err = err2
		}
		if err != nil {
			return fail(err)
		}
		p.A, p.B = newRawEnd(ta), newRawEnd(tb)
	default:
		return fail(fmt.Errorf("unknown reference"))
	}
	return p, nil
}
