//go:build unix

package fdtest

import (
	"os"
	"sync"
	"syscall"
	"testing"
)

// headroom is how far above the lowest free descriptor Exhaust sets the
// limit: at most this many files are opened to reach EMFILE.
const headroom = 64

// Exhausted holds the files that use up every descriptor the process may
// open.
type Exhausted struct {
	t     testing.TB
	mu    sync.Mutex
	files []*os.File
	orig  syscall.Rlimit
	set   bool // the limit is lowered
}

// Exhaust lowers the soft RLIMIT_NOFILE of the process to a little above
// the descriptors in use, and opens /dev/null until open fails with EMFILE.
// From then on every call that needs a new descriptor (socket, accept,
// open) fails with EMFILE until Free or FreeAll. Cleanup frees the files
// and restores the limit.
func Exhaust(t testing.TB) *Exhausted {
	t.Helper()
	e := &Exhausted{t: t}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &e.orig); err != nil {
		t.Skipf("fdtest: cannot read RLIMIT_NOFILE: %v", err)
	}
	// The next descriptor the kernel hands out tells where the free ones
	// begin: the limit goes a little above it.
	probe, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatalf("fdtest: %v", err)
	}
	next := uint64(probe.Fd())
	probe.Close()
	low := e.orig
	low.Cur = atMost(low.Cur, next+headroom)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("fdtest: cannot lower RLIMIT_NOFILE: %v", err)
	}
	e.set = true
	t.Cleanup(e.FreeAll)
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !IsEMFILE(err) {
				e.FreeAll()
				t.Fatalf("fdtest: opening %s: %v; want EMFILE", os.DevNull, err)
			}
			break
		}
		e.files = append(e.files, f)
	}
	if len(e.files) == 0 {
		e.FreeAll()
		t.Fatal("fdtest: no descriptor was free below the lowered limit")
	}
	return e
}

// Held reports how many files Exhaust still holds open.
func (e *Exhausted) Held() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.files)
}

// Free closes n of the files, so that the process can open n descriptors.
func (e *Exhausted) Free(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n > len(e.files) {
		e.t.Fatalf("fdtest: Free(%d) with only %d files held", n, len(e.files))
	}
	for _, f := range e.files[len(e.files)-n:] {
		f.Close()
	}
	e.files = e.files[:len(e.files)-n]
}

// FreeAll closes every file and restores the limit. It is idempotent.
func (e *Exhausted) FreeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.files {
		f.Close()
	}
	e.files = nil
	if e.set {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &e.orig); err != nil {
			e.t.Errorf("fdtest: restoring RLIMIT_NOFILE: %v", err)
		}
		e.set = false
	}
}

// atMost returns min(cur, n) in the type of cur, which is int64 or uint64
// depending on the system.
func atMost[T int64 | uint64](cur T, n uint64) T {
	if cur >= 0 && uint64(cur) <= n {
		return cur
	}
	return T(n)
}
