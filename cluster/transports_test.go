package cluster

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/peerkit/peerkit/internal/selfsigned"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/memory"
	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/tcp"
)

// The behaviour suite over every transport, in real time: convergence,
// ungraceful removal and reconnection, graceful leave, in-order delivery.
// Each node gets its own transport, as separate processes would.

type transportCase struct {
	name   string
	listen string
	make   func(t *testing.T) transport.Transport
}

func tlsConfig(t *testing.T) *tls.Config {
	t.Helper()
	c, err := selfsigned.InsecureConfig()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func closeWith(t *testing.T, tr transport.Transport) transport.Transport {
	if c, ok := tr.(io.Closer); ok {
		t.Cleanup(func() { c.Close() })
	}
	return tr
}

func transportCases(t *testing.T) []transportCase {
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	must := mustTransport(t)
	var shared *memory.Network
	return []transportCase{
		{"tcp", "127.0.0.1:0", func(t *testing.T) transport.Transport { return must(tcp.New()) }},
		{"tcp+tls", "127.0.0.1:0", func(t *testing.T) transport.Transport { return must(tcp.New(tcp.WithTLS(tlsConfig(t)))) }},
		{"quic", "127.0.0.1:0", func(t *testing.T) transport.Transport { return must(quic.New(tlsConfig(t))) }},
		{"mux", "127.0.0.1:0", func(t *testing.T) transport.Transport { return must(mux.New()) }},
		{"mux+tls", "127.0.0.1:0", func(t *testing.T) transport.Transport { return must(mux.New(mux.WithTLS(tlsConfig(t)))) }},
		{"memory", "node:0", func(t *testing.T) transport.Transport {
			if shared == nil {
				shared = memory.NewNetwork()
				t.Cleanup(func() { shared.Close(); shared = nil })
			}
			return shared
		}},
	}
}

// startOn starts a node with its own transport from tc.
func startOn(t *testing.T, tc transportCase, addr string) (*Node, transport.Transport) {
	t.Helper()
	tr := tc.make(t)
	n, err := New(addr, testOpts(WithTransport(tr), WithNetworkTimeout(2*time.Second), WithHealthyInterval(200*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, tr
}

func TestBehaviourOverEveryTransport(t *testing.T) {
	for _, tc := range transportCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			outer := t // subtests' cleanups run when they end; the cluster lives on
			nodes := make([]*Node, 5)
			trs := make([]transport.Transport, 5)
			for i := range nodes {
				nodes[i], trs[i] = startOn(t, tc, tc.listen)
			}
			t.Run("Convergence", func(t *testing.T) {
				for i := 1; i < len(nodes); i++ {
					if err := nodes[i].Add(nodes[i-1].AdvertiseAddr()); err != nil {
						t.Fatal(err)
					}
				}
				eventually(t, 10*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
			})
			t.Run("InOrder", func(t *testing.T) {
				a, b := nodes[0], nodes[4]
				to := remoteNamed(t, a, b.AdvertiseAddr())
				const total = 5000
				go func() {
					for i := range total {
						if err := a.Send(to, []byte(fmt.Sprint(i))); err != nil {
							t.Errorf("send %d: %v", i, err)
							return
						}
					}
				}()
				for i := range total {
					select {
					case m := <-b.Inbox:
						if string(m.Payload) != fmt.Sprint(i) {
							t.Fatalf("message %d arrived as %q", i, m.Payload)
						}
					case <-time.After(10 * time.Second):
						t.Fatalf("message %d lost", i)
					}
				}
			})
			t.Run("CrashAndReconnect", func(t *testing.T) {
				victim := nodes[4]
				addr := victim.AdvertiseAddr()
				victim.close(false) // no goodbye
				if c, ok := trs[4].(io.Closer); ok && tc.name != "memory" {
					c.Close() // the process is gone, and its sessions with it
				}
				rest := nodes[:4]
				eventually(t, 10*time.Second, func() bool { return fullMesh(rest) }, func() string { return meshReport(rest) })
				for _, n := range rest {
					if n.stats.reconnects.Load() == 0 {
						eventually(t, 5*time.Second, func() bool { return n.stats.reconnects.Load() > 0 }, func() string { return "no redial of the crashed peer" })
					}
				}
				restarted, err := New(addr, testOpts(WithTransport(tc.make(outer)), WithNetworkTimeout(2*time.Second), WithHealthyInterval(200*time.Millisecond))...)
				if err != nil {
					t.Skipf("cannot listen again on %s: %v", addr, err)
				}
				outer.Cleanup(func() { restarted.Close() })
				nodes[4] = restarted
				eventually(t, 15*time.Second, func() bool { return fullMesh(nodes) }, func() string { return meshReport(nodes) })
			})
			t.Run("GracefulLeave", func(t *testing.T) {
				nodes[0].Close()
				rest := nodes[1:]
				eventually(t, 5*time.Second, func() bool { return fullMesh(rest) }, func() string { return meshReport(rest) })
				before := make([]uint64, len(rest))
				for i, n := range rest {
					before[i] = n.stats.reconnects.Load()
				}
				time.Sleep(time.Second) // several reconnect intervals
				for i, n := range rest {
					if n.stats.reconnects.Load() != before[i] {
						t.Fatalf("%s redialled a node that left", n.AdvertiseAddr())
					}
				}
			})
		})
	}
}

func remoteNamed(t *testing.T, n *Node, addr string) Remote {
	t.Helper()
	for _, r := range n.Remotes() {
		if r.Addr() == addr {
			return r
		}
	}
	t.Fatalf("%s does not know %s", n.AdvertiseAddr(), addr)
	return Remote{}
}

// quic-go and yamux are imported only by their own transport packages;
// cluster imports no transport but tcp, and neither net/http nor
// html/template (the status page is package status).
func TestImportGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, "github.com/peerkit/peerkit/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]string{
		"github.com/quic-go/quic-go": "github.com/peerkit/peerkit/transport/quic",
		"github.com/hashicorp/yamux": "github.com/peerkit/peerkit/transport/mux",
	}
	checked := 0
	for _, line := range strings.Split(string(out), "\n") {
		pkg, imports, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(pkg, "github.com/peerkit/peerkit") {
			continue
		}
		if strings.HasPrefix(pkg, "github.com/peerkit/peerkit/bench") {
			continue // the benchmarks measure raw quic-go and yamux streams as baselines
		}
		checked++
		for _, imp := range strings.Fields(imports) {
			for dep, owner := range allowed {
				if (imp == dep || strings.HasPrefix(imp, dep+"/")) && pkg != owner {
					t.Errorf("%s imports %s; only %s may", pkg, imp, owner)
				}
			}
		}
		if pkg == "github.com/peerkit/peerkit/cluster" {
			for _, imp := range strings.Fields(imports) {
				if imp == "net/http" || imp == "html/template" || strings.HasPrefix(imp, "github.com/prometheus/") {
					t.Errorf("cluster imports %s; the status page and metrics live in their own packages", imp)
				}
				if strings.HasPrefix(imp, "github.com/peerkit/peerkit/transport/") && imp != "github.com/peerkit/peerkit/transport/tcp" {
					t.Errorf("cluster imports %s; it may import only the interfaces and transport/tcp", imp)
				}
			}
		}
	}
	if checked < 8 {
		t.Fatalf("go list named only %d peerkit packages:\n%s", checked, out)
	}
}
