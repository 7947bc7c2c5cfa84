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
//   - time.AfterFunc is given a duration <= 0, or an AfterFunc timer is
//     Reset to one (timer.modify), or
//   - a goroutine receives from, or selects on, the channel of a timer or
//     ticker that fell due while nobody was waiting on that channel
//     (timer.maybeRunChan): one made by time.NewTimer(0) or Reset(0), or a
//     ticker whose goroutine was blocked elsewhere when it fell due.
//
// Two of these on two Ms at the same moment use one ThreadSanitizer thread
// state from two threads, and the detector's own state tears. Timers of
// the P (outside bubbles) each have a race context of their own P, so only
// bubbles are affected.
//
// The rule, checked by internal/doccheck for constant durations: peerkit
// never makes a timer already due. A loop that must act at once acts first
// and then waits on a timer of a positive duration; a periodic loop (a
// link's heartbeat, the node's maintenance tick) resets a timer before
// each wait instead of using a ticker, which would fall due unwatched
// while the loop is blocked elsewhere. What remains is a timer computed
// from the clock (time.Until of a deadline) that a goroutine reaches only
// after it has passed; the code checks for that where it can, and only
// the runtime can remove the rest.
package racerepro
