// Package policy loads, validates and compiles corsproc policy files, and
// decides what a request and its response get.
//
// A policy file is parsed once into an immutable [Set]; a Set is safe for
// concurrent use, and a new one is swapped in whole when the file changes.
// Every problem found while loading is collected and returned together as an
// [*Error], each naming the file, the policy and the key.
//
// The package does no I/O beyond reading the file it is given and knows
// nothing of gRPC: the ext_proc server and the CLI both drive it through
// [Set.Decide] and [Decision.Respond].
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"
)

// File is a policy file as written. Unset keys are nil so that a policy can
// inherit them from Defaults.
type File struct {
	// Defaults are inherited by every policy for each key it does not set.
	Defaults Settings `json:"defaults,omitzero"`
	// Guardrails are the rules for policies declared as CORSPolicy objects;
	// without them, no namespace may declare any.
	Guardrails *Guardrails `json:"guardrails,omitempty"`
	// Policies are tried in order; the first whose Match holds is used.
	Policies []Policy `json:"policies"`
}

// Policy is one entry of the policies list.
type Policy struct {
	// Name identifies the policy in errors, logs and metrics; required and
	// unique.
	Name string `json:"name"`
	// Match selects the requests this policy applies to; nil matches all.
	Match *Match `json:"match,omitempty"`
	Settings
}

// Match holds the conditions of a policy; every condition given must hold.
type Match struct {
	// Hosts are :authority values without port, compared case-insensitively;
	// "*.example.com" matches one or more labels before example.com.
	Hosts []string `json:"hosts,omitempty"`
	// PathPrefixes match the start of the path (query excluded).
	PathPrefixes []string `json:"path_prefixes,omitempty"`
	// PathRegex is an RE2 expression that must match the whole path (query
	// excluded).
	PathRegex string `json:"path_regex,omitempty"`
	// Routes are Envoy route names (the xds.route_name attribute).
	Routes []string `json:"routes,omitempty"`
}

// DeepCopyInto copies m into out, sharing no list, so that a Match can
// live in a Kubernetes object (see api/v1alpha1).
func (m *Match) DeepCopyInto(out *Match) {
	*out = Match{Hosts: slices.Clone(m.Hosts), PathPrefixes: slices.Clone(m.PathPrefixes), PathRegex: m.PathRegex, Routes: slices.Clone(m.Routes)}
}

// DeepCopy returns a copy of m that shares no list with it; nil for nil.
func (m *Match) DeepCopy() *Match {
	if m == nil {
		return nil
	}
	out := new(Match)
	m.DeepCopyInto(out)
	return out
}

// MaxFileSize is the largest policy file Load and ReadFile accept: 16 MiB.
// 1,000 policies listing 100,000 origins between them weigh about 6 MiB
// (see TestMaxFileSizeHoldsAHundredThousandOrigins), so real files stay far
// below it, while a wrong path (a log, a binary, /dev/zero) is refused
// before it costs seconds and hundreds of megabytes in the YAML parser.
const MaxFileSize = 16 << 20

// excerptBytes is how much of unreadable content an error shows: enough
// to recognise the file ("\x7fELF", "PK\x03\x04"), never a screenful.
const excerptBytes = 24

// ReadFile reads a policy file for Parse, refusing one over MaxFileSize or
// one that is not text. Its errors start with the file's name, as
// "FILE: ..." or "FILE:LINE: ...", so that they need no prefix. It never reads
// more than MaxFileSize+1 bytes, whatever the file's size.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, tooLarge(path, fi.Size())
	}
	return ReadFrom(path, f)
}

// ReadFrom reads policy file content from r (standard input, say) with the
// checks of ReadFile; name stands for the file in errors.
func ReadFrom(name string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, readError(name, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(name, -1)
	}
	if err := checkText(name, data); err != nil {
		return nil, err
	}
	return data, nil
}

// readError names the file once: an *os.PathError would name it again.
func readError(name string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: cannot read the policy file: %w", name, err)
}

func tooLarge(name string, size int64) error {
	what := "more than 16 MiB"
	if size >= 0 {
		what = strconv.FormatInt(size, 10) + " bytes, over the 16 MiB limit"
	}
	return fmt.Errorf("%s: %s; a policy file is YAML text, and 1,000 policies with 100,000 origins take under 6 MiB: check that the path names the policy file", name, what)
}

// checkText refuses content that cannot be a YAML policy: a NUL byte or
// bytes that are not UTF-8 mean a binary or a file in another encoding,
// which the YAML parser would only misread at length.
func checkText(name string, data []byte) error {
	bad := bytes.IndexByte(data, 0)
	if !utf8.Valid(data) {
		if i := invalidUTF8At(data); bad < 0 || i < bad {
			bad = i
		}
	}
	if bad < 0 {
		return nil
	}
	line := 1 + bytes.Count(data[:bad], []byte("\n"))
	start := max(0, bad-excerptBytes/2)
	end := min(len(data), start+excerptBytes)
	return fmt.Errorf("%s:%d: not a text file: byte %d is not UTF-8 text (%s); a policy file is YAML in UTF-8: check that the path names the policy file",
		name, line, bad, excerpt(data[start:end], start > 0, end < len(data)))
}

// invalidUTF8At returns the offset of the first byte that is not part of a
// valid UTF-8 sequence.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// excerpt quotes a few bytes with every non-printable byte escaped, so
// that an error never writes raw binary to a terminal or a log.
func excerpt(b []byte, cutBefore, cutAfter bool) string {
	q := strconv.QuoteToASCII(string(b))
	if cutBefore {
		q = "..." + q
	}
	if cutAfter {
		q += "..."
	}
	return "near " + q
}
