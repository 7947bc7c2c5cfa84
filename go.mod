module github.com/peerkit/peerkit

go 1.26.0

require (
	github.com/hashicorp/yamux v0.1.2
	github.com/quic-go/quic-go v0.65.0
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.62.0
)

require (
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
