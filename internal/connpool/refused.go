package connpool

import "github.com/peerkit/peerkit/transport"

// Refused marks err, a dial error that means nothing listens at the
// address, so that it matches transport.ErrRefused under errors.Is; it
// still unwraps to err, and reads as err.
func Refused(err error) error { return &refusedError{err: err} }

// refusedError is a dial error that matches transport.ErrRefused. It is a
// net.Error that is neither a timeout nor temporary.
type refusedError struct{ err error }

func (e *refusedError) Error() string   { return e.err.Error() }
func (e *refusedError) Unwrap() []error { return []error{transport.ErrRefused, e.err} }
func (e *refusedError) Timeout() bool   { return false }
func (e *refusedError) Temporary() bool { return false }
