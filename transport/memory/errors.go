package memory

import "errors"

// ErrConnReset is the cause of the errors returned by Read and Write on a
// conn that was torn down abruptly: by ResetLink, by Kill of either end's
// node, or because its listener closed before accepting it.
var ErrConnReset = errors.New("memory: connection reset by peer")

// ErrBrokenPipe is the cause of the error returned by Write after the peer
// closed its end of the conn (the EPIPE of a real socket).
var ErrBrokenPipe = errors.New("memory: broken pipe")

// ErrHostDown is the cause of the error returned by DialFrom on behalf of
// an address crashed by Kill that nothing has listened on since: a
// crashed host dials nothing.
var ErrHostDown = errors.New("memory: host is down")

// ErrAddrInUse is the cause of the error returned by Listen on an address
// where a listener is already open.
var ErrAddrInUse = errors.New("memory: address already in use")

// ErrNoFreePort is returned by Listen with port 0 when every port of the
// host is taken.
var ErrNoFreePort = errors.New("memory: no free port")
