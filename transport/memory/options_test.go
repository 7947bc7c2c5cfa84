package memory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/peerkit/peerkit/transport/memory"
)

// Invalid option values are errors that name the option, as in every
// other package: New returns the error, and a Network from NewNetwork
// fails every Listen and Dial with it instead of running with a value
// nobody asked for.
func TestInvalidOptionsNameTheOption(t *testing.T) {
	cases := map[string]memory.Option{
		"WithBufferSize": memory.WithBufferSize(0),
		"WithBacklog":    memory.WithBacklog(-1),
	}
	for name, opt := range cases {
		if _, err := memory.New(opt); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("New(%s invalid) = %v, want an error naming it", name, err)
		}
		nw := memory.NewNetwork(opt)
		if _, err := nw.Listen("a:1"); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("NewNetwork(%s invalid).Listen = %v, want the option's error", name, err)
		}
		if _, err := nw.Dial(context.Background(), "a:1"); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("NewNetwork(%s invalid).Dial = %v, want the option's error", name, err)
		}
		nw.Close()
	}
	if _, err := memory.New(nil); err == nil {
		t.Error("New(nil option) accepted")
	}
	// The last value wins.
	nw, err := memory.New(memory.WithBacklog(1), memory.WithBacklog(3), memory.WithTrace(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	ln, err := nw.Listen("a:1")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i := range 3 {
		c, err := nw.Dial(context.Background(), "a:1")
		if err != nil {
			t.Fatalf("dial %d of a backlog of 3: %v", i, err)
		}
		defer c.Close()
	}
}
