package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/internal/wire"
	"github.com/peerkit/peerkit/transport/memory"
	"github.com/peerkit/peerkit/transport/tcp"
)

// Authentication (WithSecret): PROTOCOL.md, "Authentication".

var (
	secretA = []byte("0123456789abcdef-cluster-A")
	secretB = []byte("0123456789abcdef-cluster-B")
)

// tapNet is a memory network that records, per conn, every byte each end
// read, so a test can prove what crossed the wire.
type tapNet struct {
	*memory.Network
	mu    sync.Mutex
	conns []*tapConn
}

type tapConn struct {
	net.Conn
	local, remote string // listen addresses of this end and the other
	accepted      bool   // this end is the listener's
	mu            sync.Mutex
	read          bytes.Buffer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) bytesRead() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.read.Bytes())
}

func (t *tapNet) add(c *tapConn) net.Conn {
	t.mu.Lock()
	t.conns = append(t.conns, c)
	t.mu.Unlock()
	return c
}

func (t *tapNet) Listen(addr string) (net.Listener, error) {
	ln, err := t.Network.Listen(addr)
	if err != nil {
		return nil, err
	}
	return &tapListener{Listener: ln, t: t}, nil
}

func (t *tapNet) DialFrom(ctx context.Context, from, addr string) (net.Conn, error) {
	c, err := t.Network.DialFrom(ctx, from, addr)
	if err != nil {
		return nil, err
	}
	return t.add(&tapConn{Conn: c, local: from, remote: addr}), nil
}

type tapListener struct {
	net.Listener
	t *tapNet
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.t.add(&tapConn{Conn: c, local: l.Addr().String(), remote: c.RemoteAddr().String(), accepted: true}), nil
}

// between returns the recorded conns between the listen addresses a and b.
func (t *tapNet) between(a, b string) []*tapConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*tapConn
	for _, c := range t.conns {
		remote := c.remote
		if c.accepted { // the dialer's listen address is in its hello
			if h, _, err := wire.ReadHello(bytes.NewReader(c.bytesRead())); err == nil {
				remote = h.Addr
			}
		}
		if (c.local == a && remote == b) || (c.local == b && remote == a) {
			out = append(out, c)
		}
	}
	return out
}

// countingCodec counts the decoders made: one per link reader.
type countingCodec struct {
	codec.Codec
	decoders atomic.Int64
}

func (c *countingCodec) NewDecoder(r io.Reader) codec.Decoder {
	c.decoders.Add(1)
	return c.Codec.NewDecoder(r)
}

func TestSameSecretLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw, WithSecret(secretA))
		c := newMemNode(t, nw, "c:1", WithSecret(secretA))
		if err := c.Add("b:1"); err != nil {
			t.Fatal(err)
		}
		nodes := []*Node{a, b, c}
		eventually(t, 2*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
		traffic(t, a, b)
		traffic(t, a, c)
	})
}

