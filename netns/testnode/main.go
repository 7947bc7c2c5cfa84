// Command testnode is one peerkit node driven line by line over stdin and
// stdout, for the real-network tests in package netns (one testnode per
// network namespace). It is not an example: its output is for a program.
//
//	testnode -listen 10.77.0.11:7946 -transport tcp [-join ADDR,...]
//
// Output lines (stdout; times are Unix nanoseconds taken in this process):
//
//	listening ADDR INSTANCE
//	added TIME ADDR INSTANCE
//	removed TIME ADDR INSTANCE
//	recv TIME FROM BURST SEQ SIZE        one per message received
//	ok add ADDR | err add ADDR MESSAGE   answer to "add"
//	members N ADDR...                    answer to "members"
//	sent BURST N ERRORS                  answer to "burst", once all is queued
//	closed                               answer to "quit", then exit
//
// Commands (stdin, one per line):
//
//	add ADDR                 Add the peer (answered when its handshake ends)
//	members                  list the connected remotes
//	burst BURST N SIZE       Broadcast N messages "BURST SEQ" (SEQ = 1..N),
//	                         padded to SIZE bytes, to every connected remote
//	quit                     Close gracefully and exit (so does end of input)
//
// Killing the process (SIGKILL) is how a crash is simulated.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/tcp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	join := flag.String("join", "", "comma-separated addresses to Add at start")
	trName := flag.String("transport", "tcp", "tcp, quic or mux")
	healthy := flag.Duration("healthy", 200*time.Millisecond, "healthy (heartbeat) interval")
	timeout := flag.Duration("timeout", 2*time.Second, "network timeout")
	reconnect := flag.Duration("reconnect", 100*time.Millisecond, "reconnect backoff base")
	maxReconnect := flag.Duration("max-reconnect", 500*time.Millisecond, "reconnect backoff cap")
	quicIdle := flag.Duration("quic-idle", 0, "QUIC idle timeout (0: the transport's default)")
	verbose := flag.Bool("v", false, "debug log on stderr")
	seeds := flag.String("seeds", "", "comma-separated seeds for cluster.WithSeeds (dns+host:port, ...)")
	dnsServer := flag.String("dns", "", "DNS server (ip:port) that resolves the seeds (default: the system's)")
	rejoin := flag.Duration("rejoin", 500*time.Millisecond, "rejoin interval with -seeds")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("testnode: ")

	tr, err := newTransport(*trName, *quicIdle)
	if err != nil {
		log.Fatal(err)
	}
	if c, ok := tr.(io.Closer); ok {
		defer c.Close()
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := []cluster.Option{
		cluster.WithTransport(tr),
		cluster.WithLogger(logger),
		cluster.WithHealthyInterval(*healthy),
		cluster.WithNetworkTimeout(*timeout),
		cluster.WithReconnectInterval(*reconnect),
		cluster.WithMaxReconnectInterval(*maxReconnect),
	}
	if *seeds != "" {
		opts = append(opts, cluster.WithSeeds(strings.Split(*seeds, ",")...), cluster.WithRejoinInterval(*rejoin))
	}
	if *dnsServer != "" {
		server := *dnsServer
		opts = append(opts, cluster.WithResolver(&net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}))
	}
	n, err := cluster.New(*listen, opts...)
	if err != nil {
		log.Fatal(err)
	}
	out := &output{w: bufio.NewWriter(os.Stdout)}
	n.RemoteAdded(func(r cluster.Remote) {
		out.printf("added %d %s %x", time.Now().UnixNano(), r.Addr(), r.Instance())
	})
	n.RemoteRemoved(func(r cluster.Remote) {
		out.printf("removed %d %s %x", time.Now().UnixNano(), r.Addr(), r.Instance())
	})
	out.printf("listening %s %x", n.AdvertiseAddr(), n.Instance())
	// With -seeds, New starts joining at once: remotes added before the
	// callbacks above were registered are reported here (a remote added
	// in between is reported twice, which the reader takes as once).
	for _, r := range n.Remotes() {
		out.printf("added %d %s %x", time.Now().UnixNano(), r.Addr(), r.Instance())
	}

	var wg sync.WaitGroup
	wg.Go(func() { // the Inbox ends when Close returns
		for m := range n.Inbox {
			burst, seq, _ := strings.Cut(string(m.Payload), " ")
			seq, _, _ = strings.Cut(seq, " ")
			out.printf("recv %d %s %s %s %d", time.Now().UnixNano(), m.From.Addr(), burst, seq, len(m.Payload))
		}
	})
	for _, a := range strings.Split(*join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			wg.Go(func() { add(n, out, a, *timeout) })
		}
	}

	sc := bufio.NewScanner(os.Stdin)
commands:
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "add" && len(f) == 2:
			wg.Go(func() { add(n, out, f[1], *timeout) })
		case f[0] == "members":
			rs := n.Remotes()
			line := "members " + strconv.Itoa(len(rs))
			for _, r := range rs {
				line += " " + r.Addr()
			}
			out.printf("%s", line)
		case f[0] == "burst" && len(f) == 4:
			count, err1 := strconv.Atoi(f[2])
			size, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil {
				out.printf("error bad burst command %q", sc.Text())
				continue
			}
			wg.Go(func() { burst(n, out, f[1], count, size) })
		case f[0] == "quit":
			break commands
		default:
			out.printf("error unknown command %q", sc.Text())
		}
	}
	n.Close()
	wg.Wait()
	out.printf("closed")
}

func newTransport(name string, quicIdle time.Duration) (transport.Transport, error) {
	switch name {
	case "tcp":
		return tcp.New()
	case "quic":
		conf, err := quic.InsecureLocalTLS()
		if err != nil {
			return nil, err
		}
		var opts []quic.Option
		if quicIdle > 0 {
			opts = append(opts, quic.WithIdleTimeout(quicIdle))
		}
		return quic.New(conf, opts...)
	case "mux":
		return mux.New()
	}
	return nil, fmt.Errorf("unknown transport %q (want tcp, quic or mux)", name)
}

func add(n *cluster.Node, out *output, addr string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	defer cancel()
	if err := n.AddContext(ctx, addr); err != nil {
		out.printf("err add %s %s", addr, strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	out.printf("ok add %s", addr)
}

// burst broadcasts count messages "ID SEQ" padded to size bytes.
func burst(n *cluster.Node, out *output, id string, count, size int) {
	errs := 0
	for seq := 1; seq <= count; seq++ {
		p := []byte(id + " " + strconv.Itoa(seq) + " ")
		for len(p) < size {
			p = append(p, 'x')
		}
		if err := n.Broadcast(p); err != nil {
			errs++
		}
	}
	out.printf("sent %s %d %d", id, count, errs)
}

// output writes whole lines to stdout, one writer at a time.
type output struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *output) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", args...)
	o.w.Flush()
}
