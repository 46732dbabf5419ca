package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/corsproc/corsproc/internal/runner"
)

// serveEnv is what the process gives serve: its environment and the
// runner's controls. Tests give their own.
type serveEnv struct {
	lookupEnv func(string) (string, bool)
	runner    runner.Options
	// listening, when not nil, is called once both listeners are bound.
	listening func(grpcAddr, adminAddr net.Addr)
}

// serveProcess is `corsproc serve` in the process: signals become the
// runner's context and controls (see [runner.Signals]), caught from before
// the policy loads, since SIGHUP's default action is to exit.
func serveProcess(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if p, ok := gcPercent(os.LookupEnv); ok {
		debug.SetGCPercent(p)
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(ch)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx, reload, force := runner.Signals(ctx, ch)
	return runServe(ctx, args, stdout, stderr, serveEnv{
		lookupEnv: os.LookupEnv,
		runner:    runner.Options{Log: stderr, Reload: reload, Force: force, ClientGoLogs: true},
	})
}

// serveGCPercent is serve's garbage-collection target when GOGC is unset.
// corsproc's live heap is small (about 2 MB, most of it Envoy's protobuf
// descriptors) and its garbage is per-request, so at Go's default of 100
// the collector runs often and marks the same descriptors every time: 200
// cut serve's CPU per request by about 9% in scripts/bench-server
// (docs/benchmarks.md), for a heap target of three times the live heap
// instead of two, a few megabytes. GOGC, when set, wins, as Go documents.
const serveGCPercent = 200

// gcPercent returns the GC target serve sets, and false when GOGC is set
// (even to "off" or a bad value: the runtime has already read it).
func gcPercent(lookupEnv func(string) (string, bool)) (int, bool) {
	if _, set := lookupEnv("GOGC"); set {
		return 0, false
	}
	return serveGCPercent, true
}

// runServe runs the ext_proc gRPC server and the admin HTTP server until
// ctx is done, then drains. It returns 0 after a clean shutdown, 1 when
// the policy (or certificate) fails to load or a listener fails, 2 on a
// usage error.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, env serveEnv) int {
	if env.lookupEnv == nil {
		env.lookupEnv = os.LookupEnv
	}
	cfg := runner.Defaults()
	if err := cfg.Parse(args, env.lookupEnv, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "corsproc serve: %v\nRun \"corsproc serve --help\" for the flags.\n", err)
		return 2
	}
	o := env.runner
	if o.Log == nil {
		o.Log = stderr
	}
	r, err := runner.New(cfg, o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if env.listening != nil {
		env.listening(r.GRPCAddr(), r.AdminAddr())
	}
	if err := r.Run(ctx); err != nil {
		return 1
	}
	return 0
}
