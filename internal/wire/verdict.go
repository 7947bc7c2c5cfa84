package wire

import (
	"fmt"
	"io"
)

// Verdict codes: the listener's answer that ends the handshake
// (PROTOCOL.md, "Verdict").
const (
	VerdictAccept       byte = 0 // the link is up
	VerdictDuplicate    byte = 1 // a link between the two nodes exists or is being made
	VerdictSelf         byte = 2 // the dialer reached itself
	VerdictIncompatible byte = 3 // version or codec differ
	VerdictUnauthorized byte = 4 // secret missing or wrong
	VerdictConflict     byte = 5 // the address belongs to another, live instance
	VerdictBusy         byte = 6 // a limit (remotes, handshakes) is reached
	VerdictClosing      byte = 7 // the listener is shutting down
	VerdictGone         byte = 8 // the listener closed this dialer on purpose; do not redial
)

// MaxReason bounds a verdict's human-readable reason.
const MaxReason = 255

// VerdictName returns a short name for a verdict code.
func VerdictName(code byte) string {
	switch code {
	case VerdictAccept:
		return "accept"
	case VerdictDuplicate:
		return "duplicate"
	case VerdictSelf:
		return "self"
	case VerdictIncompatible:
		return "incompatible"
	case VerdictUnauthorized:
		return "unauthorized"
	case VerdictConflict:
		return "conflict"
	case VerdictBusy:
		return "busy"
	case VerdictClosing:
		return "closing"
	case VerdictGone:
		return "gone"
	}
	return fmt.Sprintf("verdict(%d)", code)
}

// AppendVerdict appends a verdict (code, reason length, reason) to b; the
// reason is cut to MaxReason bytes.
func AppendVerdict(b []byte, code byte, reason string) []byte {
	if len(reason) > MaxReason {
		reason = reason[:MaxReason]
	}
	b = append(b, code, byte(len(reason)))
	return append(b, reason...)
}

// ReadVerdict reads one verdict.
func ReadVerdict(r io.Reader) (code byte, reason string, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, "", err
	}
	if h[0] > VerdictGone {
		return 0, "", fmt.Errorf("%w: verdict code %d", ErrMalformed, h[0])
	}
	buf := make([]byte, h[1])
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, "", err
	}
	return h[0], string(buf), nil
}
