package chaostest

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Result is what one seed's run did and found.
type Result struct {
	// Seed is the seed.
	Seed int64
	// Schedule is the schedule the seed drew.
	Schedule *Schedule
	// Violations are the invariants that failed, the errors Start and the
	// setup's joins returned, and what Host.Errorf recorded (at most 20).
	Violations []string
	// Trace is what happened, in virtual time counted as the schedule's
	// (setup lines are negative): the steps as they ran, the network's
	// own trace, every node's membership events, Host.Logf lines and the
	// violations. It is kept for a seed that failed, and for every seed
	// with WithTrace or -chaostest.trace.
	Trace []string
	// Logs are the nodes' debug logs, with WithLogs or -chaostest.log,
	// kept as Trace is.
	Logs string
	// Replay is the command that runs this seed alone.
	Replay string
	// Started counts the applications started, restarts included.
	Started int
	// Virtual is the virtual time the run took.
	Virtual time.Duration
	// Quiet is the time from the final heal to the last membership event
	// before the check: how long the cluster took to settle.
	Quiet time.Duration
}

// Failed reports whether the seed found a violation.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

// Report is the result as a test prints it: the seed, the command that
// replays it, the violations, the schedule and the trace.
func (r *Result) Report() string {
	var b strings.Builder
	if r.Failed() {
		fmt.Fprintf(&b, "chaostest: seed %d failed\n", r.Seed)
	} else {
		fmt.Fprintf(&b, "chaostest: seed %d passed\n", r.Seed)
	}
	fmt.Fprintf(&b, "replay: %s\n", r.Replay)
	if r.Failed() {
		b.WriteString("violations:\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  - %s\n", v)
		}
	}
	b.WriteString("schedule:\n")
	for _, l := range r.Schedule.Lines() {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("trace (virtual time):\n")
	for _, l := range r.Trace {
		b.WriteString("  " + l + "\n")
	}
	if r.Logs != "" {
		b.WriteString("node logs:\n" + r.Logs)
	}
	return b.String()
}

// result gathers the run's result.
func (r *runner[A]) result(began time.Time, replay string) *Result {
	r.run.mu.Lock()
	defer r.run.mu.Unlock()
	res := &Result{
		Seed: r.s.Seed, Schedule: r.s, Violations: r.violations,
		Replay: fmt.Sprintf("%s -chaostest.seed=%d", replay, r.s.Seed), Virtual: time.Since(began),
	}
	if res.Failed() || r.c.trace {
		for _, l := range r.lines {
			res.Trace = append(res.Trace, fmt.Sprintf("%8.3fs  %s", l.at.Sub(r.start).Seconds(), l.text))
		}
		if r.logs != nil {
			res.Logs = r.logs.String()
		}
	}
	res.Quiet = r.quiet
	r.mu.Lock()
	res.Started = r.started
	r.mu.Unlock()
	return res
}

// replayCommand returns the go test command that runs the test named
// name (as t.Name gives it) of the package whose function at pc called
// Run or Find, without the seed flag.
func replayCommand(name string, pc uintptr) string {
	var parts []string
	for _, p := range strings.Split(name, "/") {
		parts = append(parts, "^"+regexp.QuoteMeta(p)+"$")
	}
	return fmt.Sprintf("go test %s -run '%s'", packageDir(pc), strings.Join(parts, "/"))
}

// packageDir returns the package of the function at pc as go test takes
// it: ./dir when the package is in the main module, else its import path.
func packageDir(pc uintptr) string {
	f := runtime.FuncForPC(pc)
	if f == nil {
		return "."
	}
	name := f.Name() // example.com/mod/pkg_test.TestX.func1
	slash := strings.LastIndex(name, "/")
	dot := strings.Index(name[slash+1:], ".")
	if dot < 0 {
		return "."
	}
	pkg := strings.TrimSuffix(name[:slash+1+dot], "_test")
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" {
		if pkg == bi.Main.Path {
			return "."
		}
		if rest, ok := strings.CutPrefix(pkg, bi.Main.Path+"/"); ok {
			return "./" + rest
		}
	}
	return pkg
}
