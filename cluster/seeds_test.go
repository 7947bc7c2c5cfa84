package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/peerkit/peerkit/transport/memory"
)

// dnsServer is a real DNS server in the test process (github.com/miekg/dns)
// answering A and SRV questions from a table the test changes.
type dnsServer struct {
	srv  *dns.Server
	addr string
	mu   sync.Mutex
	a    map[string][]string // name -> IPv4 addresses
	srvs map[string][]*net.SRV
	asks map[string]int // A questions per name
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{addr: pc.LocalAddr().String(), a: map[string][]string{}, srvs: map[string][]*net.SRV{}, asks: map[string]int{}}
	started := make(chan struct{})
	d.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve), NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() { defer close(done); d.srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { d.srv.Shutdown(); <-done })
	return d
}

func (d *dnsServer) set(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.a[dns.Fqdn(name)] = ips
}

func (d *dnsServer) setSRV(name string, srvs ...*net.SRV) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srvs[dns.Fqdn(name)] = srvs
}

func (d *dnsServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	d.mu.Lock()
	for _, q := range req.Question {
		switch q.Qtype {
		case dns.TypeA:
			d.asks[q.Name]++
			for _, ip := range d.a[q.Name] {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.ParseIP(ip)})
			}
		case dns.TypeSRV:
			for _, s := range d.srvs[q.Name] {
				m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 1},
					Priority: s.Priority, Weight: s.Weight, Port: s.Port, Target: dns.Fqdn(s.Target)})
			}
		}
	}
	if len(m.Answer) == 0 {
		if _, ok := d.a[req.Question[0].Name]; !ok {
			if _, ok := d.srvs[req.Question[0].Name]; !ok {
				m.Rcode = dns.RcodeNameError
			}
		}
	}
	d.mu.Unlock()
	w.WriteMsg(m)
}

// asked reports how many A questions name got.
func (d *dnsServer) asked(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asks[dns.Fqdn(name)]
}

// resolver asks d only.
func (d *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "udp", d.addr)
	}}
}

// loopbackNodes starts n nodes on 127.0.0.2, .3, ... with one free port,
// as pods of a StatefulSet share theirs.
func loopbackNodes(t *testing.T, n int, opts ...Option) ([]*Node, []string, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this host: %v", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return loopbackNodesOn(t, port, n, opts...)
}

