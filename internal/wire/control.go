package wire

// Control is the body of a control frame, encoded with the link's codec
// (PROTOCOL.md, "Control messages"). Every field is optional.
type Control struct {
	// Peers lists remotes the sender has a live link to. On the first
	// control frame of a link it is the sender's whole view; later it
	// announces newly added remotes, and periodically repeats the view
	// (anti-entropy).
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
