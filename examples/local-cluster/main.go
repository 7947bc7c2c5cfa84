// Command local-cluster is peerkit's demo: it needs nothing but Go.
//
// It starts five nodes on loopback (the fifth in a child process, so that it
// can really be killed), joins them as a chain, prints membership as it
// converges, kills the child without a goodbye (SIGKILL), shows the others
// detect it and reconnect once it restarts on the same address, broadcasts
// a message, and closes everything cleanly.
//
//	go run ./examples/local-cluster
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/peerkit/peerkit/cluster"
)

// Short intervals so the demo runs in seconds; the defaults are 1 s
// heartbeats and a 5 s network timeout.
var opts = []cluster.Option{
	cluster.WithHealthyInterval(200 * time.Millisecond),
	cluster.WithNetworkTimeout(time.Second),
	cluster.WithReconnectInterval(100 * time.Millisecond),
	cluster.WithMaxReconnectInterval(500 * time.Millisecond),
}

func main() {
	child := flag.String("child", "", "internal: run one node listening on this address")
	join := flag.String("join", "", "internal: the child's first peer")
	flag.Parse()
	log.SetFlags(0)
	if *child != "" {
		runChild(*child, *join)
		return
	}
	start := time.Now()
	if err := run(); err != nil {
		log.Fatalf("local-cluster: %v", err)
	}
	fmt.Printf("done in %v\n", time.Since(start).Round(time.Millisecond))
}

func say(format string, args ...any) {
	fmt.Printf("%-8s "+format+"\n", append([]any{time.Now().Format("05.000")}, args...)...)
}

func run() error {
	var nodes []*cluster.Node
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	for i := range 4 {
		n, err := cluster.New("127.0.0.1:0", opts...)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		name := fmt.Sprintf("node%d", i+1)
		say("%s listening on %s", name, n.AdvertiseAddr())
		if i == 0 {
			n.RemoteChanged(func(rs []cluster.Remote) { say("node1 now knows %d: %v", len(rs), rs) })
		}
	}
	// Four in-process nodes, joined as a chain: each Adds the previous one.
	for i := 1; i < len(nodes); i++ {
		if err := nodes[i].Add(nodes[i-1].AdvertiseAddr()); err != nil {
			return err
		}
	}
	// The fifth node is a child process that joins the end of the chain.
	proc, err := startChild("127.0.0.1:0", nodes[3].AdvertiseAddr())
	if err != nil {
		return err
	}
	addr5 := proc.addr
	say("node5 (pid %d) listening on %s", proc.cmd.Process.Pid, addr5)
	if err := waitFor(5*time.Second, func() bool { return everyoneKnows(nodes, 4) }); err != nil {
		return fmt.Errorf("no full mesh: %w", err)
	}
	say("converged: all five nodes know each other")

	// Kill node5 without a goodbye, as a crash would.
	removed := make(chan time.Time, 8)
	added := make(chan cluster.Remote, 8)
	nodes[0].RemoteRemoved(func(r cluster.Remote) {
		if r.Addr() == addr5 {
			removed <- time.Now()
		}
	})
	nodes[0].RemoteAdded(func(r cluster.Remote) {
		if r.Addr() == addr5 {
			added <- r
		}
	})
	killed := time.Now()
	proc.cmd.Process.Signal(syscall.SIGKILL)
	proc.cmd.Wait()
	say("node5 killed with SIGKILL")
	select {
	case at := <-removed:
		say("node1 detected the crash after %v (closed connection, no timeout needed)", at.Sub(killed).Round(time.Microsecond))
	case <-time.After(5 * time.Second):
		return fmt.Errorf("the crash was not detected")
	}
	// Restart it on the same address; the others redial it by themselves.
	proc, err = startChild(addr5, "")
	if err != nil {
		return err
	}
	restarted := time.Now()
	say("node5 restarted on %s (pid %d), joining nobody", addr5, proc.cmd.Process.Pid)
	select {
	case r := <-added:
		say("node1 reconnected to node5 after %v (new instance %x)", time.Since(restarted).Round(time.Millisecond), r.Instance())
	case <-time.After(5 * time.Second):
		return fmt.Errorf("node5 was not reconnected")
	}
	if err := waitFor(5*time.Second, func() bool { return everyoneKnows(nodes, 4) }); err != nil {
		return fmt.Errorf("no full mesh after the restart: %w", err)
	}
	say("converged again")

	// Broadcast from node1; every other node prints what it got.
	if err := nodes[0].Broadcast([]byte("hello from node1")); err != nil {
		return err
	}
	for i, n := range nodes[1:] {
		select {
		case m := <-n.Inbox:
			say("node%d received %q from %s", i+2, m.Payload, m.From)
		case <-time.After(5 * time.Second):
			return fmt.Errorf("node%d got no broadcast", i+2)
		}
	}
	if line, err := proc.next(5 * time.Second); err != nil {
		return err
	} else {
		say("node5 %s", line)
	}

	// Leave gracefully: node5 first (SIGTERM), then the rest.
	proc.cmd.Process.Signal(syscall.SIGTERM)
	if err := proc.cmd.Wait(); err != nil {
		return fmt.Errorf("node5 exit: %w", err)
	}
	say("node5 left gracefully")
	if err := waitFor(5*time.Second, func() bool { return everyoneKnows(nodes, 3) }); err != nil {
		return err
	}
	for i, n := range nodes {
		n.Close()
		say("node%d closed", i+1)
	}
	nodes = nil
	return nil
}

func everyoneKnows(nodes []*cluster.Node, want int) bool {
	for _, n := range nodes {
		if len(n.Remotes()) != want {
			return false
		}
	}
	return true
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// child is node5's process; it reports on its stdout, line by line.
type child struct {
	cmd   *exec.Cmd
	addr  string
	lines chan string
}

func startChild(addr, join string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-child", addr, "-join", join)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	first, err := c.next(5 * time.Second)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	c.addr = strings.TrimPrefix(first, "listening ")
	return c, nil
}

func (c *child) next(d time.Duration) (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "", io.EOF
		}
		return l, nil
	case <-time.After(d):
		return "", fmt.Errorf("child said nothing for %v", d)
	}
}

// runChild is node5: it listens, joins, prints the first message it
// receives, and leaves gracefully on SIGTERM.
func runChild(addr, join string) {
	n, err := cluster.New(addr, opts...)
	if err != nil {
		log.Fatalf("node5: %v", err)
	}
	fmt.Printf("listening %s\n", n.AdvertiseAddr())
	if join != "" {
		if err := n.Add(join); err != nil {
			log.Fatalf("node5: %v", err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	for {
		select {
		case m := <-n.Inbox:
			fmt.Printf("received %q from %s\n", m.Payload, m.From)
		case <-sig:
			n.Close()
			return
		}
	}
}
