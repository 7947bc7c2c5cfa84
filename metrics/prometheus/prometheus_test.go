package prometheus_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/peerkit/peerkit/cluster"
	peerkitprom "github.com/peerkit/peerkit/metrics/prometheus"
	"github.com/peerkit/peerkit/transport/memory"
)

// A node that sent three 5-byte messages to b and failed to dial one
// address exports exactly that, with conventional names, and passes
// client_golang's lint.
func TestCollector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, _ := cluster.New("a:1", cluster.WithTransport(nw))
		defer a.Close()
		b, _ := cluster.New("b:1", cluster.WithTransport(nw))
		defer b.Close()
		if err := a.Add("b:1"); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			a.Broadcast([]byte("hello"))
			<-b.Inbox
		}
		a.Add("nobody:1")
		synctest.Wait()

		c := peerkitprom.NewCollector(a)
		want := `
# HELP peerkit_bytes_sent_total Payload bytes written to links.
# TYPE peerkit_bytes_sent_total counter
peerkit_bytes_sent_total 15
# HELP peerkit_dial_failures_total Dials whose transport could not open a connection.
# TYPE peerkit_dial_failures_total counter
peerkit_dial_failures_total 1
# HELP peerkit_messages_sent_total Data messages written to links.
# TYPE peerkit_messages_sent_total counter
peerkit_messages_sent_total 3
# HELP peerkit_remote_bytes_sent_total Payload bytes written to the remote's current link.
# TYPE peerkit_remote_bytes_sent_total counter
peerkit_remote_bytes_sent_total{remote="b:1"} 15
# HELP peerkit_remotes Remotes the node has an entry for, by lifecycle state.
# TYPE peerkit_remotes gauge
peerkit_remotes{state="backoff"} 0
peerkit_remotes{state="connecting"} 0
peerkit_remotes{state="up"} 1
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(want),
			"peerkit_bytes_sent_total", "peerkit_dial_failures_total", "peerkit_messages_sent_total",
			"peerkit_remote_bytes_sent_total", "peerkit_remotes"); err != nil {
			t.Fatal(err)
		}
		if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
			t.Fatalf("lint: %v %+v", err, problems)
		}
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(c); err != nil {
			t.Fatalf("a pedantic registry refuses the collector: %v", err)
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("gather: %v", err)
		}

		// Handler serves the same from a registry of its own.
		rec := httptest.NewRecorder()
		peerkitprom.Handler(a).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if body := rec.Body.String(); !strings.Contains(body, `peerkit_remotes{state="up"} 1`) || !strings.Contains(body, "peerkit_messages_sent_total 3") {
			t.Fatalf("Handler serves:\n%s", body)
		}

		// Without per-remote labels: only the node-wide series.
		all := testutil.CollectAndCount(c)
		slim := testutil.CollectAndCount(peerkitprom.NewCollector(a, peerkitprom.WithoutRemoteLabels()))
		if perRemote := all - slim; perRemote != 7 {
			t.Fatalf("%d series with remote labels, %d without: want 7 per remote", all, slim)
		}
		if n := testutil.CollectAndCount(peerkitprom.NewCollector(a, peerkitprom.WithoutRemoteLabels()), "peerkit_remote_queue_depth"); n != 0 {
			t.Fatalf("%d per-remote series with WithoutRemoteLabels", n)
		}
	})
}
