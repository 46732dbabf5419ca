package envoytest

import (
	"runtime"
	"testing"
	"time"

	"github.com/corsproc/corsproc/internal/testutil"
)

// Not parallel: it counts goroutines while the parallel tests are paused.
func TestCloseLeavesNoGoroutineBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	scripts := map[string][]step{
		"streams that end normally": continueBoth,
		"streams that time out": {
			{want: "request_headers", reply: reqHeadersReply(nil)},
			{want: "response_headers", wait: 3 * testTimeout, reply: respHeadersReply(nil)},
		},
		"streams answered with an immediate response": {
			{want: "request_headers", reply: immediateReply(403, nil, "no", "")},
		},
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			p := startProc(t, nil, script...)
			u := startUpstream(t, nil, nil)
			e := startEnvoy(t, p, u, Config{MessageTimeout: testTimeout, FailureModeAllow: true})
			for i := 0; i < 3; i++ {
				do(t, "GET", e.URL()+"/", "")
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	deadline := time.Now().Add(testutil.Patience())
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
