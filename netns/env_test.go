//go:build netns

package netns

import (
	"bytes"
	"context"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerkit/peerkit/internal/netnsenv"
)

// The simulated network (internal/netnsenv): hosts h1..h5 with addresses
// 10.77.0.11..15/24, each with one interface "eth0" whose other end
// ("h1".."h5") is enslaved to the bridge "br0" in the switch namespace.
const (
	nsPrefix = "pknt" // every namespace we make starts with it; then our pid
	numHosts = 5
	subnet   = "10.77.0."
	hostBase = 11
	port     = 7946
	dev      = netnsenv.Dev
)

// env is one run's network: its namespaces, the testnode binary and the
// processes started in it.
type env struct {
	t      *testing.T
	net    *netnsenv.Env
	sw     string   // switch namespace
	hosts  []string // host namespaces
	bin    string   // testnode binary
	logDir string
	netem  bool // the kernel has sch_netem

	mu    sync.Mutex
	procs []*proc // every process started, for cleanup
	seq   int     // numbers log files
}

// requireOrSkip skips the test with why, or fails it if
// PEERKIT_NETNS_REQUIRE is set (so that CI cannot pass by skipping).
func requireOrSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("PEERKIT_NETNS_REQUIRE") != "" {
		t.Fatalf("netns tests cannot run: %s (PEERKIT_NETNS_REQUIRE is set)", why)
	}
	t.Skipf("netns tests skipped: %s", why)
}

// newEnv checks that this machine can run the tests, removes what crashed
// earlier runs left behind, builds the testnode and makes the network. All
// of it is undone by t.Cleanup, also when the test fails.
func newEnv(t *testing.T) *env {
	t.Helper()
	if err := netnsenv.Check(); err != nil {
		requireOrSkip(t, fmt.Sprintf("%v: run them as root, e.g. sudo -E go test -tags netns -count=1 -v ./netns/", err))
	}
	e := &env{t: t, logDir: os.Getenv("PEERKIT_NETNS_LOGDIR")}
	if e.logDir == "" {
		e.logDir = t.TempDir()
	} else if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.bin = buildBinary(t, "github.com/peerkit/peerkit/netns/testnode")

	n, err := netnsenv.New(netnsenv.Config{Prefix: nsPrefix, Hosts: numHosts, Subnet: subnet, HostBase: hostBase, Logf: t.Logf})
	if err != nil {
		requireOrSkip(t, err.Error())
	}
	e.net, e.sw, e.hosts, e.netem = n, n.Switch, n.Hosts, n.Netem
	t.Cleanup(e.cleanup)
	if !e.netem {
		t.Logf("netem: not available in this kernel: the 50 ms delay is skipped")
	}
	if err := n.WaitReachable(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	return e
}

// buildBinary builds the main package pkg into the test's temporary folder.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	goTool, err := exec.LookPath("go")
	if err != nil { // sudo may have dropped it from PATH
		goTool = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a cold build compiles quic-go
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func (e *env) ip(i int) string   { return e.net.IP(i) }
func (e *env) addr(i int) string { return fmt.Sprintf("%s:%d", e.ip(i), port) }

// cleanup kills every process and deletes every namespace of this run.
func (e *env) cleanup() {
	e.mu.Lock()
	procs := e.procs
	e.procs = nil
	e.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	e.net.Close()
}

// dumpLogs prints the tail of the stderr of every node that ran over
// transport tr, to help a failed run.
func (e *env) dumpLogs(t testing.TB, tr string) {
	files, _ := filepath.Glob(filepath.Join(e.logDir, "*-"+tr+".log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if len(b) > 3000 {
			b = b[len(b)-3000:]
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				b = b[i+1:]
			}
		}
		t.Logf("--- stderr of %s (tail):\n%s", filepath.Base(f), b)
	}
}

func (e *env) must(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := netnsenv.Sh(nil, name, args...); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func fatalIf(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// setLoss drops pct% of the packets host i sends and of those it receives.
func (e *env) setLoss(t testing.TB, i, pct int) { t.Helper(); fatalIf(t, e.net.SetLoss(i, pct)) }

// lossCounters returns how many packets host i's loss rules dropped and
// passed, both directions together.
func (e *env) lossCounters(i int) (dropped, passed int) { return e.net.LossCounters(i) }

// cut silently drops everything host i sends or receives: no RST, no ICMP.
func (e *env) cut(t testing.TB, i int)   { t.Helper(); fatalIf(t, e.net.Cut(i)) }
func (e *env) uncut(t testing.TB, i int) { t.Helper(); fatalIf(t, e.net.Uncut(i)) }

// setDelay adds 50 ms of delay on host i's egress (needs netem).
func (e *env) setDelay(t testing.TB, i int) {
	t.Helper()
	fatalIf(t, e.net.SetDelay(i, 50*time.Millisecond))
}

// setRate limits host i's egress with a token bucket.
func (e *env) setRate(t testing.TB, i int, rate string) {
	t.Helper()
	fatalIf(t, e.net.SetRate(i, rate))
}

// clearFaults removes every rule and qdisc from every host.
func (e *env) clearFaults() { e.net.ClearFaults() }
