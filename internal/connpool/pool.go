// Package connpool is the pool of shared sessions that the multiplexing
// transports (mux and quic) keep, one per remote address, and the rules
// they share:
//
//   - One dial attempt per address at a time: callers that find an
//     attempt in progress wait for it rather than dialling again.
//   - An attempt that failed for a real reason fails its waiters too; one
//     that ended only because its caller's context did is retried by each
//     waiter with its own context.
//   - A session found dead is dropped and replaced; a session on which
//     opening a stream fails is taken as dead, dropped, and the open is
//     tried once more on a fresh one.
//   - Each stream opened on a session holds a Lease until it is closed;
//     a session with no lease left for the idle timeout is closed and
//     forgotten, so that nothing stays open for a peer no longer used.
//
// The pool starts no goroutine of its own: dials run on the caller's
// goroutine, and an idle session is closed by a timer whose callback Close
// waits for.
package connpool

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// Session is what a pool keeps per address: a connection on which
// streams are opened. Its methods must be safe for concurrent use, and
// Close must be idempotent.
type Session interface {
	comparable
	// Alive reports whether streams may still be opened on the session.
	Alive() bool
	// Close closes the session and every stream on it.
	Close() error
}

// Config configures a Pool.
type Config[S Session] struct {
	// Net names the transport in the *net.OpError values the pool
	// returns ("mux", "quic").
	Net string
	// Dial makes a new session to addr. It must return once ctx is done.
	// Its errors are returned to the callers as they are.
	Dial func(ctx context.Context, addr string) (S, error)
	// IdleTimeout is how long a session with no lease is kept before it
	// is closed and forgotten. Zero or negative keeps it until it dies or
	// the pool closes.
	IdleTimeout time.Duration
}

// Pool holds at most one session per address. It is safe for concurrent
// use.
type Pool[S Session] struct {
	cfg    Config[S]
	timers sync.WaitGroup // idle timers armed or running

	mu      sync.Mutex
	closed  bool
	entries map[string]*entry[S]
}

// entry is one session, or the attempt to make it. ready is closed once
// sess or err is set; they do not change after.
type entry[S Session] struct {
	addr  string
	ready chan struct{}
	sess  S
	err   error

	// Guarded by Pool.mu.
	cancel context.CancelFunc // ends the attempt; nil once it is over
	uses   int                // leases held
	idle   *time.Timer        // armed while uses is 0
	gen    uint64             // bumped on every acquire; a stale timer sees it
}

// New returns an empty pool.
func New[S Session](cfg Config[S]) *Pool[S] {
	return &Pool[S]{cfg: cfg, entries: make(map[string]*entry[S])}
}

// Lease is one use of a session: a stream opened on it. Release it when
// the stream is closed.
type Lease[S Session] struct {
	p    *Pool[S]
	e    *entry[S]
	once sync.Once
}

// Session returns the leased session.
func (l *Lease[S]) Session() S { return l.e.sess }

// Release gives the lease back. Only the first call counts.
func (l *Lease[S]) Release() { l.once.Do(func() { l.p.release(l.e) }) }

// Open returns a lease on a live session to addr on which open succeeded,
// dialling a session if there is none. If open fails while ctx is live,
// the session is taken as dead: it is dropped and open is tried once more
// on a fresh session. open must not keep the session if it fails.
func (p *Pool[S]) Open(ctx context.Context, addr string, open func(S) error) (*Lease[S], error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, p.opErr(err)
		}
		e, err := p.get(ctx, addr)
		if err != nil {
			return nil, err
		}
		err = open(e.sess)
		if err == nil {
			return &Lease[S]{p: p, e: e}, nil
		}
		p.release(e)
		if ctx.Err() != nil {
			return nil, p.opErr(ctx.Err())
		}
		// The session died between the check and the open: replace it once.
		p.drop(e)
		if attempt > 0 {
			return nil, p.opErr(err)
		}
	}
}

