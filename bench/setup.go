package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/tcp"
)

// Transports measured through the cluster layer and raw.
const (
	TCP    = "tcp"
	TCPTLS = "tcp+tls"
	QUIC   = "quic"
	Mux    = "mux"
	MuxTLS = "mux+tls"
	Memory = "memory"
)

// Reference baselines, built without peerkit's transports.
const (
	RefTCP   = "ref-tcp"   // net.Dial / net.Listen on loopback
	RefTLS   = "ref-tls"   // crypto/tls over loopback TCP
	RefYamux = "ref-yamux" // one yamux stream over loopback TCP
	RefQUIC  = "ref-quic"  // one quic-go stream on loopback UDP
	RefPipe  = "ref-pipe"  // net.Pipe
)

// Transports returns every transport, in report order.
func Transports() []string { return []string{TCP, TCPTLS, QUIC, Mux, MuxTLS, Memory} }

// References returns the reference baselines, in report order.
func References() []string { return []string{RefTCP, RefTLS, RefYamux, RefQUIC, RefPipe} }

// IsTransport reports whether name is one of Transports.
func IsTransport(name string) bool { return slices.Contains(Transports(), name) }

// IsReference reports whether name is one of References.
func IsReference(name string) bool { return slices.Contains(References(), name) }

var tlsConf = sync.OnceValues(selfsigned.InsecureConfig)

// TLSConfig returns the process's throwaway TLS configuration (self-signed,
// verification skipped: loopback benchmarks only).
func TLSConfig() (*tls.Config, error) {
	c, err := tlsConf()
	if err != nil {
		return nil, err
	}
	return c.Clone(), nil
}

// Net makes the transports of the nodes of one measurement: a new
// transport instance per node (as separate processes would have), or the
// one shared Network for memory. Close closes them all.
type Net struct {
	Name string
	mem  *memory.Network

	mu      sync.Mutex
	closers []io.Closer
}

// NewNet returns a Net for one of Transports.
func NewNet(name string) (*Net, error) {
	if !IsTransport(name) {
		return nil, fmt.Errorf("bench: unknown transport %q", name)
	}
	nt := &Net{Name: name}
	if name == Memory {
		nt.mem = memory.NewNetwork()
	}
	return nt, nil
}

// Memory returns the shared network of a memory Net, nil otherwise.
func (nt *Net) Memory() *memory.Network { return nt.mem }

// ListenAddr is the address a node of this Net listens on.
func (nt *Net) ListenAddr() string {
	if nt.mem != nil {
		return "bench:0"
	}
	return "127.0.0.1:0"
}

// Transport returns a transport for one more node.
func (nt *Net) Transport() (transport.Transport, error) {
	var (
		tr  transport.Transport
		err error
	)
	switch nt.Name {
	case Memory:
		return nt.mem, nil
	case TCP:
		tr, err = tcp.New()
	case TCPTLS:
		var c *tls.Config
		if c, err = TLSConfig(); err == nil {
			tr, err = tcp.New(tcp.WithTLS(c))
		}
	case QUIC:
		var c *tls.Config
		if c, err = TLSConfig(); err == nil {
			tr, err = quic.New(c)
		}
	case Mux:
		tr, err = mux.New()
	case MuxTLS:
		var c *tls.Config
		if c, err = TLSConfig(); err == nil {
			tr, err = mux.New(mux.WithTLS(c))
		}
	}
	if err != nil {
		return nil, err
	}
	if c, ok := tr.(io.Closer); ok {
		nt.mu.Lock()
		nt.closers = append(nt.closers, c)
		nt.mu.Unlock()
	}
	return tr, nil
}

// Close closes every transport the Net made.
func (nt *Net) Close() {
	nt.mu.Lock()
	cs := nt.closers
	nt.closers = nil
	nt.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	if nt.mem != nil {
		nt.mem.Close()
	}
}

// NewNode starts a node of this Net with opts (after the transport).
func (nt *Net) NewNode(opts ...cluster.Option) (*cluster.Node, error) {
	tr, err := nt.Transport()
	if err != nil {
		return nil, err
	}
	return cluster.New(nt.ListenAddr(), append([]cluster.Option{cluster.WithTransport(tr)}, opts...)...)
}

// Endpoint is one end of a measured channel. Send and Flush are called by
// one goroutine, Recv by one goroutine; Recv returns the payload's length.
type Endpoint interface {
	Send(p []byte) error
	Flush() error
	Recv() (int, error)
}

// Pair is two connected endpoints and how to tear them down.
type Pair struct {
	A, B  Endpoint
	close []func()
}

// Close tears the pair down.
func (p *Pair) Close() {
	for i := len(p.close) - 1; i >= 0; i-- {
		p.close[i]()
	}
}

