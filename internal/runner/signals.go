package runner

import (
	"context"
	"errors"
	"os"
	"syscall"
)

// Signals turns the process's signals, as signal.Notify delivers them for
// SIGHUP, SIGTERM and SIGINT, into what [Runner.Run] acts on: the first
// SIGTERM or SIGINT cancels the returned context (Run drains), a second
// one closes force (Run stops at once), and SIGHUP sends on reload. This
// is the one place the product reads signals; tests feed it a channel of
// their own. It stops reading when parent is done.
func Signals(parent context.Context, signals <-chan os.Signal) (ctx context.Context, reload, force <-chan struct{}) {
	ctx, cancel := context.WithCancelCause(parent)
	r := make(chan struct{}, 1)
	f := make(chan struct{})
	go func() {
		terms := 0
		for {
			select {
			case <-parent.Done():
				cancel(context.Cause(parent))
				return
			case sig := <-signals:
				if sig == syscall.SIGHUP {
					select {
					case r <- struct{}{}:
					default: // a reload is already due
					}
					continue
				}
				terms++
				switch terms {
				case 1:
					cancel(errors.New(sig.String()))
				case 2:
					close(f)
				}
			}
		}
	}()
	return ctx, r, f
}
