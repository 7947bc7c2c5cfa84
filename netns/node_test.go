//go:build netns

package netns

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Node settings for every test: peerkit's defaults. With 5 % loss each
// way (about 10 % per packet), TCP's retransmission backoff (200 ms,
// 400 ms, 800 ms, 1.6 s, ...) can stall a healthy stream, heartbeats
// included, for over two seconds when a segment and its retransmissions
// are lost in a row; a 2 s timeout then removed healthy peers about once
// in ten runs. Stalling past 5 s takes five losses in a row.
const (
	healthy    = time.Second
	netTimeout = 5 * time.Second
)

// proc is one testnode process in one host namespace, and what it told us.
type proc struct {
	e        *env
	t        testing.TB
	host     int
	addr     string
	name     string // "h3"
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	instance string
	exited   chan struct{}

	mu      sync.Mutex
	members map[string]string // addr -> instance, from added/removed lines
	events  []event
	recv    map[string]map[string][]int // burst -> sender -> sequence numbers, in arrival order
	recvAt  map[string]time.Time        // burst -> last arrival
	bytes   map[string]int              // burst -> payload bytes received
	replies map[string]chan string      // "members", "sent", "add" -> answers
}

type event struct {
	added bool
	at    time.Time // taken by the node process when its callback ran
	addr  string
	inst  string
}

// start runs a testnode for host i over transport tr and waits until it
// listens.
func (e *env) start(t testing.TB, i int, tr string, extra ...string) *proc {
	t.Helper()
	e.mu.Lock()
	e.seq++
	logName := filepath.Join(e.logDir, fmt.Sprintf("%02d-h%d-%s.log", e.seq, i+1, tr))
	e.mu.Unlock()
	stderr, err := os.Create(logName)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close() // the child has its own descriptor
	args := append([]string{"netns", "exec", e.hosts[i], e.bin,
		"-listen", e.addr(i), "-transport", tr,
		"-healthy", healthy.String(), "-timeout", netTimeout.String(), "-v"}, extra...)
	args = append(args, strings.Fields(os.Getenv("PEERKIT_NETNS_NODE_ARGS"))...)
	p := &proc{
		e: e, t: t, host: i, addr: e.addr(i), name: fmt.Sprintf("h%d", i+1),
		cmd:     exec.Command("ip", args...),
		exited:  make(chan struct{}),
		members: map[string]string{},
		recv:    map[string]map[string][]int{},
		recvAt:  map[string]time.Time{},
		bytes:   map[string]int{},
		replies: map[string]chan string{"members": make(chan string, 16), "sent": make(chan string, 16), "add": make(chan string, 16)},
	}
	// ip netns exec execs the node, so the pid is the node's; it dies with us.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stderr = stderr
	p.cmd.Env = append(os.Environ(), "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true")
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	listening := make(chan string, 1)
	go p.read(stdout, listening)
	select {
	case l := <-listening:
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != p.addr {
			t.Fatalf("%s: unexpected first line %q", p.name, l)
		}
		p.instance = f[2]
	case <-p.exited:
		t.Fatalf("%s exited at start (see %s)", p.name, logName)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not start listening within 10s", p.name)
	}
	return p
}

func (p *proc) read(stdout io.Reader, listening chan<- string) {
	defer func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "listening":
			listening <- line
		case "added", "removed":
			if len(f) != 4 {
				continue
			}
			ev := event{added: f[0] == "added", at: unixNano(f[1]), addr: f[2], inst: f[3]}
			p.mu.Lock()
			p.events = append(p.events, ev)
			if ev.added {
				p.members[ev.addr] = ev.inst
			} else if p.members[ev.addr] == ev.inst {
				delete(p.members, ev.addr)
			}
			p.mu.Unlock()
		case "recv":
			if len(f) != 6 {
				continue
			}
			seq, _ := strconv.Atoi(f[4])
			size, _ := strconv.Atoi(f[5])
			p.mu.Lock()
			burst, from := f[3], f[2]
			if p.recv[burst] == nil {
				p.recv[burst] = map[string][]int{}
			}
			p.recv[burst][from] = append(p.recv[burst][from], seq)
			p.recvAt[burst] = unixNano(f[1])
			p.bytes[burst] += size
			p.mu.Unlock()
		case "members", "sent":
			p.reply(f[0], line)
		case "ok", "err":
			p.reply("add", line)
		case "closed":
		default:
			fmt.Fprintf(os.Stderr, "%s: %s\n", p.name, line)
		}
	}
}

// reply hands an answer to whoever waits for it; unread answers are dropped.
func (p *proc) reply(kind, line string) {
	select {
	case p.replies[kind] <- line:
	default:
	}
}

func unixNano(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Unix(0, n)
}

func (p *proc) send(cmd string) {
	fmt.Fprintln(p.stdin, cmd) // an error means it exited; waits will tell
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *proc) kill() {
	if p.alive() {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// stop asks the node to leave gracefully, and kills it if it does not.
func (p *proc) stop() {
	p.send("quit")
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s did not exit within 10s of quit; killing it", p.name)
		p.kill()
	}
}

// memberSet returns the addresses the node has as connected remotes.
func (p *proc) memberSet() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var addrs []string
	for a := range p.members {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	return addrs
}

// askMembers asks the node itself (Remotes()) rather than our event log.
func (p *proc) askMembers() ([]string, error) {
	p.send("members")
	select {
	case l := <-p.replies["members"]:
		f := strings.Fields(l)
		return f[2:], nil
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("%s: no answer to members", p.name)
	}
}

// eventsSince returns the events after index from.
func (p *proc) eventsSince(from int) []event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events[from:])
}

func (p *proc) eventCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// lastEvent is when the node's membership last changed.
func (p *proc) lastEvent() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.events) == 0 {
		return time.Time{}
	}
	return p.events[len(p.events)-1].at
}