// clusterEnd sends to one remote and receives from the node's Inbox.
type clusterEnd struct {
	n  *cluster.Node
	to cluster.Remote
}

func (e *clusterEnd) Send(p []byte) error { return e.n.Send(e.to, p) }
func (e *clusterEnd) Flush() error        { return nil }
func (e *clusterEnd) Recv() (int, error) {
	m, ok := <-e.n.Inbox
	if !ok {
		return 0, net.ErrClosed
	}
	return len(m.Payload), nil
}

// ClusterPair starts two nodes on the named transport, connects them, and
// returns them as endpoints (A is the node that dialled).
func ClusterPair(name string, opts ...cluster.Option) (*Pair, error) {
	nt, err := NewNet(name)
	if err != nil {
		return nil, err
	}
	p := &Pair{close: []func(){nt.Close}}
	a, err := nt.NewNode(opts...)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.close = append(p.close, func() { a.Close() })
	b, err := nt.NewNode(opts...)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.close = append(p.close, func() { b.Close() })
	if err := a.Add(b.AdvertiseAddr()); err != nil {
		p.Close()
		return nil, err
	}
	if err := WaitMesh(10*time.Second, a, b); err != nil {
		p.Close()
		return nil, err
	}
	p.A = &clusterEnd{a, a.Remotes()[0]}
	p.B = &clusterEnd{b, b.Remotes()[0]}
	return p, nil
}

// handlerEnd receives with a WithHandler handler: each message is seen on
// the link's reader, with no copy and no handoff.
type handlerEnd struct {
	clusterEnd
	ends chan struct{}
}

func (e *handlerEnd) handle(m *cluster.Message) {
	if len(m.Payload) == 0 {
		e.ends <- struct{}{}
	}
}

// Recv waits for the empty payload that ends a Throughput run; the
// messages before it are counted by the handler, not returned one by one.
func (e *handlerEnd) Recv() (int, error) {
	<-e.ends
	return 0, nil
}

// HandlerPair is ClusterPair with B receiving through a WithHandler
// handler instead of its Inbox. It serves Throughput only: its B's Recv
// returns only the empty payloads that end runs.
func HandlerPair(name string, opts ...cluster.Option) (*Pair, error) {
	h := &handlerEnd{ends: make(chan struct{}, 1)}
	return withHandler(name, h, h.handle, opts)
}

// withHandler is ClusterPair with handle as B's handler, and end, which
// its Throughput runs end through, as B.
func withHandler(name string, end *handlerEnd, handle func(*cluster.Message), opts []cluster.Option) (*Pair, error) {
	p, err := ClusterPair(name, append(opts, cluster.WithHandler(handle))...)
	if err != nil {
		return nil, err
	}
	end.clusterEnd = *p.B.(*clusterEnd)
	p.B = end
	return p, nil
}

// copyEnd is a handlerEnd whose handler copies each payload into a slice
// of its own, as a receiver that keeps its messages must: the least an
// Inbox, whose messages belong to the application, can cost.
type copyEnd struct {
	handlerEnd
	kept []byte
}

func (e *copyEnd) handle(m *cluster.Message) {
	e.kept = append([]byte(nil), m.Payload...)
	e.handlerEnd.handle(m)
}

// CopyingHandlerPair is HandlerPair with a handler that copies every
// payload into a new slice, as a receiver that keeps its messages does.
// It serves Throughput only.
func CopyingHandlerPair(name string, opts ...cluster.Option) (*Pair, error) {
	h := &copyEnd{handlerEnd: handlerEnd{ends: make(chan struct{}, 1)}}
	return withHandler(name, &h.handlerEnd, h.handle, opts)
}

// WaitMesh waits until every node has a link to every other one.
func WaitMesh(timeout time.Duration, nodes ...*cluster.Node) error {
	deadline := time.Now().Add(timeout)
	for i := 0; ; {
		for i < len(nodes) && len(nodes[i].Remotes()) == len(nodes)-1 {
			i++
		}
		if i == len(nodes) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: no full mesh of %d nodes after %v (node %d has %d remotes)",
				len(nodes), timeout, i, len(nodes[i].Remotes()))
		}
		time.Sleep(time.Millisecond)
	}
}

// rawEnd is a conn used directly: a 4-byte big-endian length, then the
// payload, through 16 KiB bufio buffers like the core's.
type rawEnd struct {
	c   io.ReadWriter
	bw  *bufio.Writer
	br  *bufio.Reader
	hdr [4]byte // Send's
	rh  [4]byte // Recv's
	buf []byte
}

func newRawEnd(c io.ReadWriter) *rawEnd {
	return &rawEnd{c: c, bw: bufio.NewWriterSize(c, linkBufferSize), br: bufio.NewReaderSize(c, linkBufferSize)}
}

// linkBufferSize mirrors the core's bufio size.
const linkBufferSize = 16 << 10

