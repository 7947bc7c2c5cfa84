// Package netnsenv builds a small simulated network out of Linux network
// namespaces, for the real-network tests (package netns) and the report's
// network-conditions section (bench/cmd/report): hosts h1..hN, each its own
// namespace with one interface "eth0" whose other end is enslaved to the
// bridge "br0" in a switch namespace, so the root namespace is left
// untouched. The faults come from the kernel: packet loss and cut links from
// nftables rules in a host's namespace, bandwidth limits from a tbf qdisc,
// delay from netem where the kernel has it.
//
// It needs root, iproute2 and nftables; Check says what is missing.
// Everything an Env makes (namespaces, and with them every rule and qdisc
// in them) is removed by Close, and namespaces that a crashed earlier run
// left behind are removed by New: they are named prefix+pid, and a pid
// that no longer runs marks them stale.
package netnsenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dev is the name of each host's interface.
const Dev = "eth0"

// Config says what network to make.
type Config struct {
	Prefix   string // every namespace's name starts with it, then the pid
	Hosts    int    // number of hosts, at least 1
	Subnet   string // the first three octets and a dot, e.g. "10.77.0."
	HostBase int    // host i (from 0) gets Subnet + (HostBase+i), /24
	// Logf, if set, is told of stale namespaces removed and of a kernel
	// without netem.
	Logf func(format string, args ...any)
}

// Env is one run's network.
type Env struct {
	Run    string   // Prefix + pid: the prefix of this run's namespaces
	Switch string   // the switch namespace (holds br0)
	Hosts  []string // the host namespaces
	Netem  bool     // the kernel has sch_netem (delay)
	cfg    Config
}

// Check returns why this machine cannot make namespaces, or nil.
func Check() error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("needs root to create network namespaces (running as uid %d)", uid)
	}
	for _, tool := range []string{"ip", "nft", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install -y iproute2 nftables)", tool)
		}
	}
	return nil
}

// New checks that this machine can make the network, removes what crashed
// earlier runs of the same prefix left behind, and makes it. On error,
// whatever was made is removed again.
func New(cfg Config) (*Env, error) {
	if cfg.Hosts < 1 || cfg.Prefix == "" || cfg.Subnet == "" {
		return nil, errors.New("netnsenv: Config needs Prefix, Subnet and at least one host")
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if err := Check(); err != nil {
		return nil, err
	}
	e := &Env{Run: fmt.Sprintf("%s%d", cfg.Prefix, os.Getpid()), cfg: cfg}
	e.Switch = e.Run + "-sw"
	for i := range cfg.Hosts {
		e.Hosts = append(e.Hosts, fmt.Sprintf("%s-h%d", e.Run, i+1))
	}
	RemoveStale(cfg.Prefix, cfg.Logf)
	if err := probe(e.Run + "-probe"); err != nil {
		return nil, err
	}
	if err := e.build(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// probe checks with one namespace that this kernel can do it at all.
func probe(ns string) error {
	if out, err := Sh(nil, "ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("cannot create a network namespace: %v: %s", err, out)
	}
	defer Sh(nil, "ip", "netns", "del", ns)
	script := "table netdev probe {\n\tchain c {\n\t\ttype filter hook egress device lo priority 0\n\t\tnumgen random mod 100 < 5 drop\n\t}\n}\n"
	if out, err := Sh(strings.NewReader(script), "ip", "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("nftables does not work in a namespace (kernel without nf_tables netdev/numgen?): %v: %s", err, out)
	}
	return nil
}

func (e *Env) build() error {
	var err error
	must := func(name string, args ...string) {
		if err != nil {
			return
		}
		if out, cerr := Sh(nil, name, args...); cerr != nil {
			err = fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), cerr, out)
		}
	}
	must("ip", "netns", "add", e.Switch)
	must("ip", "-n", e.Switch, "link", "set", "lo", "up")
	must("ip", "-n", e.Switch, "link", "add", "br0", "type", "bridge")
	must("ip", "-n", e.Switch, "link", "set", "br0", "up")
	for i, h := range e.Hosts {
		port := fmt.Sprintf("h%d", i+1)
		must("ip", "netns", "add", h)
		must("ip", "-n", h, "link", "set", "lo", "up")
		// Made inside the switch namespace, its peer end born in the host's:
		// nothing ever appears in the root namespace.
		must("ip", "-n", e.Switch, "link", "add", port, "type", "veth", "peer", "name", Dev, "netns", h)
		must("ip", "-n", e.Switch, "link", "set", port, "master", "br0", "up")
		must("ip", "-n", h, "addr", "add", e.IP(i)+"/24", "dev", Dev)
		// veth passes TCP's 64 KiB GSO super-packets as one skb, which the
		// loss rules would drop whole; make TCP send wire-sized segments so
		// that loss is per packet, as on a real link.
		must("ip", "-n", h, "link", "set", "dev", Dev, "gso_max_segs", "1")
		must("ip", "-n", h, "link", "set", Dev, "up")
	}
	if err != nil {
		return err
	}
	// netem (delay) is often not built into minimal kernels.
	if _, nerr := Sh(nil, "tc", "-n", e.Hosts[0], "qdisc", "add", "dev", Dev, "root", "netem", "delay", "50ms"); nerr == nil {
		e.Netem = true
		must("tc", "-n", e.Hosts[0], "qdisc", "del", "dev", Dev, "root")
	} else {
		e.cfg.Logf("netem: not available in this kernel (tc qdisc add ... netem failed): no delay")
	}
	return err
}

// WaitReachable waits until host 0 reaches every other host (one ping
// each), for up to timeout per host; without ping it returns at once.
func (e *Env) WaitReachable(timeout time.Duration) error {
	if _, err := exec.LookPath("ping"); err != nil {
		return nil
	}
	for i := 1; i < len(e.Hosts); i++ {
		deadline := time.Now().Add(timeout)
		for {
			_, err := Sh(nil, "ip", "netns", "exec", e.Hosts[0], "ping", "-c1", "-W1", e.IP(i))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("h1 cannot reach h%d (%s): %v", i+1, e.IP(i), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// IP is host i's address.
func (e *Env) IP(i int) string { return e.cfg.Subnet + strconv.Itoa(e.cfg.HostBase+i) }

// Close kills what still runs in this run's namespaces and deletes them
// (their rules and qdiscs go with them). It never signals its own process.
func (e *Env) Close() {
	for _, ns := range append(append([]string{}, e.Hosts...), e.Switch) {
		DeleteNamespace(ns)
	}
}

// DeleteNamespace kills what still runs in ns (never this process), then
// deletes it.
func DeleteNamespace(ns string) {
	if out, err := Sh(nil, "ip", "netns", "pids", ns); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	Sh(nil, "ip", "netns", "del", ns)
}

// RemoveStale deletes the namespaces named prefix+pid-... whose pid no
// longer runs (left by runs since crashed or killed).
func RemoveStale(prefix string, logf func(format string, args ...any)) {
	out, err := Sh(nil, "ip", "netns", "list")
	if err != nil {
		return
	}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		ns := f[0]
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(ns, prefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			continue
		}
		if pid != os.Getpid() && processAlive(pid) {
			continue // another run, still going
		}
		if logf != nil {
			logf("removing stale namespace %s from an earlier run", ns)
		}
		DeleteNamespace(ns)
	}
}

// processAlive reports whether pid runs; a zombie (exited, not yet
// reaped, as under an init that does not reap) does not.
func processAlive(pid int) bool {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// Sh runs a command with a bound on its time and returns its combined
// output, trimmed.
func Sh(stdin *strings.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
