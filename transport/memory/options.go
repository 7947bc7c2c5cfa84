package memory

import "fmt"

// Defaults of a Network.
const (
	// DefaultBufferSize is the capacity in bytes of each direction of a
	// conn: bytes written and not yet read (in flight, held by a silent
	// link, or waiting in the reader's buffer). A writer blocks while it
	// is full.
	DefaultBufferSize = 256 << 10
	// DefaultBacklog is how many dialled conns a listener holds before
	// Accept takes them; further dials wait.
	DefaultBacklog = 128
	// DefaultSeed seeds the random source when WithSeed is not given.
	DefaultSeed = 1
)

// Option configures a Network. Options apply in order (the last one for a
// setting wins) and are validated by New.
type Option func(*options) error

type options struct {
	bufferSize int
	backlog    int
	seed       int64
	trace      func(string)
}

func defaultOptions() options {
	return options{bufferSize: DefaultBufferSize, backlog: DefaultBacklog, seed: DefaultSeed}
}

// WithSeed seeds the random source used for jitter, so that a run can be
// replayed. Runs replay exactly when the order of writes is itself
// deterministic, which it is inside a testing/synctest bubble driven by
// one goroutine per conn direction.
func WithSeed(seed int64) Option {
	return func(o *options) error { o.seed = seed; return nil }
}

// WithTrace installs a hook called with one human-readable line per fault
// event (partition, heal, kill, ...). It runs on the goroutine that called
// the fault method, never while the Network holds its lock, so it may call
// back into the Network. Use it to print an event trace in chaos tests,
// e.g. WithTrace(func(s string) { t.Log(s) }). A nil f installs none.
func WithTrace(f func(string)) Option {
	return func(o *options) error { o.trace = f; return nil }
}

// WithBufferSize sets the capacity in bytes of each direction of each conn
// (default DefaultBufferSize); it must be positive. It bounds the bytes in
// flight, so with latency L a conn carries at most n bytes per L, like a
// TCP window.
func WithBufferSize(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("memory: WithBufferSize: must be positive, got %d", n)
		}
		o.bufferSize = n
		return nil
	}
}

// WithBacklog sets how many dialled conns each listener queues before
// Accept (default DefaultBacklog); it must be positive.
func WithBacklog(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("memory: WithBacklog: must be positive, got %d", n)
		}
		o.backlog = n
		return nil
	}
}
