//go:build racerepro

package racerepro

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestDueTimersInOneBubble runs, from four goroutines of each of many
// bubbles at once, timers that are due when they are made. Under -race
// with go1.26.8 it dies within seconds; without -race, or with one
// goroutine per bubble, it passes.
func TestDueTimersInOneBubble(t *testing.T) {
	for _, c := range []struct {
		name string
		due  func()
	}{
		{"AfterFunc", func() { time.AfterFunc(0, func() {}) }},
		{"NewTimer", func() { <-time.NewTimer(0).C }},
	} {
		t.Run(c.name, func(t *testing.T) {
			for range 200 {
				synctest.Test(t, func(t *testing.T) {
					var wg sync.WaitGroup
					for range 4 {
						wg.Go(func() {
							for range 2000 {
								c.due()
							}
						})
					}
					wg.Wait()
				})
			}
		})
	}
}
