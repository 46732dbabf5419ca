package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/corsproc/corsproc/internal/testutil"
)

// One Chromium for the whole suite, started by the first test that needs it
// and stopped by TestMain. Cases run in parallel, each holding one of
// parallelCases slots. A slot is a browser context (its own cookie jar,
// HTTP and preflight caches) with one tab, used by one case at a time: the
// case clears the context's cookies and loads its page anew (a new
// document and JavaScript realm), with the cache off.
//
// Why not a new tab per case: on this 2-core machine a new tab cost 0.69 s
// of Chromium CPU per case against 0.15 s for a navigation in a kept tab
// (measured), and the suite must stay under 60 s.
var (
	browserOnce   sync.Once
	browserCtx    context.Context // the first tab's context: the browser's lifetime
	browserCancel context.CancelFunc
	allocCancel   context.CancelFunc
	browserErr    error
	browserSkip   string
	userDataDir   string
)

// chromiumNames are the binaries tried, in order, on $PATH.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// CORSPROC_CHROMIUM names the binary explicitly.
const chromiumEnv = "CORSPROC_CHROMIUM"

func findChromium() string {
	if p := os.Getenv(chromiumEnv); p != "" {
		return p
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// hostRules sends every test host to loopback: page, API and the look-alike.
const hostRules = "MAP *.example.test 127.0.0.1, MAP *.evil.test 127.0.0.1"

func startBrowser() {
	path := findChromium()
	if path == "" {
		msg := "chromium not found (tried " + strings.Join(chromiumNames, ", ") + " and $" + chromiumEnv + ")"
		if os.Getenv("CI") != "" {
			browserErr = errors.New(msg + "; CI is set, so the browser suite must run: install chromium (apt-get install chromium)")
			return
		}
		browserSkip = msg + "; skipping the browser suite (it fails instead when CI is set)"
		return
	}
	dir, err := os.MkdirTemp("", "corsproc-browsertest-")
	if err != nil {
		browserErr = err
		return
	}
	userDataDir = dir
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(dir),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// Navigations to http://app.example.test must not first try https.
		chromedp.Flag("disable-features", "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,Translate"),
		chromedp.Flag("host-resolver-rules", hostRules),
		// Never --disable-web-security: the browser's CORS checks are the point.
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Start the browser with a context that has no deadline: its lifetime
	// is the context's, not this call's.
	start := make(chan error, 1)
	go func() { start <- chromedp.Do(ctx) }()
	select {
	case err = <-start:
	case <-time.After(testutil.Patience()):
		err = fmt.Errorf("chromium did not start within %v", testutil.Patience())
	}
	if err != nil {
		cancel()
		acancel()
		browserErr = fmt.Errorf("start %s: %w", path, err)
		return
	}
	browserCtx, browserCancel, allocCancel = ctx, cancel, acancel
	slots = make(chan *slot, parallelCases)
	for range parallelCases {
		sctx, _ := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext()) // ends with the browser
		s := &slot{ctx: sctx}
		if err := chromedp.Listen(sctx, s.event); err != nil { // opens the context and its tab
			browserErr = fmt.Errorf("open a browser context: %w", err)
			return
		}
		s.id = chromedp.FromContext(sctx).BrowserContextID
		slots <- s
	}
}

// parallelCases bounds how many cases drive the browser at once: enough to
// overlap the waits, few enough for a 2-core CI machine.
const parallelCases = 2

// slot is a browser context and its tab, used by one case at a time.
type slot struct {
	ctx context.Context // the tab (chromedp enabled its network and log domains)
	id  cdp.BrowserContextID

	mu  sync.Mutex
	rec *tab // the case recording the tab's events, if any
}

// event passes the tab's events to the case that holds the slot.
func (s *slot) event(ev any) {
	s.mu.Lock()
	rec := s.rec
	s.mu.Unlock()
	if rec != nil {
		rec.event(ev)
	}
}

func (s *slot) record(tb *tab) {
	s.mu.Lock()
	s.rec = tb
	s.mu.Unlock()
}

var slots chan *slot

// acquireSlot waits for a free slot, clears its cookies and gives it to t
// until t ends.
func acquireSlot(t *testing.T) *slot {
	t.Helper()
	needBrowser(t)
	s := <-slots
	t.Cleanup(func() { slots <- s })
	ctx, cancel := context.WithTimeout(s.ctx, testutil.Patience())
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, storage.ClearCookies, storage.ClearCookiesParams{BrowserContextID: s.id})
		return err
	}))
	if err != nil {
		t.Fatalf("clear cookies: %v", err)
	}
	return s
}

// needBrowser returns the shared browser's context, skipping or failing t
// as the CI rule says when there is none.
func needBrowser(t testing.TB) context.Context {
	t.Helper()
	browserOnce.Do(startBrowser)
	switch {
	case browserErr != nil:
		t.Fatal(browserErr)
	case browserSkip != "":
		t.Skip(browserSkip)
	}
	return browserCtx
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browserCancel != nil {
		ctx, cancel := context.WithTimeout(browserCtx, 5*time.Second)
		_ = chromedp.Cancel(ctx)
		cancel()
		browserCancel()
		allocCancel()
	}
	if userDataDir != "" {
		_ = os.RemoveAll(userDataDir)
	}
	os.Exit(code)
}
