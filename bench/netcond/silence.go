package netcond

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peerkit/peerkit/internal/netnsenv"
	"github.com/peerkit/peerkit/transport"
)

func checkSilence(s string) error {
	switch {
	case s == "app", s == "nft":
		return nil
	case strings.HasPrefix(s, "nft:") && len(s) > 4 && !strings.ContainsAny(s[4:], " ;{}\"'\n"):
		return nil
	}
	return fmt.Errorf("netcond: silence %q: want app, nft or nft:DEV", s)
}

func (ss *session) silence() (string, error) {
	if ss.silenced != nil {
		return "", errors.New("already silenced")
	}
	if len(ss.nodes) == 0 {
		return "", errors.New("no nodes")
	}
	if ss.srv.silence == "app" {
		for _, sn := range ss.nodes {
			sn.fz.freeze()
		}
		ss.silenced = func() error {
			for _, sn := range ss.nodes {
				sn.fz.thaw()
			}
			return nil
		}
		return " app", nil
	}
	var ports []int
	for _, sn := range ss.nodes {
		addrs := []string{sn.n.AdvertiseAddr()}
		for _, r := range sn.n.Remotes() {
			addrs = append(addrs, r.Addr())
		}
		for _, a := range addrs {
			if _, p, err := net.SplitHostPort(a); err == nil {
				if n, err := strconv.Atoi(p); err == nil && !slices.Contains(ports, n) {
					ports = append(ports, n)
				}
			}
		}
	}
	undo, err := nftSilence(ss.srv.silence, ports)
	if err != nil {
		return "", err
	}
	ss.silenced = undo
	return " nft", nil
}

func (ss *session) unsilence() error {
	if ss.silenced == nil {
		return nil
	}
	err := ss.silenced()
	ss.silenced = nil
	return err
}

var silenceSeq atomic.Int64

// nftSilence loads a table into this process's network namespace that
// drops every TCP and UDP packet from or to one of ports, both ways, and
// returns how to delete it again.
func nftSilence(how string, ports []int) (func() error, error) {
	if len(ports) == 0 {
		return nil, errors.New("no ports to silence")
	}
	dev := "lo"
	if d, ok := strings.CutPrefix(how, "nft:"); ok {
		dev = d
	}
	family, in, out := "inet", "type filter hook input priority -10", "type filter hook output priority -10"
	if how != "nft" {
		family, in, out = netnsenv.Hooks(dev, -10)
	}
	var ps []string
	for _, p := range ports {
		ps = append(ps, strconv.Itoa(p))
	}
	set := strings.Join(ps, ", ")
	name := fmt.Sprintf("pkbench_silence_%d_%d", os.Getpid(), silenceSeq.Add(1))
	rules := fmt.Sprintf("\t\tmeta l4proto { tcp, udp } th dport { %[1]s } drop\n\t\tmeta l4proto { tcp, udp } th sport { %[1]s } drop\n", set)
	script := fmt.Sprintf("table %s %s {\n\tchain in {\n\t\t%s\n%s\t}\n\tchain out {\n\t\t%s\n%s\t}\n}\n", family, name, in, rules, out, rules)
	if out, err := nft(strings.NewReader(script), "-f", "-"); err != nil {
		return nil, fmt.Errorf("nft (needs root): %v: %s", err, out)
	}
	return func() error {
		if out, err := nft(nil, "delete", "table", family, name); err != nil {
			return fmt.Errorf("nft delete table: %v: %s", err, out)
		}
		return nil
	}, nil
}

func nft(stdin *strings.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nft", args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// freezer wraps a transport so that freeze makes every conn it made go
// silent, as a hung process would: reads wait, writes are swallowed, and a
// Close is held back until thaw (a hung process sends no FIN). Dials wait
// until thaw or their context ends. After a thaw, a conn that was frozen
// fails its reads: what arrived meanwhile was thrown away.
type freezer struct {
	transport.Transport
	mu       sync.Mutex
	frozen   bool
	thawed   chan struct{}
	deferred []net.Conn
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.frozen {
		f.frozen, f.thawed = true, make(chan struct{})
	}
}

func (f *freezer) thaw() {
	f.mu.Lock()
	cs := f.deferred
	f.deferred = nil
	if f.frozen {
		f.frozen = false
		close(f.thawed)
	}
	f.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

func (f *freezer) state() (bool, chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen, f.thawed
}

func (f *freezer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if frozen, thawed := f.state(); frozen {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-thawed:
			return nil, errors.New("netcond: dial while silenced")
		}
	}
	c, err := f.Transport.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &frozenConn{Conn: c, f: f, closed: make(chan struct{})}, nil
}

func (f *freezer) Listen(addr string) (net.Listener, error) {
	ln, err := f.Transport.Listen(addr)
	if err != nil {
		return nil, err
	}
	return frozenListener{ln, f}, nil
}

type frozenListener struct {
	net.Listener
	f *freezer
}

func (l frozenListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &frozenConn{Conn: c, f: l.f, closed: make(chan struct{})}, nil
}

type frozenConn struct {
	net.Conn
	f       *freezer
	once    sync.Once
	closed  chan struct{}
	spoiled atomic.Bool // was frozen: its stream lost bytes
}

var errSpoiled = errors.New("netcond: conn was silenced")

func (c *frozenConn) Read(b []byte) (int, error) {
	if frozen, _ := c.f.state(); !frozen && !c.spoiled.Load() {
		n, err := c.Conn.Read(b)
		if frozen, _ := c.f.state(); !frozen {
			return n, err
		}
	}
	c.spoiled.Store(true)
	if frozen, thawed := c.f.state(); frozen {
		select {
		case <-thawed:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	return 0, errSpoiled
}

func (c *frozenConn) Write(b []byte) (int, error) {
	if frozen, _ := c.f.state(); frozen {
		c.spoiled.Store(true)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *frozenConn) Close() error {
	first := false
	c.once.Do(func() { first = true; close(c.closed) })
	if !first {
		return net.ErrClosed
	}
	c.f.mu.Lock()
	if c.f.frozen {
		c.f.deferred = append(c.f.deferred, c.Conn)
		c.f.mu.Unlock()
		return nil
	}
	c.f.mu.Unlock()
	return c.Conn.Close()
}
