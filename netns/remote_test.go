//go:build netns

package netns

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The report's two-host form between two namespaces: -serve on h2,
// -connect on h1, and the tables come out with a row for every transport
// and no error.
func TestReportServeConnect(t *testing.T) {
	e := newEnv(t)
	bin := buildBinary(t, "github.com/peerkit/peerkit/bench/cmd/report")
	addr := e.ip(1) + ":7700"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", e.hosts[1], bin, "-serve", addr, "-silence", "nft:"+dev)
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var srvErr strings.Builder
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "serving") {
		t.Fatalf("-serve said %q (%v); stderr: %s", line, err, srvErr.String())
	}
	transports := []string{"tcp", "tcp+tls", "quic", "mux", "mux+tls"}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.hosts[0], bin, "-connect", addr,
		"-net-transports", strings.Join(transports, ","), "-net-sizes", "1024,65536", "-net-duration", "100ms", "-net-rounds", "1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	tables, err := cmd.Output()
	if err != nil {
		t.Fatalf("-connect: %v\n%s\n%s", err, tables, stderr.String())
	}
	t.Logf("-connect took %v:\n%s", time.Since(start).Round(time.Millisecond), tables)
	s := string(tables)
	for _, want := range []string{"### Throughput, MB/s", "### Round trips, head-of-line blocking and a silent host", "1KiB out", "64KiB in"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	for _, tr := range transports {
		if n := strings.Count(s, "| network | "+tr+" |"); n != 2 {
			t.Errorf("%s: %d rows, want 2 (one per table)", tr, n)
		}
	}
	if strings.Contains(s, "error") {
		t.Errorf("the tables show errors")
	}
	if !strings.Contains(stderr.String(), "about ") {
		t.Errorf("no estimate before the start: %s", stderr.String())
	}
	// The silenced nodes' nftables table is gone once the session ended.
	if out, _ := exec.Command("ip", "netns", "exec", e.hosts[1], "nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), "pkbench_silence") {
		t.Errorf("the server left its silence table behind: %s", out)
	}
}
