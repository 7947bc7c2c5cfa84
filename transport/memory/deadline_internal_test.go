package memory

import (
	"testing"
	"testing/synctest"
	"time"
)

// A deadline moved again and again keeps one timer, and fires at the
// last time it was set to; set after it fired, it arms afresh; the zero
// time disarms it; a time in the past closes at once.
func TestDeadlineReusesItsTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := makeDeadline()
		start := time.Now()
		d.set(start.Add(time.Second))
		timer := d.timer
		for i := range 10 {
			time.Sleep(100 * time.Millisecond)
			d.set(time.Now().Add(time.Second))
			if d.timer != timer {
				t.Fatalf("set %d made a new timer", i)
			}
		}
		<-d.wait()
		if got := time.Since(start); got != 2*time.Second {
			t.Fatalf("fired after %v, want 2s (1s after the last set)", got)
		}

		d.set(time.Now().Add(time.Second))
		if isClosed(d.wait()) {
			t.Fatal("set after firing did not rearm")
		}
		d.set(time.Time{})
		time.Sleep(2 * time.Second)
		if isClosed(d.wait()) {
			t.Fatal("a disarmed deadline fired")
		}
		d.set(time.Now().Add(-time.Second))
		if !isClosed(d.wait()) {
			t.Fatal("a deadline in the past is not closed")
		}
		d.set(time.Now().Add(time.Second))
		if isClosed(d.wait()) {
			t.Fatal("a deadline moved from the past to the future stays closed")
		}
		d.set(time.Time{})
	})
}
