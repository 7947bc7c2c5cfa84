// Command kubernetes is a peerkit node meant to run as one pod of a
// StatefulSet behind a headless Service (see the manifests beside it and
// the README's "Running on Kubernetes"). It listens on every interface,
// advertises the pod's IP (what a node on a wildcard does by itself),
// joins its peers through the Service's DNS name and keeps rejoining it,
// logs why remotes come and go, and serves its status page and Prometheus
// metrics over HTTP.
//
//	kubernetes -listen 0.0.0.0:7946 -seeds dns+peers.default.svc.cluster.local:7946 -http :8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/peerkit/peerkit/cluster"
	peerkitprom "github.com/peerkit/peerkit/metrics/prometheus"
	"github.com/peerkit/peerkit/status"
)

func main() {
	var c config
	flag.StringVar(&c.listen, "listen", "0.0.0.0:7946", "peerkit address to listen on")
	flag.StringVar(&c.seeds, "seeds", os.Getenv("PEERKIT_SEEDS"), "comma-separated seeds (host:port, dns+host:port, dnssrv+name); default $PEERKIT_SEEDS")
	flag.StringVar(&c.http, "http", ":8080", "address of the status page (/), /metrics and /healthz")
	flag.DurationVar(&c.rejoin, "rejoin", 30*time.Second, "how often to rejoin the seeds while some are missing")
	flag.Parse()
	c.secret = os.Getenv("PEERKIT_SECRET") // from a Kubernetes Secret
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, log, nil); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}

type config struct {
	listen, seeds, http, secret string
	rejoin                      time.Duration
}

// run starts the node and the HTTP server and returns when ctx ends (a
// SIGTERM from the kubelet: the node leaves gracefully). ready, if set, is
// called with the node and the HTTP address once both are up.
func run(ctx context.Context, c config, log *slog.Logger, ready func(n *cluster.Node, httpAddr string)) error {
	opts := []cluster.Option{cluster.WithLogger(log), cluster.WithRejoinInterval(c.rejoin)}
	if c.seeds != "" {
		opts = append(opts, cluster.WithSeeds(strings.Split(c.seeds, ",")...))
	}
	if c.secret != "" {
		opts = append(opts, cluster.WithSecret([]byte(c.secret)))
	}
	n, err := cluster.New(c.listen, opts...)
	if err != nil {
		return err
	}
	defer n.Close() // goodbye to every peer: they let this pod go, not redial it
	n.OnEvent(func(e cluster.Event) {
		switch e.Kind {
		case cluster.EventRemoved:
			log.Info("peer removed", "peer", e.Remote.String(), "reason", e.Reason.String(), "err", fmt.Sprint(e.Err))
		default:
			log.Info("peer "+e.Kind.String(), "peer", e.Remote.String(), "members", len(n.Remotes())+1)
		}
	})

	mux := http.NewServeMux()
	mux.Handle("/", status.Handler(n))
	mux.Handle("/metrics", peerkitprom.Handler(n))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", c.http)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("peerkit node up", "advertise", n.AdvertiseAddr(), "http", ln.Addr().String(), "seeds", c.seeds)
	if ready != nil {
		ready(n, ln.Addr().String())
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
