package cluster

import (
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
