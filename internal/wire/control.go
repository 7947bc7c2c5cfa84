package wire

// Control is the body of a control frame, encoded with the link's codec
// (PROTOCOL.md, "Control messages"). Every field is optional.
type Control struct {
	// Peers lists remotes the sender has a live link to. The first
	// control frame of a link carries the sender's whole view, and
	// anti-entropy repeats it periodically; receivers treat every list as
	// hints (PROTOCOL.md, "Order of events on a link").
	Peers []Peer
	// MetaSet reports that Meta carries the sender's new metadata.
	MetaSet bool
	Meta    []byte
}

// Peer names one node: its advertised address and instance id.
type Peer struct {
	Addr     string
	Instance uint64
}
