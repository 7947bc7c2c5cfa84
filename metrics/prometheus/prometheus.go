// Package prometheus exports a node's Stats to Prometheus: a Collector,
// built on github.com/prometheus/client_golang, that reads cluster.Stats
// at every scrape. Package cluster does not import Prometheus; only this
// package does.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(peerkitprom.NewCollector(n))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The metrics, all prefixed peerkit_:
//
//	messages_sent_total, bytes_sent_total,            counters over every link the
//	messages_received_total, bytes_received_total     node ever had (payloads only)
//	messages_dropped_total                            queued but never written, or shed
//	reconnect_attempts_total                          redials of lost remotes
//	dial_failures_total                               dials that failed before a handshake
//	handshake_failures_total{cause}                   by cause
//	remotes{state}                                    remotes by lifecycle state
//
// and, per remote (label remote, its advertised address) unless
// WithoutRemoteLabels is given:
//
//	remote_messages_sent_total, remote_bytes_sent_total,
//	remote_messages_received_total, remote_bytes_received_total,
//	remote_messages_dropped_total     over the remote's current link: they
//	                                  start again from 0 when it reconnects,
//	                                  which rate() treats as a counter reset
//	remote_queue_depth                messages waiting in its send queue
//	remote_last_heard_timestamp_seconds
//
// A cluster of thousands of nodes makes as many series per node: drop the
// per-remote ones there with WithoutRemoteLabels. To tell nodes apart in
// one process, register each collector with prometheus.WrapRegistererWith
// and a label of your choice.
package prometheus

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peerkit/peerkit/cluster"
)

// Option configures a Collector.
type Option func(*Collector)

// WithoutRemoteLabels drops the per-remote series, for large clusters.
func WithoutRemoteLabels() Option { return func(c *Collector) { c.perRemote = false } }

// Collector is a prometheus.Collector of one node's Stats.
type Collector struct {
	n         *cluster.Node
	perRemote bool
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of n's Stats.
func NewCollector(n *cluster.Node, opts ...Option) *Collector {
	c := &Collector{n: n, perRemote: true}
	for _, o := range opts {
		o(c)
	}
	return c
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("peerkit_"+name, help, labels, nil)
}

var (
	msgsSent    = desc("messages_sent_total", "Data messages written to links.")
	bytesSent   = desc("bytes_sent_total", "Payload bytes written to links.")
	msgsRecv    = desc("messages_received_total", "Data messages received from links.")
	bytesRecv   = desc("bytes_received_total", "Payload bytes received from links.")
	dropped     = desc("messages_dropped_total", "Messages queued for a remote that went away before they were written, and control messages shed by a full queue.")
	reconnects  = desc("reconnect_attempts_total", "Redials of remotes lost ungracefully.")
	dialFails   = desc("dial_failures_total", "Dials whose transport could not open a connection.")
	hsFails     = desc("handshake_failures_total", "Failed handshakes, both directions, by cause.", "cause")
	remotes     = desc("remotes", "Remotes the node has an entry for, by lifecycle state.", "state")
	rMsgsSent   = desc("remote_messages_sent_total", "Data messages written to the remote's current link.", "remote")
	rBytesSent  = desc("remote_bytes_sent_total", "Payload bytes written to the remote's current link.", "remote")
	rMsgsRecv   = desc("remote_messages_received_total", "Data messages received on the remote's current link.", "remote")
	rBytesRecv  = desc("remote_bytes_received_total", "Payload bytes received on the remote's current link.", "remote")
	rDropped    = desc("remote_messages_dropped_total", "Messages dropped on the remote's current link.", "remote")
	rQueue      = desc("remote_queue_depth", "Messages waiting in the remote's send queue.", "remote")
	rLastHeard  = desc("remote_last_heard_timestamp_seconds", "When bytes last arrived from the remote, in Unix seconds.", "remote")
	allDescs    = []*prometheus.Desc{msgsSent, bytesSent, msgsRecv, bytesRecv, dropped, reconnects, dialFails, hsFails, remotes}
	remoteDescs = []*prometheus.Desc{rMsgsSent, rBytesSent, rMsgsRecv, rBytesRecv, rDropped, rQueue, rLastHeard}
	stateNames  = []cluster.State{cluster.StateConnecting, cluster.StateUp, cluster.StateBackoff}
)

// Describe sends the descriptions of every metric the Collector makes.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	if c.perRemote {
		for _, d := range remoteDescs {
			ch <- d
		}
	}
}

// Collect reads the node's Stats and sends them as metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.n.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(msgsSent, st.MessagesSent)
	counter(bytesSent, st.BytesSent)
	counter(msgsRecv, st.MessagesReceived)
	counter(bytesRecv, st.BytesReceived)
	counter(dropped, st.Dropped)
	counter(reconnects, st.ReconnectAttempts)
	counter(dialFails, st.DialFailures)
	for cause, v := range st.HandshakeFailures {
		counter(hsFails, v, cause)
	}
	byState := map[cluster.State]int{}
	for _, r := range st.Remotes {
		byState[r.State]++
	}
	for _, s := range stateNames {
		gauge(remotes, float64(byState[s]), s.String())
	}
	if !c.perRemote {
		return
	}
	for _, r := range st.Remotes {
		counter(rMsgsSent, r.MessagesSent, r.Addr)
		counter(rBytesSent, r.BytesSent, r.Addr)
		counter(rMsgsRecv, r.MessagesReceived, r.Addr)
		counter(rBytesRecv, r.BytesReceived, r.Addr)
		counter(rDropped, r.Dropped, r.Addr)
		gauge(rQueue, float64(r.QueueDepth), r.Addr)
		if !r.LastHeard.IsZero() {
			gauge(rLastHeard, float64(r.LastHeard.UnixNano())/1e9, r.Addr)
		}
	}
}

// Handler serves n's metrics in the Prometheus exposition format, from a
// registry of their own, for a program that has no registry yet:
//
//	http.Handle("/metrics", peerkitprom.Handler(n))
func Handler(n *cluster.Node, opts ...Option) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(n, opts...))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
