// Package bench measures peerkit against the raw transports it runs on.
//
// Every transport (tcp, tcp+tls, quic, mux, mux+tls, memory) is measured
// twice in the same process: through the cluster layer (Node.Send to the
// remote's Inbox) and raw (two conns of the same transport, used directly
// with a plain 4-byte length prefix and the same 16 KiB bufio buffering as
// the core, flushed when the sender runs dry). The ratio of the two is what
// the cluster layer costs. Reference baselines built without peerkit (a bare
// TCP conn, a TLS conn, a yamux stream, a quic-go stream and net.Pipe) show
// what each transport costs.
//
// The measurements are exported so that the benchmarks (bench_test.go, for
// go test -bench and benchstat) and the report (go run ./bench/cmd/report,
// which writes a Markdown table and an SVG chart) share them.
package bench
