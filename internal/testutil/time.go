package testutil

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// PatienceEnv scales every test time limit: CORSPROC_TEST_PATIENCE=3 makes
// them three times as long, for a machine much slower than CI's.
const PatienceEnv = "CORSPROC_TEST_PATIENCE"

// A test's time limits are about hangs, not speed: a healthy run on a
// loaded 2-core machine under -race finishes far within them.
const (
	// patience is how long a test waits for something that should happen
	// (a server to listen, a reload, a drain) before calling it a hang.
	patience = 30 * time.Second
	// messageTimeout is the Envoy stand-in's message_timeout in tests.
	// envoy.yaml's 200 ms is about production latency; here a timeout
	// would only make a case flaky.
	messageTimeout = 10 * time.Second
	// lameduck is the --lameduck of tests that check what happens during
	// it: long enough for several checks under load.
	lameduck = 5 * time.Second
	// observedTimeout is the timeout of tests that make something time out
	// on purpose and check what follows: short, so the suite stays quick,
	// yet far above what a prompt reply takes on a loaded machine.
	observedTimeout = time.Second
)

// Scale multiplies d by $CORSPROC_TEST_PATIENCE (default 1).
func Scale(d time.Duration) time.Duration {
	if f, err := strconv.ParseFloat(os.Getenv(PatienceEnv), 64); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}

// Patience is the time limit for anything a test waits on.
func Patience() time.Duration { return Scale(patience) }

// MessageTimeout is the Envoy stand-in's message timeout for tests.
func MessageTimeout() time.Duration { return Scale(messageTimeout) }

// Lameduck is the lameduck for tests that check what the server does
// during it.
func Lameduck() time.Duration { return Scale(lameduck) }

// ObservedTimeout is the timeout of tests that make it fire on purpose;
// what they wait for instead takes several times as long.
func ObservedTimeout() time.Duration { return Scale(observedTimeout) }

// WaitUntil polls cond until it holds, failing the test with what after
// [Patience].
func WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	d := Patience()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
