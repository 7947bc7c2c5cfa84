package memory

import "time"

// deadline is net/pipe.go's pipeDeadline with a channel as its lock, so
// that a goroutine waiting for it is durably blocked in a synctest bubble.
type deadline struct {
	mu     chan struct{} // capacity 1; guards timer and cancel
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline has passed; never nil
}

func makeDeadline() deadline {
	return deadline{mu: make(chan struct{}, 1), cancel: make(chan struct{})}
}

// set arms the deadline at t; the zero t disarms it. A t in the past
// closes the channel returned by wait at once.
func (d *deadline) set(t time.Time) {
	d.mu <- struct{}{}
	defer func() { <-d.mu }()

	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until its callback has closed cancel
	}
	d.timer = nil

	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel that is closed when the deadline has passed.
func (d *deadline) wait() chan struct{} {
	d.mu <- struct{}{}
	defer func() { <-d.mu }()
	return d.cancel
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
