package chaostest

import (
	"bytes"
	"fmt"
	"sync"
	"time"
)

// maxViolations bounds the violations a result keeps.
const maxViolations = 20

// run is the part of one seed's run that does not depend on the
// application's type: the trace and the violations.
type run struct {
	mu         sync.Mutex // guards the fields below
	lines      []traceLine
	violations []string
	lastChange time.Time     // the last membership event
	quiet      time.Duration // from the final heal to lastChange, at the check
	logs       *logBuffer
}

type traceLine struct {
	at   time.Time
	text string
}

func (r *run) logf(format string, args ...any) {
	l := traceLine{time.Now(), fmt.Sprintf(format, args...)}
	r.mu.Lock()
	r.lines = append(r.lines, l)
	r.mu.Unlock()
}

func (r *run) violation(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.logf("VIOLATION: %s", msg)
	r.mu.Lock()
	if len(r.violations) < maxViolations {
		r.violations = append(r.violations, msg)
	}
	r.mu.Unlock()
}

// short is an instance id as the trace prints it.
func short(id uint64) string { return fmt.Sprintf("%04x", id&0xffff) }

// logBuffer collects the nodes' logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
