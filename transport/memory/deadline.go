package memory

import "time"

// deadline is net/pipe.go's pipeDeadline with a channel as its lock, so
// that a goroutine waiting for it is durably blocked in a synctest bubble,
// and with its timer reused: a conn whose reader sets a deadline before
// every Read moves one timer later (cheap for the runtime's timer heap)
// instead of stopping one and starting another (each stopped timer is
// garbage the heap must sweep, which a bubble of many thousand conns
// spent most of its time on).
type deadline struct {
	mu     chan struct{} // capacity 1; guards the rest
	timer  *time.Timer   // closes the cancel it was made with; nil if none
	armed  bool          // timer is running
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

	if d.armed {
		d.armed = false
		if !d.timer.Stop() {
			<-d.cancel // the timer fired: wait until its callback has closed cancel
		}
	}
	if isClosed(d.cancel) {
		d.cancel = make(chan struct{})
		d.timer = nil // it would close the old channel
	}
	if t.IsZero() {
		d.timer = nil // a conn whose deadline is off holds no timer
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.cancel)
		return
	}
	if d.timer == nil {
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
	} else {
		d.timer.Reset(dur)
	}
	d.armed = true
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