// get returns addr's live session with one use acquired, dialling one if
// there is none. Callers that find an attempt in progress wait for it.
func (p *Pool[S]) get(ctx context.Context, addr string) (*entry[S], error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, p.opErr(net.ErrClosed)
		}
		e := p.entries[addr]
		if e == nil {
			actx, cancel := context.WithCancel(ctx)
			e = &entry[S]{addr: addr, ready: make(chan struct{}), cancel: cancel, uses: 1}
			p.entries[addr] = e
			p.mu.Unlock()
			p.connect(actx, e)
			if e.err != nil {
				return nil, e.err
			}
			return e, nil
		}
		p.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, p.opErr(ctx.Err())
		}
		if e.err == nil {
			p.mu.Lock()
			current := p.entries[addr] == e
			alive := current && e.sess.Alive()
			if alive {
				p.acquireLocked(e)
			}
			p.mu.Unlock()
			if alive {
				return e, nil
			}
			if current {
				p.drop(e) // found dead
			}
			continue // (an entry already gone was closed by whoever removed it)
		}
		if !isCtxErr(e.err) {
			return nil, e.err // the shared attempt failed for a real reason
		}
		// Another caller's context ended its attempt: try with ours.
	}
}

// connect runs e's attempt and fills e. A failed attempt leaves the pool
// at once, so that the next caller tries again.
func (p *Pool[S]) connect(ctx context.Context, e *entry[S]) {
	defer close(e.ready)
	s, err := p.cfg.Dial(ctx, e.addr)
	p.mu.Lock()
	e.cancel()
	e.cancel = nil
	orphan := false
	if p.closed { // Close ended the attempt, or came after it
		orphan = err == nil
		err = p.opErr(net.ErrClosed)
	}
	if err != nil {
		e.err = err
		if p.entries[e.addr] == e {
			delete(p.entries, e.addr)
		}
	} else {
		e.sess = s
	}
	p.mu.Unlock()
	if orphan {
		s.Close()
	}
}

// acquireLocked counts one more use of e and disarms its idle timer.
func (p *Pool[S]) acquireLocked(e *entry[S]) {
	e.uses++
	e.gen++
	p.stopIdleLocked(e)
}

// release counts one use of e less. When none is left, a live session
// starts its idle timer and a dead one is dropped at once.
func (p *Pool[S]) release(e *entry[S]) {
	p.mu.Lock()
	e.uses--
	if e.uses > 0 || p.entries[e.addr] != e {
		p.mu.Unlock()
		return
	}
	if !e.sess.Alive() {
		p.removeLocked(e)
		p.mu.Unlock()
		e.sess.Close()
		return
	}
	if p.cfg.IdleTimeout > 0 {
		gen := e.gen
		p.timers.Add(1)
		e.idle = time.AfterFunc(p.cfg.IdleTimeout, func() {
			defer p.timers.Done()
			p.expire(e, gen)
		})
	}
	p.mu.Unlock()
}

// expire closes and forgets e if it has had no use since its timer was
// armed.
func (p *Pool[S]) expire(e *entry[S], gen uint64) {
	p.mu.Lock()
	if e.gen != gen || e.uses > 0 || p.entries[e.addr] != e {
		p.mu.Unlock()
		return
	}
	e.idle = nil
	delete(p.entries, e.addr)
	p.mu.Unlock()
	e.sess.Close()
}

// drop forgets e if it is still its address's entry, and closes its
// session.
func (p *Pool[S]) drop(e *entry[S]) {
	p.mu.Lock()
	if p.entries[e.addr] == e {
		p.removeLocked(e)
	}
	p.mu.Unlock()
	if e.err == nil {
		e.sess.Close()
	}
}

// removeLocked deletes e from the pool and disarms its timer.
func (p *Pool[S]) removeLocked(e *entry[S]) {
	delete(p.entries, e.addr)
	e.gen++
	p.stopIdleLocked(e)
}

func (p *Pool[S]) stopIdleLocked(e *entry[S]) {
	if e.idle != nil && e.idle.Stop() {
		p.timers.Done() // its callback will never run
	}
	e.idle = nil
}

// Len reports how many sessions the pool holds, counting attempts in
// progress and sessions not yet found dead.
func (p *Pool[S]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Close ends the attempts in progress, closes every session, and waits
// for idle timers that are running. Later Opens fail with net.ErrClosed.
// Leases still held stay valid to Release. Close is idempotent.
func (p *Pool[S]) Close() {
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = make(map[string]*entry[S])
	for _, e := range entries {
		e.gen++
		p.stopIdleLocked(e)
		if e.cancel != nil {
			e.cancel()
		}
	}
	p.mu.Unlock()
	for _, e := range entries {
		<-e.ready
		if e.err == nil {
			e.sess.Close()
		}
	}
	p.timers.Wait()
}

func (p *Pool[S]) opErr(err error) error {
	return &net.OpError{Op: "dial", Net: p.cfg.Net, Err: err}
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
