package cluster

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/codec"
	"github.com/peerkit/peerkit/transport/memory"
)

func TestStatsCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a, b := pair(t, nw)
		rb := a.Remotes()[0]
		for range 10 {
			if err := a.Send(rb, make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
		}
		for range 10 {
			<-b.Inbox
		}
		synctest.Wait()
		sa, sb := a.Stats(), b.Stats()
		if sa.MessagesSent != 10 || sa.BytesSent != 1000 || sb.MessagesReceived != 10 || sb.BytesReceived != 1000 {
			t.Fatalf("totals: a sent %d/%d B, b received %d/%d B; want 10/1000 each", sa.MessagesSent, sa.BytesSent, sb.MessagesReceived, sb.BytesReceived)
		}
		if len(sa.Remotes) != 1 || sa.Remotes[0].State != StateUp || sa.Remotes[0].MessagesSent != 10 || sa.Remotes[0].Instance != b.Instance() {
			t.Fatalf("a's remote stats: %+v", sa.Remotes)
		}
		if sa.Remotes[0].LastHeard.IsZero() || sa.Remotes[0].QueueCapacity != DefaultSendQueueSize {
			t.Fatalf("a's remote stats: %+v", sa.Remotes[0])
		}
		// Totals survive the link; a lost remote shows as backoff, and its
		// redials are counted.
		nw.BlackHole("b:1")
		time.Sleep(3 * testTimeout)
		sa = a.Stats()
		if sa.MessagesSent != 10 || len(sa.Remotes) != 1 || sa.Remotes[0].State == StateUp || sa.ReconnectAttempts == 0 {
			t.Fatalf("after loss: sent %d, remotes %+v, reconnects %d", sa.MessagesSent, sa.Remotes, sa.ReconnectAttempts)
		}
		// Handshake failures by cause.
		j := newMemNode(t, nw, "json:1", WithCodec(codec.JSON))
		j.Add("a:1")
		synctest.Wait()
		if got := a.Stats().HandshakeFailures["incompatible"]; got != 1 {
			t.Fatalf("incompatible handshakes counted %d, want 1", got)
		}
		if got := j.Stats().HandshakeFailures["incompatible"]; got != 1 {
			t.Fatalf("dialer counted %d incompatible handshakes, want 1", got)
		}
	})
}

func TestMetaInHandshakeAndUpdatedInPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		a := newMemNode(t, nw, "a:1", WithMeta([]byte("zone=a")))
		b := newMemNode(t, nw, "b:1", WithMeta([]byte("zone=b")))
		ev := record(a)
		if err := a.Add("b:1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := string(a.Remotes()[0].Meta()); got != "zone=b" {
			t.Fatalf("a sees b's meta %q", got)
		}
		if got := string(b.Remotes()[0].Meta()); got != "zone=a" {
			t.Fatalf("b sees a's meta %q", got)
		}
		if err := b.SetMeta([]byte("zone=b2")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := string(a.Remotes()[0].Meta()); got != "zone=b2" {
			t.Fatalf("after SetMeta a sees %q", got)
		}
		if got := ev.get(); len(got) != 1 {
			t.Fatalf("SetMeta reconnected: events %v", got)
		}
		if err := b.SetMeta(make([]byte, 5000)); err == nil {
			t.Fatal("SetMeta accepted 5000 bytes")
		}
	})
}

func TestStatusHandler(t *testing.T) {
	a := newTCPNode(t)
	b := newTCPNode(t)
	if err := a.Add(b.AdvertiseAddr()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(StatusHandler(a))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Addr    string
		Remotes []struct {
			Addr  string
			State string
		}
		HandshakeFailures map[string]uint64 `json:"handshake_failures"`
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("JSON content type %q", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st.Addr != a.AdvertiseAddr() || len(st.Remotes) != 1 || st.Remotes[0].Addr != b.AdvertiseAddr() || st.Remotes[0].State != "up" {
		t.Fatalf("JSON view: %+v", st)
	}
	if _, ok := st.HandshakeFailures["unauthorized"]; !ok {
		t.Fatalf("JSON lacks handshake failure causes: %+v", st.HandshakeFailures)
	}

	resp, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{b.AdvertiseAddr(), `class="up"`, "1 of 1 remotes up", "reconnect attempts"} {
		if !strings.Contains(string(page), want) {
			t.Fatalf("HTML page lacks %q:\n%s", want, page)
		}
	}
	resp, err = http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST got %d", resp.StatusCode)
	}

	// The page as a browser renders it, where Chromium is installed.
	chromium := os.Getenv("PEERKIT_CHROMIUM")
	if chromium == "" {
		chromium, _ = exec.LookPath("chromium")
	}
	if chromium == "" {
		t.Log("no Chromium installed: skipping the headless-browser check")
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+dir, "--dump-dom", srv.URL)
	done := make(chan struct{})
	var dom []byte
	go func() {
		dom, err = cmd.Output()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("headless Chromium hung")
	}
	if err != nil {
		t.Fatalf("headless Chromium: %v", err)
	}
	for _, want := range []string{"peerkit node " + a.AdvertiseAddr(), b.AdvertiseAddr(), "1 of 1 remotes up"} {
		if !strings.Contains(string(dom), want) {
			t.Fatalf("rendered DOM lacks %q:\n%s", want, dom)
		}
	}
}
