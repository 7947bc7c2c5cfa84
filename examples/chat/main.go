// Command chat is a terminal chat over a peerkit cluster: run one per
// terminal, join any member, and every line you type reaches everyone.
//
//	go run ./examples/chat -listen 127.0.0.1:7001 -name ann
//	go run ./examples/chat -listen 127.0.0.1:7002 -name bob -join 127.0.0.1:7001
//	go run ./examples/chat -listen 127.0.0.1:7003 -name cy  -join 127.0.0.1:7002
//
// It prints joins, leaves and failures as they happen. Ctrl-C (or end of
// input) leaves gracefully: the others drop this node without redialling.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport"
	"github.com/peerkit/peerkit/transport/mux"
	"github.com/peerkit/peerkit/transport/quic"
	"github.com/peerkit/peerkit/transport/tcp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	join := flag.String("join", "", "comma-separated addresses of members to join")
	transportName := flag.String("transport", "tcp", "tcp, quic or mux (all nodes must agree)")
	secret := flag.String("secret", "", "shared secret (at least 16 bytes); nodes without it are refused")
	name := flag.String("name", "", "your name, shown to the others (default: your address)")
	flag.Parse()
	log.SetFlags(0)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	cfg := config{listen: *listen, join: *join, transport: *transportName, secret: *secret, name: *name}
	if err := run(cfg, os.Stdin, os.Stdout, sig); err != nil {
		log.Fatalf("chat: %v", err)
	}
}

type config struct {
	listen, join, transport, secret, name string
	ready                                 func(addr string) // called once listening (tests)
}

func newTransport(name string) (transport.Transport, error) {
	switch name {
	case "tcp":
		return tcp.New()
	case "quic":
		// QUIC always runs TLS. This demo uses a self-signed certificate
		// and skips verification; a real deployment passes its own config.
		conf, err := quic.InsecureLocalTLS()
		if err != nil {
			return nil, err
		}
		return quic.New(conf)
	case "mux":
		return mux.New()
	}
	return nil, fmt.Errorf("unknown -transport %q (valid: tcp, quic, mux)", name)
}

// run chats until in ends or sig fires, reading lines from in and writing
// what happens to out.
func run(cfg config, in io.Reader, out io.Writer, sig <-chan os.Signal) error {
	listen, join, transportName, secret, name := cfg.listen, cfg.join, cfg.transport, cfg.secret, cfg.name
	tr, err := newTransport(transportName)
	if err != nil {
		return err
	}
	if c, ok := tr.(io.Closer); ok {
		defer c.Close()
	}
	opts := []cluster.Option{cluster.WithTransport(tr), cluster.WithMeta([]byte(name))}
	if secret != "" {
		opts = append(opts, cluster.WithSecret([]byte(secret)))
	}
	n, err := cluster.New(listen, opts...)
	if err != nil {
		return err
	}
	defer n.Close()
	me := name
	if me == "" {
		me = n.AdvertiseAddr()
	}
	fmt.Fprintf(out, "* %s listening on %s over %s; type to broadcast, Ctrl-C to leave\n", me, n.AdvertiseAddr(), transportName)
	if cfg.ready != nil {
		cfg.ready(n.AdvertiseAddr())
	}

	n.OnEvent(func(e cluster.Event) {
		switch {
		case e.Kind == cluster.EventAdded:
			fmt.Fprintf(out, "* %s joined (%d in the room)\n", who(e.Remote), len(n.Remotes())+1)
		case e.Kind == cluster.EventMetaChanged:
			fmt.Fprintf(out, "* %s is now known as %s\n", e.Remote.Addr(), who(e.Remote))
		case e.Reason == cluster.ReasonLost:
			fmt.Fprintf(out, "* %s lost (%v); reconnecting\n", who(e.Remote), e.Err)
		case e.Reason == cluster.ReasonReplaced:
			fmt.Fprintf(out, "* %s restarted\n", who(e.Remote))
		default: // left, or let go here
			fmt.Fprintf(out, "* %s left\n", who(e.Remote))
		}
	})
	for _, addr := range strings.Split(join, ",") {
		if addr = strings.TrimSpace(addr); addr == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.AddContext(ctx, addr)
		cancel()
		if err != nil {
			fmt.Fprintf(out, "* could not join %s: %v\n", addr, err)
			switch {
			case errors.Is(err, cluster.ErrUnauthorized):
				fmt.Fprintln(out, "* (check -secret: it must be the same on every node)")
			case errors.Is(err, cluster.ErrHandshake) && !errors.Is(err, cluster.ErrIncompatible) && !errors.Is(err, cluster.ErrDeclined):
				// Not peerkit, or the peer hung up mid-handshake: a tcp
				// node and a mux node read each other's first bytes as
				// garbage.
				fmt.Fprintf(out, "* (not a node of this kind there: do the transports differ? this node uses -transport %s; valid: tcp, quic, mux)\n", transportName)
			case errors.Is(err, cluster.ErrUnreachable):
				// quic is UDP: between it and tcp or mux, a dial is refused
				// as if nothing listened; a mux session to a tcp node dies.
				fmt.Fprintf(out, "* (nothing answers there over %s: is the node up, or do the transports differ? valid: tcp, quic, mux)\n", transportName)
			}
		}
	}

	lines := make(chan string)
	go func() { // ends with the process: it blocks reading the terminal
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				fmt.Fprintln(out, "* end of input: leaving")
				return nil
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			if err := n.Broadcast([]byte(line)); err != nil {
				fmt.Fprintf(out, "* not delivered everywhere: %v\n", err)
			}
		case m, ok := <-n.Inbox:
			if !ok {
				return nil
			}
			fmt.Fprintf(out, "<%s> %s\n", who(m.From), m.Payload)
		case <-sig:
			fmt.Fprintln(out, "* leaving")
			return nil
		}
	}
}

// who names a remote by its chosen name, else its address.
func who(r cluster.Remote) string {
	if name := string(r.Meta()); name != "" {
		return name + "@" + r.Addr()
	}
	return r.Addr()
}
