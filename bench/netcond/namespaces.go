package netcond

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peerkit/peerkit/internal/netnsenv"
)

// Condition is one state of the network between the two namespaces.
type Condition struct {
	Name  string
	Loss  int           // percent of packets dropped, each way (nftables)
	Rate  string        // each way's bandwidth, as tc takes it (tbf)
	Delay time.Duration // round-trip delay added (netem: half on each host)
	// PerPacket makes the hosts send wire-sized packets (lossN conditions,
	// so that loss is per packet); otherwise they pass segmentation-offload
	// packets of up to 64 KiB, as NICs with TSO/GSO do.
	PerPacket bool
}

var condRE = regexp.MustCompile(`^(clean|loss([0-9]{1,2})|rate([0-9]{1,5})(kbit|mbit|gbit)|delay([0-9]{1,4})ms)$`)

// ParseCondition reads "clean", "lossN" (N % each way), "rateNmbit" (also
// kbit, gbit) or "delayNms" (round trip; needs netem).
func ParseCondition(s string) (Condition, error) {
	m := condRE.FindStringSubmatch(s)
	if m == nil {
		return Condition{}, fmt.Errorf("netcond: condition %q: want clean, lossN, rateNmbit or delayNms", s)
	}
	c := Condition{Name: s}
	switch {
	case m[2] != "":
		c.Loss, _ = strconv.Atoi(m[2])
		c.PerPacket = true
	case m[3] != "":
		c.Rate = m[3] + m[4]
	case m[5] != "":
		ms, _ := strconv.Atoi(m[5])
		c.Delay = time.Duration(ms) * time.Millisecond
	}
	return c, nil
}

// DefaultConditions are the report's: no fault, the same with wire-sized
// packets (the baseline of the loss conditions), 1 % and 5 % loss, a
// 100 Mbit/s cap, and 50 ms of round-trip delay where the kernel has netem.
func DefaultConditions(netem bool) []string {
	c := []string{"clean", "loss0", "loss1", "loss5", "rate100mbit"}
	if netem {
		c = append(c, "delay50ms")
	}
	return c
}

// Describe says what a condition does, for the report.
func (c Condition) Describe() string {
	switch {
	case c.PerPacket && c.Loss == 0:
		return "no fault, but every packet wire-sized (no segmentation offload): the baseline of the loss conditions"
	case c.Loss > 0:
		return fmt.Sprintf("%d %% of packets dropped each way (nftables numgen on the serving host's eth0, ingress and egress); wire-sized packets, so that one loss is one packet", c.Loss)
	case c.Rate != "":
		return fmt.Sprintf("each way capped at %s (tbf on both hosts' egress: 32 KiB burst, 100 ms of queue)", c.Rate)
	case c.Delay > 0:
		return fmt.Sprintf("%v of round-trip delay (netem, half on each host's egress)", c.Delay)
	}
	return "no fault: a veth pair through a bridge, 64 KiB segmentation-offload packets as with a NIC's TSO/GSO"
}

// Namespaces is the report's network: two hosts, h1 measures, h2 serves.
type Namespaces struct {
	env    *netnsenv.Env
	exe    string
	srv    *exec.Cmd
	read   chan struct{} // closed when the server's stdout has been read to its end
	addr   string        // the server's control address
	closed bool
}

const controlPort = 7700

