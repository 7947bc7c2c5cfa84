package bench

// The yamux and quic-go reference baselines use those libraries directly.
// They live in a test file because, in the module's non-test code, only
// transport/mux may import yamux and only transport/quic may import
// quic-go (cluster's TestImportGraph checks it). The benchmarks have them;
// the report gets them by running these benchmarks (see cmd/report).

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"
	quicgo "github.com/quic-go/quic-go"
)

func init() {
	libraryRefs[RefYamux] = refYamux
	libraryRefs[RefQUIC] = refQUIC
}

func refYamux(p *Pair, fail func(error) (*Pair, error)) (*Pair, error) {
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
	conf := yamux.DefaultConfig()
	conf.LogOutput = io.Discard
	cs, err := yamux.Client(a, conf)
	if err != nil {
		return fail(err)
	}
	ss, err := yamux.Server(b, conf)
	if err != nil {
		cs.Close()
		return fail(err)
	}
	p.close = append(p.close, func() { cs.Close(); ss.Close() })
	sa, err := cs.OpenStream()
	if err != nil {
		return fail(err)
	}
	sb, err := ss.AcceptStream()
	if err != nil {
		return fail(err)
	}
	p.A, p.B = newRawEnd(sa), newRawEnd(sb)
	return p, nil
}

func refQUIC(p *Pair, fail func(error) (*Pair, error)) (*Pair, error) {
	conf, err := TLSConfig()
	if err != nil {
		return fail(err)
	}
	conf.NextProtos = []string{"peerkit-bench"}
	conf.MinVersion = tls.VersionTLS13
	ln, err := quicgo.ListenAddr("127.0.0.1:0", conf, nil)
	if err != nil {
		return fail(err)
	}
	p.close = append(p.close, func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qa, err := quicgo.DialAddr(ctx, ln.Addr().String(), conf, nil)
	if err != nil {
		return fail(err)
	}
	p.close = append(p.close, func() { qa.CloseWithError(0, "") })
	sa, err := qa.OpenStreamSync(ctx)
	if err != nil {
		return fail(err)
	}
	if _, err := sa.Write([]byte{0}); err != nil { // quic-go shows a stream once data arrives
		return fail(err)
	}
	qb, err := ln.Accept(ctx)
	if err != nil {
		return fail(err)
	}
	p.close = append(p.close, func() { qb.CloseWithError(0, "") })
	sb, err := qb.AcceptStream(ctx)
	if err != nil {
		return fail(err)
	}
	var one [1]byte
	if _, err := io.ReadFull(sb, one[:]); err != nil {
		return fail(err)
	}
	p.A, p.B = newRawEnd(sa), newRawEnd(sb)
	return p, nil
}
