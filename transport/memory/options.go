package memory

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

// Option configures a Network.
type Option func(*options)

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
	return func(o *options) { o.seed = seed }
}

// WithTrace installs a hook called with one human-readable line per fault
// event (partition, heal, kill, ...). It runs on the goroutine that called
// the fault method, never while the Network holds its lock, so it may call
// back into the Network. Use it to print an event trace in chaos tests,
// e.g. WithTrace(func(s string) { t.Log(s) }).
func WithTrace(f func(string)) Option {
	return func(o *options) { o.trace = f }
}

// WithBufferSize sets the capacity in bytes of each direction of each conn
// (DefaultBufferSize if n <= 0). It bounds the bytes in flight, so with
// latency L a conn carries at most n bytes per L, like a TCP window.
func WithBufferSize(n int) Option {
	return func(o *options) {
		if n <= 0 {
			n = DefaultBufferSize
		}
		o.bufferSize = n
	}
}

// WithBacklog sets how many dialled conns each listener queues before
// Accept (DefaultBacklog if n <= 0).
func WithBacklog(n int) Option {
	return func(o *options) {
		if n <= 0 {
			n = DefaultBacklog
		}
		o.backlog = n
	}
}