// Join by every A record of a name, and by SRV records; a name that does
// not resolve is ErrNoSeeds.
func TestJoinByDNS(t *testing.T) {
	d := startDNS(t)
	nodes, ips, port := loopbackNodes(t, 4, WithResolver(d.resolver()))
	d.set("peers.test", ips[:3]...) // the fourth joins through them
	k, err := nodes[3].Join(context.Background(), "dns+peers.test:"+port)
	if err != nil || k != 3 {
		t.Fatalf("Join by A records: %d joined, %v; want 3", k, err)
	}
	eventually(t, 5*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })

	lone, err := New("127.0.0.1:0", testOpts(WithResolver(d.resolver()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer lone.Close()
	var p uint16
	fmt.Sscan(port, &p)
	d.set("n1.test", ips[0])
	d.set("n2.test", ips[1])
	d.setSRV("_gossip._tcp.peers.test", &net.SRV{Target: "n1.test", Port: p}, &net.SRV{Target: "n2.test", Port: p})
	if k, err := lone.Join(context.Background(), "dnssrv+_gossip._tcp.peers.test"); err != nil || k != 2 {
		t.Fatalf("Join by SRV: %d joined, %v; want 2", k, err)
	}
	eventually(t, 5*time.Second, func() bool { return len(lone.Remotes()) == 4 }, func() string { return meshReport([]*Node{lone}) })

	// A plain host:port whose host resolves: every address is tried.
	if k, err := lone.Join(context.Background(), "peers.test:"+port); err != nil || k != 3 {
		t.Fatalf("Join by host:port: %d joined, %v", k, err)
	}
	_, err = lone.Join(context.Background(), "dns+nowhere.test:"+port)
	if !errors.Is(err, ErrNoSeeds) {
		t.Fatalf("Join of a name that does not resolve = %v, want ErrNoSeeds", err)
	}
	_, err = lone.Join(context.Background(), "127.0.0.1:1")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Join of a closed port = %v, want ErrUnreachable", err)
	}
}

// A cluster whose nodes know only one DNS name converges by itself, though
// every node starts before the name lists the others (a restart of the
// whole cluster at once): WithSeeds rejoins while a node knows fewer
// remotes than the name resolves to.
func TestSeedsRejoinUntilFullMesh(t *testing.T) {
	d := startDNS(t)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	nodes, ips, _ := loopbackNodesOn(t, port, 5, WithResolver(d.resolver()),
		WithSeeds("dns+peers.test:"+port), WithRejoinInterval(200*time.Millisecond))
	d.set("peers.test") // known, with no address yet
	// Each node asks twice (its start, then a rejoin) while the name
	// resolves to nothing: no one joins.
	eventually(t, 5*time.Second, func() bool { return d.asked("peers.test") >= 2*len(nodes) },
		func() string { return fmt.Sprintf("%d questions for peers.test", d.asked("peers.test")) })
	for _, n := range nodes {
		if len(n.Remotes()) != 0 {
			t.Fatalf("%s joined before the name listed anyone", n.AdvertiseAddr())
		}
	}
	d.set("peers.test", ips...)
	eventually(t, 10*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
}

// loopbackNodesOn starts n nodes on 127.0.0.2, .3, ... at port.
func loopbackNodesOn(t *testing.T, port string, n int, opts ...Option) ([]*Node, []string, string) {
	t.Helper()
	var nodes []*Node
	var ips []string
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		nd, err := New(net.JoinHostPort(ip, port), append(testOpts(WithNetworkTimeout(2*time.Second), WithHealthyInterval(200*time.Millisecond)), opts...)...)
		if err != nil {
			t.Skipf("listen on %s:%s: %v", ip, port, err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes = append(nodes, nd)
		ips = append(ips, ip)
	}
	return nodes, ips, port
}

func TestWithSeedsValidatesTheForms(t *testing.T) {
	for _, s := range []string{"no-port", "dnssrv+", "dnssrv+a:b", "dns+:7946", ""} {
		if n, err := New("127.0.0.1:0", WithSeeds(s)); err == nil {
			n.Close()
			t.Errorf("WithSeeds(%q) accepted", s)
		} else if !strings.Contains(err.Error(), "WithSeeds") {
			t.Errorf("WithSeeds(%q): %v does not name the option", s, err)
		}
	}
	if _, err := New("127.0.0.1:0", WithResolver(nil)); err == nil || !strings.Contains(err.Error(), "WithResolver") {
		t.Errorf("WithResolver(nil): %v", err)
	}
	if _, err := New("127.0.0.1:0", WithRejoinInterval(0)); err == nil || !strings.Contains(err.Error(), "WithRejoinInterval") {
		t.Errorf("WithRejoinInterval(0): %v", err)
	}
}

// A callback given with WithOnEvent sees the first addition of a node
// that joins its seed in the background as New returns; one registered
// once the seed is in sees nothing of it (the race WithOnEvent closes).
func TestWithOnEventSeesTheFirstAddition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		newMemNode(t, nw, "10.0.0.1:7946")
		var mu sync.Mutex
		var early []Event
		n := newMemNode(t, nw, "10.0.0.2:7946", WithSeeds("10.0.0.1:7946"),
			WithOnEvent(func(e Event) { mu.Lock(); early = append(early, e); mu.Unlock() }),
			WithOnEvent(func(e Event) { mu.Lock(); early = append(early, Event{}); mu.Unlock() }))
		eventually(t, 5*time.Second, func() bool { return len(n.Remotes()) == 1 }, func() string { return meshReport([]*Node{n}) })
		synctest.Wait() // the addition has been delivered
		var late atomic.Int32
		n.RemoteAdded(func(Remote) { late.Add(1) })
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(early) != 2 || early[0].Kind != EventAdded || early[0].Remote.Addr() != "10.0.0.1:7946" || early[1] != (Event{}) {
			t.Fatalf("WithOnEvent callbacks saw %+v; want the seed's addition, then the second callback's mark", early)
		}
		if k := late.Load(); k != 0 {
			t.Fatalf("a callback registered after the join saw %d additions", k)
		}
	})
	if _, err := New("127.0.0.1:0", WithOnEvent(nil)); err == nil || !strings.Contains(err.Error(), "WithOnEvent") {
		t.Errorf("WithOnEvent(nil): %v", err)
	}
}
