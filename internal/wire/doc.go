// Package wire holds the byte-level layout of the peerkit protocol: the
// fixed binary handshake (hello, authentication proof, verdict) and the
// length-prefixed frames that follow it (PROTOCOL.md, "Overview"). Each
// file mirrors a section of PROTOCOL.md and names it; the constants here
// are the protocol's, not tunables. The golden vectors in testdata are
// embedded in PROTOCOL.md, "Test vectors", and tests keep the two equal.
//
// Everything in this package parses bytes from unauthenticated peers, so
// every length is checked against a bound before anything is allocated, and
// no input makes it panic (see the fuzz targets).
package wire
