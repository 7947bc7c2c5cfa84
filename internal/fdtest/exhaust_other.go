//go:build !unix

package fdtest

import "testing"

// Exhausted holds the files that use up every descriptor the process may
// open. This platform has no RLIMIT_NOFILE, so Exhaust skips.
type Exhausted struct{}

// Exhaust skips t: this platform has no RLIMIT_NOFILE to lower.
func Exhaust(t testing.TB) *Exhausted {
	t.Skip("fdtest: this platform has no RLIMIT_NOFILE; descriptor exhaustion is tested on Unix only")
	return nil
}

// Held reports 0.
func (e *Exhausted) Held() int { return 0 }

// Free does nothing.
func (e *Exhausted) Free(int) {}

// FreeAll does nothing.
func (e *Exhausted) FreeAll() {}
