// Command nullproc is the baseline of scripts/bench-server: an ext_proc
// server that answers CONTINUE to every message and changes nothing,
// written as a user would write one (the standard gRPC server, default
// options, the generated code). corsproc's CPU per request is measured
// against it.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/corsproc/corsproc/internal/perf/null"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address (loopback only)")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nullproc:", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(s, null.Processor{})
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "nullproc:", err)
		os.Exit(1)
	}
}
