package extproc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corsproc/corsproc/policy"
)

// Policies holds the running policy set. A reload compiles the file into a
// new set and swaps it in whole with one atomic store, so a stream sees
// either the old set or the new one, never a mix; a file that fails to load
// never replaces the running set.
//
// With a [Composer] (serve --kubernetes) the running set is the file's set
// with the policies declared outside it added: a reload composes them
// again against the new file, and [Policies.Recompose] swaps in a new
// composition through the same store when they change.
type Policies struct {
	path    string // "" for the embedded development policy
	metrics *Metrics
	log     *slog.Logger

	cur atomic.Pointer[snapshot]

	mu      sync.Mutex // one reload or recompose at a time
	tried   string     // digest of the content last tried, so unchanged files are skipped
	compose Composer   // nil: the file's set runs alone
}

// Composer returns the set to run given the file's set: central with the
// policies declared elsewhere admitted against it ([policy.Set.Admit],
// [policy.Set.With]), or central itself. It is called with the Policies'
// lock held, one call at a time, and must not call back into them.
type Composer func(central *policy.Set) *policy.Set

// snapshot is one loaded set with what belongs to it.
type snapshot struct {
	set      *policy.Set // what runs
	central  *policy.Set // the policy file's set, which set extends
	loadedAt time.Time
	counters *setCounters
}

// LoadPolicies loads the policy file at path, or the embedded development
// policy when path is "" (with a warning in the log). The error of a file
// that fails to load is a [*policy.Error] listing every problem, or the
// error reading it.
func LoadPolicies(path string, m *Metrics, log *slog.Logger) (*Policies, error) {
	if log == nil {
		log = slog.Default()
	}
	p := &Policies{path: path, metrics: m, log: log}
	if path == "" {
		set := policy.Default()
		log.Warn("no --config given: using the embedded development policy, which allows http://localhost:* and http://127.0.0.1:* without credentials; never run it in production",
			"file", set.File())
		p.store(set, nil, false)
		return p, nil
	}
	data, err := policy.ReadFile(path) // bounded in size, refuses binary
	if err != nil {
		return nil, err
	}
	set, err := policy.Parse(path, data)
	if err != nil {
		return nil, err
	}
	p.tried = digest(data)
	p.store(set, nil, false)
	return p, nil
}

// Set returns the running policy set.
func (p *Policies) Set() *policy.Set { return p.cur.Load().set }

// LoadedAt returns when the running set was loaded.
func (p *Policies) LoadedAt() time.Time { return p.cur.Load().loadedAt }

// Path is the policy file, "" for the embedded development policy.
func (p *Policies) Path() string { return p.path }

func (p *Policies) snapshot() *snapshot { return p.cur.Load() }

// SetComposer makes c compose every running set from now on, and composes
// the running one at once.
func (p *Policies) SetComposer(c Composer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.compose = c
	p.recompose()
}

// Recompose asks the [Composer] again for the running file's set and swaps
// the result in, unless it is the set running already (same digest): what
// the Kubernetes controller calls when its objects change.
func (p *Policies) Recompose() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recompose()
}

func (p *Policies) recompose() {
	cur := p.cur.Load()
	if p.compose == nil || cur == nil {
		return
	}
	set := p.compose(cur.central)
	if set.SHA256() == cur.set.SHA256() {
		return
	}
	p.store(cur.central, set, false)
	p.log.Info("policies recomposed", "sha256", set.SHA256(), "previous_sha256", cur.set.SHA256(), "policies", len(set.Policies()))
}

// Central is the policy file's set, which the running one extends.
func (p *Policies) Central() *policy.Set { return p.cur.Load().central }

// store swaps in central, composed into set; a nil set is composed here
// (the first load and reloads, with p.mu held or before p is shared).
func (p *Policies) store(central, set *policy.Set, reload bool) {
	recomposed := set != nil
	if set == nil {
		set = central
		if p.compose != nil {
			set = p.compose(central)
		}
	}
	now := time.Now()
	next := &snapshot{set: set, central: central, loadedAt: now, counters: p.metrics.forSet(set)}
	// Swap first, then delete the dropped policies' series: a scrape in
	// between may still see them, but no new stream counts on them.
	old := p.cur.Swap(next)
	if old != nil {
		p.metrics.replaced(old.counters, next.counters)
	}
	if !recomposed {
		p.metrics.loaded(set, now, reload)
		for _, w := range set.Warnings() {
			p.log.Warn("policy warning", "file", set.File(), "problem", w.String())
		}
		return
	}
	// A recomposition is no load of the file: the reload gauges keep
	// speaking of the file.
	p.metrics.running(set)
}

// Reload reads the policy file again and swaps the new set in, even when
// the file did not change (as SIGHUP asks). On failure the running set
// stays, every error is logged and counted, and the error is returned.
func (p *Policies) Reload() error { return p.reload(true) }

// reload is Reload; without force, content already tried (loaded or
// refused) is skipped, so that a burst of file events reloads once and a
// broken file is reported once, not on every unrelated event.
func (p *Policies) reload(force bool) error {
	if p.path == "" {
		p.log.Info("reload asked, but no --config was given: the embedded development policy stays")
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	data, err := policy.ReadFile(p.path)
	sum := ""
	if err != nil {
		sum = "read error: " + err.Error()
	} else {
		sum = digest(data)
	}
	if !force && sum == p.tried {
		return nil
	}
	p.tried = sum
	if err != nil {
		p.metrics.reloadFailed()
		p.log.Error("policy reload failed; the running policy stays", "file", p.path, "error", err.Error())
		return err
	}
	set, err := policy.Parse(p.path, data)
	if err != nil {
		p.metrics.reloadFailed()
		old := p.Set()
		p.log.Error("policy reload failed; the running policy stays",
			"file", p.path, "running_sha256", old.SHA256(), "problems", problemCount(err))
		for _, line := range errorLines(err) {
			p.log.Error("policy error", "file", p.path, "error", line)
		}
		return err
	}
	old := p.Set()
	p.store(set, nil, true)
	p.log.Info("policy reloaded", "file", p.path, "sha256", set.SHA256(),
		"previous_sha256", old.SHA256(), "policies", len(set.Policies()))
	return nil
}

// Watch reloads the policy file whenever it changes, however it is changed
// (see [WatchFiles]), until ctx is done. With the embedded policy there is
// nothing to watch and it just waits.
func (p *Policies) Watch(ctx context.Context) error {
	if p.path == "" {
		<-ctx.Done()
		return nil
	}
	return WatchFiles(ctx, p.log, []string{p.path}, func() { _ = p.reload(false) })
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// errorLines lists the errors of a refused policy file, one per problem.
func errorLines(err error) []string {
	var perr *policy.Error
	if !errors.As(err, &perr) {
		return []string{err.Error()}
	}
	var lines []string
	for _, pr := range perr.Problems {
		if pr.Severity == policy.SeverityError {
			lines = append(lines, pr.String())
		}
	}
	if len(lines) == 0 {
		lines = append(lines, err.Error())
	}
	return lines
}

func problemCount(err error) int { return len(errorLines(err)) }
