package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/peerkit/peerkit/cluster"
)

// Two pods: the second joins the first by a seed (here its address; in a
// cluster, the Service's DNS name, whose path the cluster package tests
// against a real DNS server), both serve /healthz, the status page and
// /metrics, and a SIGTERM (the context) makes them leave.
func TestTwoPods(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	type pod struct {
		n    *cluster.Node
		http string
		done chan error
		stop context.CancelFunc
	}
	start := func(seeds string) pod {
		ctx, stop := context.WithCancel(context.Background())
		p := pod{done: make(chan error, 1), stop: stop}
		up := make(chan struct{})
		go func() {
			p.done <- run(ctx, config{listen: "127.0.0.1:0", seeds: seeds, http: "127.0.0.1:0", rejoin: 100 * time.Millisecond}, log,
				func(n *cluster.Node, addr string) { p.n, p.http = n, addr; close(up) })
		}()
		select {
		case <-up:
		case err := <-p.done:
			t.Fatalf("pod did not start: %v", err)
		}
		return p
	}
	a := start("")
	joined := make(chan struct{}, 1)
	a.n.OnEvent(func(e cluster.Event) {
		if e.Kind == cluster.EventAdded {
			select {
			case joined <- struct{}{}:
			default:
			}
		}
	})
	b := start(a.n.AdvertiseAddr())
	select {
	case <-joined:
	case <-time.After(5 * time.Second):
		t.Fatal("the second pod did not join through its seed")
	}
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "peerkit_remotes{state=\"up\"} 1", "/": b.n.AdvertiseAddr()} {
		resp, err := http.Get("http://" + a.http + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Fatalf("%s lacks %q:\n%s", path, want, body)
		}
	}
	b.stop()
	if err := <-b.done; err != nil {
		t.Fatal(err)
	}
	a.stop()
	if err := <-a.done; err != nil {
		t.Fatal(err)
	}
}
