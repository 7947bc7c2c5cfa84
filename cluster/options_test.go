package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestInvalidOptionsNameTheOption(t *testing.T) {
	cases := map[string]Option{
		"WithTransport":            WithTransport(nil),
		"WithCodec":                WithCodec(nil),
		"WithHealthyInterval":      WithHealthyInterval(0),
		"WithNetworkTimeout":       WithNetworkTimeout(-time.Second),
		"WithHandshakeTimeout":     WithHandshakeTimeout(0),
		"WithReconnectInterval":    WithReconnectInterval(0),
		"WithMaxReconnectInterval": WithMaxReconnectInterval(0),
		"WithReconnectAttempts":    WithReconnectAttempts(-1),
		"WithLogger":               WithLogger(nil),
		"WithInboxSize":            WithInboxSize(-1),
		"WithMaxMessageSize":       WithMaxMessageSize(0),
		"WithSendQueueSize":        WithSendQueueSize(0),
		"WithMaxHandshakes":        WithMaxHandshakes(0),
		"WithMaxRemotes":           WithMaxRemotes(0),
		"WithMaxPeerList":          WithMaxPeerList(0),
		"WithTombstoneTTL":         WithTombstoneTTL(0),
		"WithAdvertiseAddr":        WithAdvertiseAddr("no-port"),
		"WithSecret":               WithSecret([]byte("short")),
		"WithMeta":                 WithMeta(make([]byte, 5000)),
	}
	for name, opt := range cases {
		n, err := New("127.0.0.1:0", opt)
		if err == nil {
			n.Close()
			t.Errorf("%s: invalid value accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name the option", name, err)
		}
	}
	// A combination is checked once, at the end: heartbeats must come
	// more often than the timeout.
	_, err := New("127.0.0.1:0", WithNetworkTimeout(time.Second), WithHealthyInterval(2*time.Second))
	if err == nil || !strings.Contains(err.Error(), "WithHealthyInterval") {
		t.Errorf("healthy interval longer than the timeout: %v", err)
	}
	// The backoff's cap may not be below its base.
	_, err = New("127.0.0.1:0", WithReconnectInterval(2*time.Second), WithMaxReconnectInterval(time.Second))
	if err == nil || !strings.Contains(err.Error(), "WithMaxReconnectInterval") {
		t.Errorf("reconnect cap 1s below its 2s base: %v", err)
	}
	// A base set above the default cap, with no cap given, is the cap.
	if n, err := New("127.0.0.1:0", WithReconnectInterval(2*time.Minute)); err != nil {
		t.Errorf("a 2 min reconnect base with the default cap: %v", err)
	} else {
		if n.opts.reconnectMax != 2*time.Minute {
			t.Errorf("cap %v, want the 2 min base", n.opts.reconnectMax)
		}
		n.Close()
	}
	// The last value wins.
	n, err := New("127.0.0.1:0", WithInboxSize(1), WithInboxSize(7))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if cap(n.Inbox) != 7 {
		t.Errorf("inbox capacity %d, want the last value 7", cap(n.Inbox))
	}
}
