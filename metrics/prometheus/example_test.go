package prometheus_test

import (
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peerkit/peerkit/cluster"
	peerkitprom "github.com/peerkit/peerkit/metrics/prometheus"
)

// Serve a node's metrics on /metrics.
func ExampleNewCollector() {
	n, err := cluster.New("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(peerkitprom.NewCollector(n)) // WithoutRemoteLabels() in big clusters
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	_ = &http.Server{Addr: "127.0.0.1:9100", Handler: mux}
	// go srv.ListenAndServe()
}
