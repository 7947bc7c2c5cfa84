package status_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"go.uber.org/goleak"

	"github.com/peerkit/peerkit/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func node(t *testing.T, opts ...cluster.Option) *cluster.Node {
	t.Helper()
	n, err := cluster.New("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// The handler serves JSON with hex instance ids and each remote's
// metadata, an HTML page that escapes the metadata, and the recent failed
// dials and handshakes.
func TestHandler(t *testing.T) {
	a := node(t)
	b := node(t, cluster.WithMeta([]byte(`<b>zone="x"</b>`)))
	if err := a.Add(b.AdvertiseAddr()); err != nil {
		t.Fatal(err)
	}
	if err := a.Add("127.0.0.1:1"); err == nil {
		t.Fatal("Add to a closed port succeeded")
	}
	srv := httptest.NewServer(status.Handler(a))
	defer srv.Close()

	resp, body := get(t, srv.URL+"?format=json")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("JSON content type %q", ct)
	}
	var doc struct {
		Addr     string
		Instance string
		Remotes  []struct {
			Addr, Instance, Meta, State string
		}
		HandshakeFailures map[string]uint64                   `json:"handshake_failures"`
		RecentFailures    []struct{ Addr, Stage, Err string } `json:"recent_failures"`
		DialFailures      uint64                              `json:"dial_failures"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	if doc.Addr != a.AdvertiseAddr() || doc.Instance != fmt.Sprintf("%016x", a.Instance()) {
		t.Fatalf("JSON node %q instance %q", doc.Addr, doc.Instance)
	}
	if len(doc.Remotes) != 1 || doc.Remotes[0].Addr != b.AdvertiseAddr() || doc.Remotes[0].State != "up" ||
		doc.Remotes[0].Instance != fmt.Sprintf("%016x", b.Instance()) || doc.Remotes[0].Meta != `<b>zone="x"</b>` {
		t.Fatalf("JSON remotes: %+v", doc.Remotes)
	}
	if _, ok := doc.HandshakeFailures["unauthorized"]; !ok {
		t.Fatalf("JSON lacks handshake failure causes: %+v", doc.HandshakeFailures)
	}
	if doc.DialFailures != 1 || len(doc.RecentFailures) != 1 || doc.RecentFailures[0].Stage != "dial" ||
		doc.RecentFailures[0].Addr != "127.0.0.1:1" || !strings.Contains(doc.RecentFailures[0].Err, "refused") {
		t.Fatalf("JSON failures: %d, %+v", doc.DialFailures, doc.RecentFailures)
	}

	_, page := get(t, srv.URL)
	for _, want := range []string{b.AdvertiseAddr(), `class="up"`, "1 of 1 remotes up", "reconnect attempts",
		fmt.Sprintf("%016x", b.Instance()), "&lt;b&gt;zone=&#34;x&#34;&lt;/b&gt;", "127.0.0.1:1"} {
		if !strings.Contains(string(page), want) {
			t.Fatalf("HTML page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(string(page), "<b>zone") {
		t.Fatal("the page does not escape metadata")
	}
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST got %d", resp.StatusCode)
	}
	browserCheck(t, srv.URL, "peerkit node "+a.AdvertiseAddr(), b.AdvertiseAddr(), "1 of 1 remotes up")

	// b leaves: the page and the JSON say who went, and why.
	bAddr, bInst := b.AdvertiseAddr(), fmt.Sprintf("%016x", b.Instance())
	removed := make(chan struct{}, 1)
	a.OnEvent(func(e cluster.Event) {
		if e.Kind == cluster.EventRemoved {
			select {
			case removed <- struct{}{}:
			default:
			}
		}
	})
	b.Close()
	select { // Stats holds the removal before the event is told
	case <-removed:
	case <-time.After(5 * time.Second):
		t.Fatal("a did not remove b within 5s of its Close")
	}
	_, body = get(t, srv.URL+"?format=json")
	var removals struct {
		RecentRemovals []struct{ Addr, Instance, Reason string } `json:"recent_removals"`
	}
	if err := json.Unmarshal(body, &removals); err != nil {
		t.Fatal(err)
	}
	if r := removals.RecentRemovals; len(r) != 1 || r[0].Addr != bAddr || r[0].Instance != bInst || r[0].Reason != "left" {
		t.Fatalf("JSON removals: %+v, want %s %s left", r, bAddr, bInst)
	}
	_, page = get(t, srv.URL)
	if !strings.Contains(string(page), "<td>left</td>") {
		t.Fatalf("the page does not show the removal's reason:\n%s", page)
	}
}

// browserCheck renders url in headless Chromium, where it is installed,
// and checks the DOM holds want.
func browserCheck(t *testing.T, url string, want ...string) {
	chromium := os.Getenv("PEERKIT_CHROMIUM")
	if chromium == "" {
		chromium, _ = exec.LookPath("chromium")
	}
	if chromium == "" {
		t.Log("no Chromium installed: skipping the headless-browser check")
		return
	}
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	done := make(chan struct{})
	var dom []byte
	var err error
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
	for _, w := range want {
		if !strings.Contains(string(dom), w) {
			t.Fatalf("rendered DOM lacks %q:\n%s", w, dom)
		}
	}
}
