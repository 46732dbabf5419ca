package extproc

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce timings of [WatchFiles]: a burst of events is acted on once it
// has been quiet for watchQuiet, and at the latest watchMaxDelay after its
// first event, well within the 2 s the contract allows.
const (
	watchQuiet    = 100 * time.Millisecond
	watchMaxDelay = time.Second
	watchPoll     = time.Second
)

// WatchFiles calls onChange after any of the files at paths may have
// changed, until ctx is done. onChange must be cheap when nothing changed
// (compare the content), as it may be called for unrelated events.
//
// It watches each file's directory, not the file: a watch on the file
// itself is lost when an editor or `mv` renames a new file over it (new
// inode), and misses a Kubernetes ConfigMap update, which swaps the
// directory's `..data` symlink and never touches the file's own link. A
// file that is a symlink has its target's directory watched too, and the
// watches follow the links after every change. Events are debounced. Once
// the watches are set it calls onChange once, for a change made between
// the caller's load and the watch (a ConfigMap update as the pod starts
// would otherwise wait for the next one). When the platform cannot watch,
// it polls every second instead.
func WatchFiles(ctx context.Context, log *slog.Logger, paths []string, onChange func()) error {
	return watchFiles(ctx, log, paths, onChange, nil)
}

// watchFiles is WatchFiles; ready, when not nil, is called once the
// watches are set (or polling has begun) and the first onChange is done.
func watchFiles(ctx context.Context, log *slog.Logger, paths []string, onChange, ready func()) error {
	if ready == nil {
		ready = func() {}
	}
	if log == nil {
		log = slog.Default()
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("cannot watch files; polling them every second instead", "error", err.Error())
		return poll(ctx, onChange, ready)
	}
	defer w.Close()
	fw := &fileWatch{w: w, log: log, paths: paths, dirs: map[string]bool{}}
	if err := fw.sync(); err != nil {
		log.Warn("cannot watch files; polling them every second instead", "error", err.Error())
		return poll(ctx, onChange, ready)
	}
	onChange() // what changed before the watches were set
	ready()

	var quiet, deadline *time.Timer
	var quietC, deadlineC <-chan time.Time
	fire := func() {
		if quiet != nil {
			quiet.Stop()
		}
		if deadline != nil {
			deadline.Stop()
		}
		quietC, deadlineC = nil, nil
		onChange()
		if err := fw.sync(); err != nil {
			log.Warn("cannot watch a file's directory", "error", err.Error())
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !fw.relevant(ev.Name) {
				continue
			}
			if quiet == nil {
				quiet = time.NewTimer(watchQuiet)
			} else {
				quiet.Reset(watchQuiet)
			}
			quietC = quiet.C
			if deadlineC == nil {
				if deadline == nil {
					deadline = time.NewTimer(watchMaxDelay)
				} else {
					deadline.Reset(watchMaxDelay)
				}
				deadlineC = deadline.C
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("file watch error; checking the files", "error", err.Error())
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				fire()
			}
		case <-quietC:
			fire()
		case <-deadlineC:
			fire()
		}
	}
}

// fileWatch tracks which directories must be watched for paths.
type fileWatch struct {
	w     *fsnotify.Watcher
	log   *slog.Logger
	paths []string
	names map[string]bool // the files and their link targets, cleaned
	dirs  map[string]bool // watched directories
}

// sync points the watches at the files' directories and at their link
// targets' directories, which change when a ConfigMap swaps its links.
func (fw *fileWatch) sync() error {
	names := map[string]bool{}
	want := map[string]bool{}
	for _, p := range fw.paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		names[abs] = true
		want[filepath.Dir(abs)] = true
		if target, err := filepath.EvalSymlinks(abs); err == nil && target != abs {
			names[target] = true
			want[filepath.Dir(target)] = true
		}
	}
	fw.names = names
	var firstErr error
	for d := range want {
		if fw.dirs[d] {
			continue
		}
		if err := fw.w.Add(d); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fw.dirs[d] = true
	}
	for d := range fw.dirs {
		if !want[d] {
			_ = fw.w.Remove(d) // already gone when the directory was deleted
			delete(fw.dirs, d)
		}
	}
	if len(fw.dirs) == 0 {
		return firstErr
	}
	if firstErr != nil {
		fw.log.Debug("a link target's directory cannot be watched", "error", firstErr.Error())
	}
	return nil
}

// relevant says whether an event on name may change one of the files: the
// file itself, its link target, or a ConfigMap's `..data`-style entries.
func (fw *fileWatch) relevant(name string) bool {
	name = filepath.Clean(name)
	return fw.names[name] || fw.dirs[name] || strings.HasPrefix(filepath.Base(name), "..")
}

func poll(ctx context.Context, onChange, ready func()) error {
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	onChange()
	ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			onChange()
		}
	}
}
