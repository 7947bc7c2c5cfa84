package status_test

import (
	"log"
	"net/http"

	"github.com/peerkit/peerkit/cluster"
	"github.com/peerkit/peerkit/status"
)

// Serve the status page and its JSON on an internal address.
func ExampleHandler() {
	n, err := cluster.New("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	mux := http.NewServeMux()
	mux.Handle("/peerkit", status.Handler(n)) // ?format=json for the JSON
	_ = &http.Server{Addr: "127.0.0.1:8080", Handler: mux}
	// go srv.ListenAndServe()
}
