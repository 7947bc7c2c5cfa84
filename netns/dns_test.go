//go:build netns

package netns

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// switchDNS is the switch namespace's address on the bridge, where the DNS
// server listens.
const switchDNS = subnet + "2"

// Five hosts that know only one DNS name, served by a DNS server in the
// switch namespace, form a full mesh: every node starts with
// -seeds dns+peers.test:7946 and no address at all.
func TestDNSSeeds(t *testing.T) {
	e := newEnv(t)
	e.must(t, "ip", "-n", e.sw, "addr", "add", switchDNS+"/24", "dev", "br0")
	var ips []string
	for i := range numHosts {
		ips = append(ips, e.ip(i))
	}
	serveDNS(t, "/var/run/netns/"+e.sw, switchDNS+":53", "peers.test.", ips)

	var procs []*proc
	t0 := time.Now()
	for i := range numHosts {
		procs = append(procs, e.start(t, i, "tcp", "-seeds", fmt.Sprintf("dns+peers.test:%d", port), "-dns", switchDNS+":53", "-rejoin", "200ms"))
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.alive() {
				p.kill()
			}
		}
		if t.Failed() {
			e.dumpLogs(t, "tcp")
		}
	})
	d := waitMesh(t, procs, t0, "every node started with only the DNS name")
	t.Logf("dns seeds: five hosts that know only peers.test reached a full mesh %v after the first started", ms(d))
	for _, p := range procs {
		p.stop()
	}
}

// serveDNS answers A questions for name with ips from a UDP socket made
// inside the network namespace at nsPath, until the test ends. The socket
// is made on an OS thread moved into that namespace for the call, then
// moved back (a socket stays in the namespace it was made in).
func serveDNS(t *testing.T, nsPath, addr, name string, ips []string) {
	t.Helper()
	type result struct {
		pc  net.PacketConn
		err error
	}
	made := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			made <- result{err: err}
			return
		}
		defer home.Close()
		f, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			made <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			made <- result{err: fmt.Errorf("setns: %v", err)}
			return
		}
		pc, err := net.ListenPacket("udp", addr)
		// Back home before the thread is let go. If that fails, it stays
		// locked, and goes away with this goroutine.
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		made <- result{pc, err}
	}()
	r := <-made
	if r.err != nil {
		t.Fatalf("DNS server in the switch namespace: %v", r.err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, q := range req.Question {
			if q.Qtype == dns.TypeA && strings.EqualFold(q.Name, name) {
				for _, ip := range ips {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.ParseIP(ip)})
				}
			}
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: r.pc, Handler: handler}
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
}
