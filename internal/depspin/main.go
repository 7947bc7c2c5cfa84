package main
import (
_ "github.com/quic-go/quic-go"
_ "github.com/hashicorp/yamux"
_ "golang.org/x/net/nettest"
_ "go.uber.org/goleak"
)
func main(){}
