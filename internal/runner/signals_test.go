package runner_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/corsproc/corsproc/internal/runner"
	"github.com/corsproc/corsproc/internal/testutil"
)

// TestSignals checks what each signal becomes: SIGHUP a reload (and not a
// shutdown), the first SIGTERM or SIGINT the context's end, the second a
// forced stop.
func TestSignals(t *testing.T) {
	t.Parallel()
	within := func(t *testing.T, what string, c <-chan struct{}) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(testutil.Patience()):
			t.Fatalf("no %s within %v", what, testutil.Patience())
		}
	}
	for _, first := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(first.String()+" twice drains, then forces", func(t *testing.T) {
			t.Parallel()
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			sigs := make(chan os.Signal)
			ctx, reload, force := runner.Signals(parent, sigs)
			sigs <- syscall.SIGHUP
			within(t, "reload after SIGHUP", reload)
			if ctx.Err() != nil {
				t.Fatal("SIGHUP ended the context")
			}
			sigs <- first
			within(t, "context end after "+first.String(), ctx.Done())
			if c := context.Cause(ctx); c == nil || c.Error() != first.String() {
				t.Errorf("cause %v, want %s", c, first)
			}
			select {
			case <-force:
				t.Fatal("one signal forced the stop")
			default:
			}
			sigs <- syscall.SIGTERM
			within(t, "forced stop after a second signal", force)
		})
	}
}
