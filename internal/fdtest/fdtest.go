// Package fdtest runs a process out of file descriptors on purpose, for
// tests of listeners that must survive a moment of EMFILE, and holds the
// one scenario every transport's listener is put through.
//
// Exhaust changes a limit of the whole process (RLIMIT_NOFILE): a test that
// calls it must not run in parallel with other tests (no t.Parallel).
package fdtest

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
)

// IsEMFILE reports whether err says that the process has no file
// descriptor left.
func IsEMFILE(err error) bool { return errors.Is(err, syscall.EMFILE) }

// Log is a slog.Handler that passes the error of every record that carries
// one (an "err" attribute) to a channel, so that a test can wait for a
// listener to log a failed Accept. Records are dropped if nobody reads.
type Log struct {
	errs chan error
}

// NewLog returns a Log with room for 64 unread errors.
func NewLog() *Log { return &Log{errs: make(chan error, 64)} }

// Logger returns a logger that writes to l.
func (l *Log) Logger() *slog.Logger { return slog.New(l) }

// Errors delivers the errors of the records logged so far.
func (l *Log) Errors() <-chan error { return l.errs }

// Enabled reports true for every level.
func (l *Log) Enabled(context.Context, slog.Level) bool { return true }

// Handle passes r's "err" attribute, if any, to Errors.
func (l *Log) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "err" {
			return true
		}
		err, ok := a.Value.Any().(error)
		if !ok {
			err = errors.New(a.Value.String())
		}
		select {
		case l.errs <- err:
		default:
		}
		return false
	})
	return nil
}

// WithAttrs returns l: the attributes are not kept.
func (l *Log) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup returns l: groups are not kept.
func (l *Log) WithGroup(string) slog.Handler { return l }