func (e *rawEnd) Send(p []byte) error {
	binary.BigEndian.PutUint32(e.hdr[:], uint32(len(p)))
	if _, err := e.bw.Write(e.hdr[:]); err != nil {
		return err
	}
	_, err := e.bw.Write(p)
	return err
}

func (e *rawEnd) Flush() error { return e.bw.Flush() }

func (e *rawEnd) Recv() (int, error) {
	if _, err := io.ReadFull(e.br, e.rh[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(e.rh[:]))
	if cap(e.buf) < n {
		e.buf = make([]byte, n)
	}
	_, err := io.ReadFull(e.br, e.buf[:n])
	return n, err
}

// RawPair connects two conns of the named transport (or reference
// baseline) and returns them as raw endpoints (A dialled).
func RawPair(name string) (*Pair, error) {
	if IsReference(name) {
		return refPair(name)
	}
	return rawPair(name, func(c net.Conn) (Endpoint, func()) { return newRawEnd(c), nil })
}

// HandoffPair is RawPair with each end's messages handed to the
// receiving goroutine through a channel, each payload in a new slice, by
// a goroutine that reads the conn: the least that any receive API which
// gives messages to the application's goroutine, as the Inbox does, adds
// to a raw conn. A round trip through it pays two goroutine wake-ups that
// RawPair's does not. It serves RoundTrips.
func HandoffPair(name string) (*Pair, error) {
	if IsReference(name) {
		return nil, fmt.Errorf("bench: no handoff pair for reference %s", name)
	}
	return rawPair(name, func(c net.Conn) (Endpoint, func()) {
		e := newChanEnd(c)
		return e, e.stop
	})
}

// rawPair connects two conns of the named transport and makes each an
// endpoint with end, which may return a function that stops it.
func rawPair(name string, end func(net.Conn) (Endpoint, func())) (*Pair, error) {
	nt, err := NewNet(name)
	if err != nil {
		return nil, err
	}
	p := &Pair{close: []func(){nt.Close}}
	lt, err := nt.Transport()
	if err != nil {
		p.Close()
		return nil, err
	}
	dt, err := nt.Transport()
	if err != nil {
		p.Close()
		return nil, err
	}
	ln, err := lt.Listen(nt.ListenAddr())
	if err != nil {
		p.Close()
		return nil, err
	}
	p.close = append(p.close, func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, b, err := connect(ln, func() (net.Conn, error) { return dt.Dial(ctx, ln.Addr().String()) })
	if err != nil {
		p.Close()
		return nil, err
	}
	var sa, sb func()
	p.A, sa = end(a)
	p.B, sb = end(b)
	p.close = append(p.close, func() {
		a.Close()
		b.Close()
		for _, stop := range []func(){sa, sb} {
			if stop != nil {
				stop()
			}
		}
	})
	return p, nil
}

// chanEnd is a raw end whose messages reach Recv through a channel, from
// a goroutine of its own that reads the conn (see HandoffPair).
type chanEnd struct {
	*rawEnd
	msgs  chan []byte
	err   error         // why reading stopped; set before msgs is closed
	quit  chan struct{} // closed by stop
	ended chan struct{} // closed when the reading goroutine returns
	once  sync.Once     // stop's
}

func newChanEnd(c net.Conn) *chanEnd {
	e := &chanEnd{
		rawEnd: newRawEnd(c),
		msgs:   make(chan []byte, 1024),
		quit:   make(chan struct{}),
		ended:  make(chan struct{}),
	}
	go e.read()
	return e
}

func (e *chanEnd) read() {
	defer close(e.ended)
	defer close(e.msgs)
	for {
		n, err := e.rawEnd.Recv()
		if err != nil {
			e.err = err
			return
		}
		select {
		case e.msgs <- append([]byte{}, e.buf[:n]...):
		case <-e.quit:
			e.err = net.ErrClosed
			return
		}
	}
}

func (e *chanEnd) Recv() (int, error) {
	m, ok := <-e.msgs
	if !ok {
		return 0, e.err
	}
	return len(m), nil
}

// stop waits for the reading goroutine, once the conn is closed. It may
// be called more than once.
func (e *chanEnd) stop() {
	e.once.Do(func() { close(e.quit) })
	<-e.ended
}

// connect dials once and accepts the conn; the first byte of a TLS or
// QUIC stream may be needed before Accept returns, so both run at once.
func connect(ln net.Listener, dial func() (net.Conn, error)) (dialled, accepted net.Conn, err error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err := dial()
	if err != nil {
		ln.Close()
		<-ch
		return nil, nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			a.Close()
			return nil, nil, r.err
		}
		return a, r.c, nil
	case <-time.After(10 * time.Second):
		a.Close()
		ln.Close()
		<-ch
		return nil, nil, errors.New("bench: accept timed out")
	}
}
