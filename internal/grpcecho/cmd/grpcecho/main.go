// Command grpcecho serves the grpcecho test service on -addr (h2c), for
// the HTTP/2 benchmarks in bench/README.md.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"

	"github.com/cellgate/cellgate/internal/grpcecho"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19001", "listen address")
	flag.Parse()
	s, err := grpcecho.StartAt("bench", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("grpcecho on %s", s.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	s.Close()
}
