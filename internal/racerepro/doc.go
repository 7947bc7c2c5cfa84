// Package racerepro reproduces, for the Go project, a crash of the race
// detector in testing/synctest bubbles (seen with go1.26.8), and states the
// rule peerkit follows to stay clear of it. It holds no code; its test is
// built only with the racerepro tag:
//
//	go test -race -tags racerepro ./internal/racerepro
//
// The crash: a SIGSEGV inside ThreadSanitizer (in __tsan::SlotLock or
// __sanitizer::StackDepotBase::Put), on an M running a bubble's timer.
//
// The cause, as far as the runtime's source shows: every bubble has a
// single race context for running its timers (synctestBubble.timers.raceCtx,
// set up in runtime/time.go's unlockAndRun). The bubble's scheduler runs
// due timers with it, and so does any goroutine of the bubble that runs a
// timer itself, which happens when
//   - time.AfterFunc or Reset is given a duration <= 0 (timer.modify), or
//   - a goroutine receives from, or selects on, the channel of a timer or
//     ticker that fell due while nobody was waiting on that channel
//     (timer.maybeRunChan), for example one made by time.NewTimer(0).
//
// Two of these on two Ms at the same moment use one ThreadSanitizer thread
// state from two threads, and the detector's own state tears. Timers of
// the P (outside bubbles) each have a race context of their own P, so only
// bubbles are affected.
//
// The rule, checked by internal/doccheck for constant durations: peerkit
// never makes a timer already due. A loop that must act at once acts first
// and then waits on a timer of a positive duration. What remains is a
// timer or ticker that falls due while its goroutine is blocked elsewhere
// (a link's writer, blocked on a full connection across a heartbeat tick);
// that is rare, and only the runtime can remove it.
package racerepro
