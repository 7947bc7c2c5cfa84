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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The simulated network: hosts h1..h5 with addresses 10.77.0.11..15/24, each
// with one interface "eth0" whose other end ("h1".."h5") is enslaved to the
// bridge "br0" in the switch namespace.
const (
	nsPrefix = "pknt" // every namespace we make starts with it; then our pid
	numHosts = 5
	subnet   = "10.77.0."
	hostBase = 11
	port     = 7946
	dev      = "eth0"
)

// env is one run's network: its namespaces, the testnode binary and the
// processes started in it.
type env struct {
	t      *testing.T
	run    string   // nsPrefix + pid: the prefix of this run's namespaces
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
	if os.Geteuid() != 0 {
		requireOrSkip(t, "they need root (network namespaces, nftables, tc): run them as root, e.g. sudo -E go test -tags netns -count=1 -v ./netns/")
	}
	for _, tool := range []string{"ip", "nft", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			requireOrSkip(t, fmt.Sprintf("%s is not installed (apt-get install -y iproute2 nftables)", tool))
		}
	}
	e := &env{t: t, run: fmt.Sprintf("%s%d", nsPrefix, os.Getpid()), logDir: os.Getenv("PEERKIT_NETNS_LOGDIR")}
	if e.logDir == "" {
		e.logDir = t.TempDir()
	} else if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.sw = e.run + "-sw"
	for i := range numHosts {
		e.hosts = append(e.hosts, fmt.Sprintf("%s-h%d", e.run, i+1))
	}
	removeStale(t)

	// Can this kernel do it at all? Probe with one namespace first.
	probe := e.run + "-probe"
	if out, err := sh(nil, "ip", "netns", "add", probe); err != nil {
		requireOrSkip(t, fmt.Sprintf("cannot create a network namespace: %v: %s", err, out))
	}
	out, err := sh(strings.NewReader("table netdev probe {\n\tchain c {\n\t\ttype filter hook egress device lo priority 0\n\t\tnumgen random mod 100 < 5 drop\n\t}\n}\n"),
		"ip", "netns", "exec", probe, "nft", "-f", "-")
	sh(nil, "ip", "netns", "del", probe)
	if err != nil {
		requireOrSkip(t, fmt.Sprintf("nftables does not work in a namespace (kernel without nf_tables netdev/numgen?): %v: %s", err, out))
	}

	t.Cleanup(e.cleanup) // registered before anything is made
	bin := filepath.Join(t.TempDir(), "testnode")
	goTool, err := exec.LookPath("go")
	if err != nil { // sudo may have dropped it from PATH
		goTool = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a cold build compiles quic-go
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, "github.com/peerkit/peerkit/netns/testnode").CombinedOutput(); err != nil {
		t.Fatalf("building testnode: %v\n%s", err, out)
	}
	e.bin = bin

	e.must(t, "ip", "netns", "add", e.sw)
	e.must(t, "ip", "-n", e.sw, "link", "set", "lo", "up")
	e.must(t, "ip", "-n", e.sw, "link", "add", "br0", "type", "bridge")
	e.must(t, "ip", "-n", e.sw, "link", "set", "br0", "up")
	for i, h := range e.hosts {
		port := fmt.Sprintf("h%d", i+1)
		e.must(t, "ip", "netns", "add", h)
		e.must(t, "ip", "-n", h, "link", "set", "lo", "up")
		// Made inside the switch namespace, its peer end born in the host's:
		// nothing ever appears in the root namespace.
		e.must(t, "ip", "-n", e.sw, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", h)
		e.must(t, "ip", "-n", e.sw, "link", "set", port, "master", "br0", "up")
		e.must(t, "ip", "-n", h, "addr", "add", e.ip(i)+"/24", "dev", dev)
		// veth passes TCP's 64 KiB GSO super-packets as one skb, which the
		// loss rules would drop whole; make TCP send wire-sized segments so
		// that loss is per packet, as on a real link.
		e.must(t, "ip", "-n", h, "link", "set", "dev", dev, "gso_max_segs", "1")
		e.must(t, "ip", "-n", h, "link", "set", dev, "up")
	}
	// netem (delay) is often not built into minimal kernels.
	if _, err := sh(nil, "tc", "-n", e.hosts[0], "qdisc", "add", "dev", dev, "root", "netem", "delay", "50ms"); err == nil {
		e.netem = true
		e.must(t, "tc", "-n", e.hosts[0], "qdisc", "del", "dev", dev, "root")
	} else {
		t.Logf("netem: not available in this kernel (tc qdisc add ... netem failed): the 50 ms delay is skipped")
	}
	// Wait until every host reaches every other (the bridge learns, DAD is off
	// for IPv4): one ping from h1 to each is enough.
	for i := 1; i < numHosts; i++ {
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := sh(nil, "ip", "netns", "exec", e.hosts[0], "ping", "-c1", "-W1", e.ip(i))
			if err == nil {
				break
			}
			if _, lerr := exec.LookPath("ping"); lerr != nil {
				break // no ping on this machine: the nodes' own dials will tell
			}
			if time.Now().After(deadline) {
				t.Fatalf("h1 cannot reach h%d (%s): %v", i+1, e.ip(i), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return e
}

func (e *env) ip(i int) string   { return subnet + strconv.Itoa(hostBase+i) }
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
	for _, ns := range append(append([]string{}, e.hosts...), e.sw) {
		deleteNamespace(ns)
	}
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

// deleteNamespace kills what still runs in ns, then deletes it.
func deleteNamespace(ns string) {
	if out, err := sh(nil, "ip", "netns", "pids", ns); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	sh(nil, "ip", "netns", "del", ns)
}

// removeStale deletes the namespaces that earlier runs, since crashed or
// killed, left behind: ours are named nsPrefix+pid, and a pid that no longer
// runs a test binary marks them stale.
func removeStale(t *testing.T) {
	out, err := sh(nil, "ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		ns := f[0]
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(ns, nsPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			continue
		}
		if pid != os.Getpid() && processAlive(pid) {
			continue // another run, still going
		}
		t.Logf("removing stale namespace %s from an earlier run", ns)
		deleteNamespace(ns)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// sh runs a command with a bound on its time and returns its combined output.
func sh(stdin *strings.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (e *env) must(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := sh(nil, name, args...); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// nft loads an nftables script into host i's namespace.
func (e *env) nft(t testing.TB, i int, script string) {
	t.Helper()
	if out, err := sh(strings.NewReader(script), "ip", "netns", "exec", e.hosts[i], "nft", "-f", "-"); err != nil {
		t.Fatalf("nft in h%d: %v\n%s\n%s", i+1, err, out, script)
	}
}

// The faults hook eth0 itself (netdev family, ingress and egress) rather
// than the inet input/output hooks: a packet dropped at the inet output hook
// fails the sender's sendmsg with EPERM, which no real network does, and
// quic-go takes that error as fatal for the whole connection; one dropped at
// the device's egress vanishes as if lost on the wire. Set
// PEERKIT_NETNS_HOOK=inet to use the input/output hooks instead.

// hooks returns the table family and the in and out hook clauses.
func hooks(prio int) (family, in, out string) {
	if os.Getenv("PEERKIT_NETNS_HOOK") == "inet" {
		return "inet", fmt.Sprintf("type filter hook input priority %d", prio),
			fmt.Sprintf("type filter hook output priority %d", prio)
	}
	return "netdev", fmt.Sprintf("type filter hook ingress device %s priority %d", dev, prio),
		fmt.Sprintf("type filter hook egress device %s priority %d", dev, prio)
}

// setLoss drops pct% of the packets host i sends and of those it receives,
// counting what it drops and what it lets through.
func (e *env) setLoss(t testing.TB, i, pct int) {
	family, in, out := hooks(0)
	e.nft(t, i, fmt.Sprintf(`table %[1]s pkloss {
	chain in {
		%[2]s
		numgen random mod 100 < %[4]d counter drop
		counter
	}
	chain out {
		%[3]s
		numgen random mod 100 < %[4]d counter drop
		counter
	}
}
`, family, in, out, pct))
}

// lossCounters returns how many packets host i's loss rules dropped and
// passed, both directions together.
func (e *env) lossCounters(i int) (dropped, passed int) {
	family, _, _ := hooks(0)
	out, err := sh(nil, "ip", "netns", "exec", e.hosts[i], "nft", "list", "table", family, "pkloss")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for j := range f {
			if f[j] == "packets" && j+1 < len(f) {
				n, _ := strconv.Atoi(f[j+1])
				if strings.Contains(line, "drop") {
					dropped += n
				} else {
					passed += n
				}
			}
		}
	}
	return dropped, passed
}

// cut silently drops everything host i sends or receives: no RST, no ICMP.
func (e *env) cut(t testing.TB, i int) {
	family, in, out := hooks(-10)
	e.nft(t, i, fmt.Sprintf(`table %[1]s pkcut {
	chain in {
		%[2]s; policy drop
	}
	chain out {
		%[3]s; policy drop
	}
}
`, family, in, out))
}

func (e *env) uncut(t testing.TB, i int) {
	t.Helper()
	family, _, _ := hooks(0)
	e.must(t, "ip", "netns", "exec", e.hosts[i], "nft", "delete", "table", family, "pkcut")
}

// setDelay adds 50 ms of delay on host i's egress (needs netem).
func (e *env) setDelay(t testing.TB, i int) {
	e.must(t, "tc", "-n", e.hosts[i], "qdisc", "replace", "dev", dev, "root", "netem", "delay", "50ms")
}

// setRate limits host i's egress with a token bucket.
func (e *env) setRate(t testing.TB, i int, rate string) {
	e.must(t, "tc", "-n", e.hosts[i], "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "32kb", "latency", "100ms")
}

// clearFaults removes every rule and qdisc from every host.
func (e *env) clearFaults() {
	for _, h := range e.hosts {
		sh(nil, "ip", "netns", "exec", h, "nft", "flush", "ruleset")
		sh(nil, "tc", "-n", h, "qdisc", "del", "dev", dev, "root")
	}
}
