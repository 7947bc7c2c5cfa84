package cluster_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/transport/memory"
)

// TestExampleSynctestPattern runs the pattern Example_testingWithSynctest
// shows, so the documented code is known to work.
func TestExampleSynctestPattern(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memory.NewNetwork()
		defer nw.Close()
		opts := []cluster.Option{cluster.WithTransport(nw), cluster.WithNetworkTimeout(time.Minute)}
		a, _ := cluster.New("a:1", opts...)
		defer a.Close()
		b, _ := cluster.New("b:1", opts...)
		defer b.Close()
		if err := a.Add("b:1"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		nw.BlackHole("b:1")
		time.Sleep(time.Minute)
		synctest.Wait()
		for len(a.Remotes()) != 0 {
			time.Sleep(time.Second)
		}
		if d := time.Since(start); d > time.Minute+2*cluster.DefaultHealthyInterval {
			t.Fatalf("silent peer removed after %v of virtual time", d)
		}
	})
}