// A wrong secret: Add fails with ErrUnauthorized on the dialer, the
// listener logs and drops, and nothing but the fixed handshake crosses
// the wire: no control frame, so neither side learns the other's peers.
func TestWrongSecretRefusedAndNothingLeaks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := &tapNet{Network: memory.NewNetwork()}
		defer tn.Close()
		var logsA logBuffer
		codecA, codecB := &countingCodec{Codec: codec.Gob}, &countingCodec{Codec: codec.Gob}
		a := newMemNode(t, tn.Network, "a:1", WithTransport(tn), WithSecret(secretA), WithCodec(codecA), WithLogger(logsA.logger()))
		b := newMemNode(t, tn.Network, "b:1", WithTransport(tn), WithSecret(secretB), WithCodec(codecB))
		// Each has a peer of its own cluster to leak.
		ca := newMemNode(t, tn.Network, "ca:1", WithTransport(tn), WithSecret(secretA))
		cb := newMemNode(t, tn.Network, "cb:1", WithTransport(tn), WithSecret(secretB))
		if err := a.Add("ca:1"); err != nil {
			t.Fatal(err)
		}
		if err := b.Add("cb:1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		decA, decB := codecA.decoders.Load(), codecB.decoders.Load()

		err := b.Add("a:1")
		if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, ErrHandshake) {
			t.Fatalf("Add with a wrong secret = %v, want ErrUnauthorized", err)
		}
		if !strings.Contains(err.Error(), "wrong secret") {
			t.Fatalf("error does not say why: %v", err)
		}
		err = a.Add("b:1")
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Add the other way = %v, want ErrUnauthorized", err)
		}
		time.Sleep(3 * testTimeout) // anti-entropy rounds, reconnect timers
		synctest.Wait()
		if !strings.Contains(logsA.String(), "handshake refused") || !strings.Contains(logsA.String(), "authentication failed") {
			t.Fatalf("listener a did not log the refusal; log:\n%s", logsA.String())
		}
		if got := addrs(a.Remotes()); len(got) != 1 || got[0] != "ca:1" {
			t.Fatalf("a knows %v", got)
		}
		if got := addrs(b.Remotes()); len(got) != 1 || got[0] != "cb:1" {
			t.Fatalf("b knows %v", got)
		}
		if codecA.decoders.Load() != decA || codecB.decoders.Load() != decB {
			t.Fatal("a link reader (a control decoder) ran between the two clusters")
		}
		// What each end read, on every conn between a and b: a hello,
		// the dialer's proof or the listener's verdict, then nothing.
		conns := tn.between("a:1", "b:1")
		if len(conns) != 4 {
			t.Fatalf("%d recorded conn ends between a and b, want 4", len(conns))
		}
		for _, c := range conns {
			r := bytes.NewReader(c.bytesRead())
			if _, _, err := wire.ReadHello(r); err != nil {
				t.Fatalf("%s read no hello: %v", c.local, err)
			}
			if c.accepted {
				var proof [wire.ProofLen]byte
				if _, err := io.ReadFull(r, proof[:]); err != nil {
					t.Fatalf("listener %s read no proof: %v", c.local, err)
				}
			} else {
				code, _, err := wire.ReadVerdict(r)
				if err != nil || code != wire.VerdictUnauthorized {
					t.Fatalf("dialer %s read verdict %d, %v", c.local, code, err)
				}
			}
			if r.Len() != 0 {
				t.Fatalf("%s read %d bytes after the handshake (listener: %v)", c.local, r.Len(), c.accepted)
			}
		}
		traffic(t, a, ca)
		traffic(t, b, cb)
	})
}

func TestMissingSecretIsAClearError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		var logsS, logsO logBuffer
		s := newMemNode(t, nw, "s:1", WithSecret(secretA), WithLogger(logsS.logger()))
		o := newMemNode(t, nw, "o:1", WithLogger(logsO.logger()))
		err := o.Add("s:1")
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "this node has none") {
			t.Fatalf("Add without a secret to a node with one = %v", err)
		}
		err = s.Add("o:1")
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "this node requires one") {
			t.Fatalf("Add with a secret to a node without = %v", err)
		}
		synctest.Wait()
		if !strings.Contains(logsS.String(), "peer has no secret") || !strings.Contains(logsO.String(), "peer requires a secret") {
			t.Fatalf("listeners did not log the reason:\n%s\n%s", logsS.String(), logsO.String())
		}
		if len(s.Remotes())+len(o.Remotes()) != 0 {
			t.Fatal("a link came up")
		}
	})
}

// A stranger that connects to a node with a secret learns no proof: the
// listener answers a wrong proof with verdict unauthorized and nothing else.
func TestStrangerLearnsNoProof(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		newMemNode(t, nw, "s:1", WithSecret(secretA))
		conn, err := nw.DialFrom(context.Background(), "evil:1", "s:1")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		h := &wire.Hello{Version: wire.Version, Flags: wire.FlagAuth, Instance: 7, Codec: "gob", Addr: "evil:1"}
		raw, _ := h.Append(nil)
		conn.Write(raw)
		if _, _, err := wire.ReadHello(conn); err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, wire.ProofLen)
		rand.Read(junk)
		conn.Write(junk)
		code, _, err := wire.ReadVerdict(conn)
		if err != nil || code != wire.VerdictUnauthorized {
			t.Fatalf("verdict %d, %v; want unauthorized", code, err)
		}
		rest, _ := io.ReadAll(conn)
		if len(rest) != 0 {
			t.Fatalf("the listener sent %d bytes after refusing (a proof?)", len(rest))
		}
	})
}

