package quic

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	quicgo "github.com/quic-go/quic-go"
)

// dialSocket is the one UDP socket a Transport dials every connection
// from, and the quic-go Transport on it.
//
// An unconnected UDP socket hears nothing of ICMP errors unless asked:
// quic-go neither sets IP_RECVERR nor reads the error queue. So the socket
// sets IP_RECVERR and IPV6_RECVERR (Linux); the kernel then queues each
// ICMP error with the address of the datagram that caused it, and fails
// the socket's next read or write once with the error's errno. The
// packetConn wrapper absorbs those failures (quic-go would take them as
// fatal to every connection on the socket), reads the queue and tells the
// watchers of the offending address: a dial in progress fails at once
// with transport.ErrRefused, instead of waiting out the handshake timeout,
// and a live connection to a peer whose port has closed is closed.
type dialSocket struct {
	uc  *net.UDPConn
	qtr *quicgo.Transport

	mu       sync.Mutex
	closed   bool
	watchers map[netip.AddrPort]map[*watcher]struct{}
	wg       sync.WaitGroup // goroutines that close connections
}

// A watcher hears of the ICMP errors caused by datagrams sent to one
// address.
type watcher struct{ fn func(icmpReport) }

// icmpReport is one ICMP error read from the socket's error queue.
type icmpReport struct {
	to    netip.AddrPort // where the offending datagram went
	errno syscall.Errno
	// handshake reports that the offending datagram was a long-header
	// (handshake) QUIC packet rather than one of an established
	// connection.
	handshake bool
}

func newDialSocket() (*dialSocket, error) {
	uc, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "quic", Err: err}
	}
	s := &dialSocket{uc: uc, watchers: make(map[netip.AddrPort]map[*watcher]struct{})}
	if err := enableICMPErrors(uc); err != nil {
		uc.Close()
		return nil, &net.OpError{Op: "dial", Net: "quic", Err: err}
	}
	s.qtr = &quicgo.Transport{Conn: &packetConn{uc: uc, s: s}}
	return s, nil
}

// watch calls fn, on the goroutine that read the error queue, for every
// ICMP error caused by a datagram sent to to, until stop is called. fn
// must not block.
func (s *dialSocket) watch(to netip.AddrPort, fn func(icmpReport)) (stop func()) {
	w := &watcher{fn: fn}
	to = unmap(to)
	s.mu.Lock()
	if s.watchers[to] == nil {
		s.watchers[to] = make(map[*watcher]struct{})
	}
	s.watchers[to][w] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.watchers[to], w)
		if len(s.watchers[to]) == 0 {
			delete(s.watchers, to)
		}
		s.mu.Unlock()
	}
}

// closeConn closes qc on a goroutine of the socket's, so that a watcher
// never blocks the reader of the socket.
func (s *dialSocket) closeConn(qc *quicgo.Conn, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Go(func() { qc.CloseWithError(0, reason) })
}

// drain reads the error queue and tells each report's watchers. It
// reports whether anything was queued.
func (s *dialSocket) drain() bool {
	reports := readICMPErrors(s.uc)
	for _, r := range reports {
		s.mu.Lock()
		var fns []func(icmpReport)
		for w := range s.watchers[unmap(r.to)] {
			fns = append(fns, w.fn)
		}
		s.mu.Unlock()
		for _, fn := range fns {
			fn(r)
		}
	}
	return len(reports) > 0
}

// close closes the quic-go Transport (and so every connection left on
// it), the socket, and waits for the socket's goroutines.
func (s *dialSocket) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.qtr.Close()
	s.uc.Close()
	s.wg.Wait()
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// asyncErrno reports whether err is an errno that the kernel may return
// on any read or write of the socket because an ICMP error arrived (for
// a datagram sent to anyone) rather than because of this call.
func asyncErrno(err error) (syscall.Errno, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN,
		syscall.EMSGSIZE, syscall.EPROTO, syscall.ENOPROTOOPT, syscall.EACCES:
		return errno, true
	}
	return 0, false
}

// packetConn is the socket as quic-go sees it. Reads and writes that fail
// only because an ICMP error was reported are absorbed: the error queue is
// read and the call repeated. It deliberately lacks ReadMsgUDP and
// WriteMsgUDP: with them quic-go would read the socket in batches by
// itself, bypassing ReadFrom, and take the first such error as fatal.
type packetConn struct {
	uc *net.UDPConn
	s  *dialSocket
}

// ReadFrom reads the next datagram.
func (c *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.uc.ReadFrom(b)
		if err == nil {
			return n, addr, nil
		}
		if _, ok := asyncErrno(err); !ok {
			return n, addr, err
		}
		c.s.drain()
	}
}

// maxWriteRetries bounds how often a write is repeated after failing
// because of other datagrams' ICMP errors.
const maxWriteRetries = 4

// WriteTo writes one datagram to addr.
func (c *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	for i := 0; ; i++ {
		n, err := c.uc.WriteTo(b, addr)
		if err == nil {
			return n, nil
		}
		if errors.Is(err, syscall.ENOBUFS) {
			// A local queue (a full qdisc, such as tbf under a rate
			// limit) dropped the datagram. Without IP_RECVERR the kernel
			// reports that as a success; with it, quic-go would take the
			// error as fatal and close the connection. It is a lost
			// packet, which QUIC recovers from.
			return len(b), nil
		}
		errno, ok := asyncErrno(err)
		if !ok || errno == syscall.EMSGSIZE || i == maxWriteRetries {
			// EMSGSIZE is quic-go's to see: it probes the path MTU.
			if ok {
				c.s.drain()
			}
			return n, err
		}
		c.s.drain()
	}
}

// Close closes the socket.
func (c *packetConn) Close() error { return c.uc.Close() }

// LocalAddr returns the socket's address.
func (c *packetConn) LocalAddr() net.Addr { return c.uc.LocalAddr() }

// SetDeadline sets the socket's deadlines.
func (c *packetConn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline sets the socket's read deadline.
func (c *packetConn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the socket's write deadline.
func (c *packetConn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// SetReadBuffer sets the socket's receive buffer size.
func (c *packetConn) SetReadBuffer(n int) error { return c.uc.SetReadBuffer(n) }

// SetWriteBuffer sets the socket's send buffer size.
func (c *packetConn) SetWriteBuffer(n int) error { return c.uc.SetWriteBuffer(n) }

// SyscallConn lets quic-go size the socket buffers and set the DF bit.
func (c *packetConn) SyscallConn() (syscall.RawConn, error) { return c.uc.SyscallConn() }

var _ net.PacketConn = (*packetConn)(nil)