// NewNamespaces makes the two hosts and starts exe -serve in h2. exe is a
// program whose -serve and -connect flags run Serve and ChildMain (the
// report itself). Close undoes it all.
func NewNamespaces(ctx context.Context, exe string) (*Namespaces, error) {
	env, err := netnsenv.New(netnsenv.Config{Prefix: "pkbn", Hosts: 2, Subnet: "10.78.0.", HostBase: 11})
	if err != nil {
		return nil, err
	}
	ns := &Namespaces{env: env, exe: exe, addr: fmt.Sprintf("%s:%d", env.IP(1), controlPort)}
	if err := env.WaitReachable(5 * time.Second); err != nil {
		ns.Close()
		return nil, err
	}
	ns.srv = command(ctx, "ip", "netns", "exec", env.Hosts[1], exe, "-serve", ns.addr, "-silence", "nft:"+netnsenv.Dev)
	out, err := ns.srv.StdoutPipe()
	if err != nil {
		ns.srv = nil
		ns.Close()
		return nil, err
	}
	ns.srv.Stderr = os.Stderr
	if err := ns.srv.Start(); err != nil {
		ns.srv = nil
		ns.Close()
		return nil, err
	}
	ready := make(chan error, 1)
	ns.read = make(chan struct{})
	go func() { // ends when the server's stdout does, at the latest on Close, which waits for it
		defer close(ns.read)
		sc := bufio.NewScanner(out)
		if sc.Scan() && strings.HasPrefix(sc.Text(), "serving") {
			ready <- nil
			io.Copy(io.Discard, out)
			return
		}
		ready <- errors.New("netcond: the server did not start (its errors are above)")
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("netcond: the server did not start in 30s")
	}
	if err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Netem reports whether the kernel can add delay.
func (ns *Namespaces) Netem() bool { return ns.env.Netem }

// command runs a program that dies with this process.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Close stops the server and deletes the namespaces, with every rule and
// qdisc in them. A second Close does nothing.
func (ns *Namespaces) Close() {
	if ns.closed {
		return
	}
	ns.closed = true
	if ns.srv != nil { // started
		ns.srv.Process.Kill()
		<-ns.read // its stdout ends with it
		ns.srv.Wait()
		ns.srv = nil
	}
	ns.env.Close()
}

// Run sets the condition, then measures plan from h1 in a child process
// (exe -connect), whose progress lines go to step.
func (ns *Namespaces) Run(ctx context.Context, c Condition, plan Plan, step Progress) ([]Result, error) {
	e := ns.env
	e.ClearFaults()
	err := errors.Join(e.SetSegments(0, c.PerPacket), e.SetSegments(1, c.PerPacket))
	switch {
	case err != nil:
	case c.Loss > 0:
		err = e.SetLoss(1, c.Loss, controlPort)
	case c.Rate != "":
		err = errors.Join(e.SetRate(0, c.Rate), e.SetRate(1, c.Rate))
	case c.Delay > 0:
		if !e.Netem {
			return nil, errors.New("netcond: this kernel has no netem (tc qdisc add ... netem failed): no delay")
		}
		err = errors.Join(e.SetDelay(0, c.Delay/2), e.SetDelay(1, c.Delay/2))
	}
	defer e.ClearFaults()
	if err != nil {
		return nil, err
	}
	pj, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	cmd := command(ctx, "ip", "netns", "exec", e.Hosts[0], ns.exe, "-connect", ns.addr, "-netcond-child", string(pj), "-netcond-label", c.Name)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	var stdout strings.Builder
	cmd.Stdout = &limited{w: &stdout, n: 1 << 20}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var tail []string
	sc := bufio.NewScanner(errPipe)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "step "); ok {
			step("%s", s)
		} else if tail = append(tail, sc.Text()); len(tail) > 20 {
			tail = tail[1:]
		}
	}
	io.Copy(io.Discard, errPipe) // past a line too long for the scanner
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("netcond: measuring under %s: %v\n%s", c.Name, err, strings.Join(tail, "\n"))
	}
	var rs []Result
	if err := json.Unmarshal([]byte(stdout.String()), &rs); err != nil {
		return nil, fmt.Errorf("netcond: the measuring child's results: %v", err)
	}
	return rs, nil
}

// ChildMain is the measuring child of Namespaces.Run: it measures the plan
// (JSON) against addr, writes each step to stderr as a line "step ...",
// and the results as JSON to stdout.
func ChildMain(ctx context.Context, addr, planJSON, label string) error {
	var plan Plan
	if err := json.Unmarshal([]byte(planJSON), &plan); err != nil {
		return fmt.Errorf("netcond: plan: %v", err)
	}
	rs, err := Connect(ctx, addr, plan, label, func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "step "+format+"\n", args...)
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(rs)
}

// limited writes at most n bytes to w and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	k := min(len(p), l.n)
	if k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