// A listener that does not know the secret cannot fake an accept: its
// proof, which follows the verdict, does not verify.
func TestImpostorListenerCannotFakeAccept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		ln, err := nw.Listen("fake:1")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		served := make(chan struct{})
		go func() {
			defer close(served)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			h := &wire.Hello{Version: wire.Version, Flags: wire.FlagAuth, Instance: 99, Codec: "gob", Addr: "fake:1"}
			raw, _ := h.Append(nil)
			c.Write(raw)
			wire.ReadHello(c)
			var proof [wire.ProofLen]byte
			io.ReadFull(c, proof[:])
			c.Write(append(wire.AppendVerdict(nil, wire.VerdictAccept, ""), make([]byte, wire.ProofLen)...))
			// Whatever the dialer sends now would be its view.
			rest, _ := io.ReadAll(c)
			if len(rest) != 0 {
				t.Errorf("the dialer sent %d bytes to an impostor after the handshake", len(rest))
			}
		}()
		a := newMemNode(t, nw, "a:1", WithSecret(secretA))
		err = a.Add("fake:1")
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Add to an impostor = %v, want ErrUnauthorized", err)
		}
		<-served
		if len(a.Remotes()) != 0 {
			t.Fatal("impostor added")
		}
	})
}

// Over TLS the proofs are bound to the TLS session: a relay that
// terminates TLS on both sides and forwards the handshake between two
// honest nodes fails authentication. Without a secret the same relay is
// transparent, which shows that it is the binding that stops it.
func TestTLSRelayFailsAuthentication(t *testing.T) {
	conf, err := selfsigned.InsecureConfig()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tcp.New(tcp.WithTLS(conf))
	if err != nil {
		t.Fatal(err)
	}
	relay := startTLSRelay(t, conf)
	for _, withSecret := range []bool{true, false} {
		var opts []Option
		if withSecret {
			opts = append(opts, WithSecret(secretA))
		}
		var logs logBuffer
		a := newTCPNode(t, append(opts, WithTransport(tr), WithLogger(logs.logger()))...)
		b := newTCPNode(t, append(opts, WithTransport(tr))...)
		relay.target.Store(a.AdvertiseAddr())
		err := b.Add(relay.addr)
		if !withSecret {
			if err != nil {
				t.Fatalf("through the relay without a secret: %v", err)
			}
			eventually(t, 5*time.Second, func() bool { return len(a.Remotes()) == 1 }, func() string { return "a has no link" })
			continue
		}
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Add through a TLS-terminating relay = %v, want ErrUnauthorized", err)
		}
		if len(a.Remotes())+len(b.Remotes()) != 0 {
			t.Fatal("a link came up through the relay")
		}
		if !strings.Contains(logs.String(), "authentication failed") {
			t.Fatalf("listener did not log the failure:\n%s", logs.String())
		}
		// Directly, over TLS, the same two nodes authenticate.
		if err := b.Add(a.AdvertiseAddr()); err != nil {
			t.Fatalf("direct Add over TLS with the secret: %v", err)
		}
		traffic(t, a, b)
		a.Close()
		b.Close()
	}
}

// tlsRelay accepts TLS conns and relays their plaintext to target over a
// TLS conn of its own: a man in the middle with a certificate the nodes
// accept.
type tlsRelay struct {
	addr   string
	target atomic.Value // string
}

func startTLSRelay(t *testing.T, conf *tls.Config) *tlsRelay {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	r := &tlsRelay{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			track(in)
			wg.Go(func() {
				out, err := tls.Dial("tcp", r.target.Load().(string), &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					in.Close()
					return
				}
				track(out)
				done := make(chan struct{})
				go func() { io.Copy(out, in); out.Close(); close(done) }()
				io.Copy(in, out)
				in.Close()
				<-done
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return r
}
