package policy

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// A large policy file is mostly its policies list. Parsed whole, the YAML
// library's syntax tree of a 4.5 MB file weighs about 40 times the file
// and takes most of a reload's time. When the list is written in the
// plain block style (as every policy file this project shows is), it is
// cut into chunks of whole entries, each parsed on its own and turned into
// values before the next: the trees never coexist, and the chunks are
// parsed on every core. The rest of the file (defaults, the "policies:"
// line) is parsed as before, with the entries' lines left blank so that
// lines keep their numbers.
//
// The cut is only made where it cannot change the meaning: anything that
// could tie one entry to another or to the rest of the file (anchors,
// aliases, tags, merge keys, several documents, tabs, carriage returns)
// keeps the whole-file parse, and so does any YAML error, so that errors
// read exactly as before.

// chunkBytes is roughly how much text one chunk holds.
const chunkBytes = 64 << 10

// policyChunk is a run of whole policies-list entries.
type policyChunk struct {
	text  []byte
	line  int // the 0-based line of the file its first line is
	first int // the index in the policies list of its first entry
	list  []any
	n     int // how many entries it holds

	once sync.Once
	tree *ast.File // parsed again, only to locate a problem
}

// splitPolicies cuts the policies list out of data. It returns the file
// with the list's lines left blank and the chunks, or ok false when the
// file is not plain enough to cut safely (or the list is too short to be
// worth it).
func splitPolicies(data []byte) (skeleton []byte, chunks []*policyChunk, ok bool) {
	if len(data) < 2*chunkBytes || !plainYAML(data) {
		return nil, nil, false
	}
	// Lines are walked by offset: the chunks are slices of data, not
	// copies.
	start := -1 // the offset just after the "policies:" line
	for off := 0; off < len(data); {
		l := lineAt(data, off)
		if isPoliciesKey(l) {
			if start >= 0 {
				return nil, nil, false // twice: the whole-file parse says so
			}
			start = off + len(l)
		}
		off += len(l)
	}
	if start < 0 {
		return nil, nil, false
	}
	// The first entry fixes the indentation of every entry.
	indent, line := -1, bytes.Count(data[:start], []byte("\n"))
	begin := start
	for ; begin < len(data); line++ {
		l := lineAt(data, begin)
		if !blankOrComment(l) {
			if n := indentOf(l); isEntry(l, n) {
				indent = n
			}
			break
		}
		begin += len(l)
	}
	if indent < 0 {
		return nil, nil, false
	}
	var cur *policyChunk
	curStart, entries, end := 0, 0, begin
	flush := func(at int) {
		if cur != nil {
			cur.text = data[curStart:at]
		}
	}
	for ; end < len(data); line++ {
		l := lineAt(data, end)
		if !blankOrComment(l) {
			n := indentOf(l)
			if n < indent || n == indent && !isEntry(l, n) {
				break // the next top-level key, or a mistake the parser names
			}
			if n == indent {
				if cur == nil || end-curStart >= chunkBytes {
					flush(end)
					cur, curStart = &policyChunk{line: line, first: entries}, end
					chunks = append(chunks, cur)
				}
				entries++
				cur.n++
			}
		}
		end += len(l)
	}
	flush(end)
	// The skeleton keeps every line but the list's, which are left blank.
	skeleton = make([]byte, 0, begin+bytes.Count(data[begin:end], []byte("\n"))+len(data)-end)
	skeleton = append(skeleton, data[:begin]...)
	for range bytes.Count(data[begin:end], []byte("\n")) {
		skeleton = append(skeleton, '\n')
	}
	skeleton = append(skeleton, data[end:]...)
	return skeleton, chunks, true
}

// lineAt returns the line starting at off, with its newline.
func lineAt(data []byte, off int) []byte {
	if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
		return data[off : off+i+1]
	}
	return data[off:]
}

// parseChunks parses every chunk into its list of entries, on every core.
// It reports false when any chunk fails to parse or does not hold exactly
// its entries: the caller then parses the whole file.
func parseChunks(chunks []*policyChunk) bool {
	var (
		wg     sync.WaitGroup
		next   = make(chan *policyChunk)
		failed sync.Once
		bad    bool
	)
	for range min(runtime.GOMAXPROCS(0), len(chunks)) {
		wg.Go(func() {
			for c := range next {
				if !c.parse() {
					failed.Do(func() { bad = true })
				}
			}
		})
	}
	for _, c := range chunks {
		next <- c
	}
	close(next)
	wg.Wait()
	return !bad
}

func (c *policyChunk) parse() bool {
	tree, err := parser.ParseBytes(c.text, 0)
	if err != nil || len(tree.Docs) != 1 || tree.Docs[0].Body == nil {
		return false
	}
	var v any
	if err := yaml.NodeToValue(tree.Docs[0].Body, &v, yaml.UseOrderedMap()); err != nil {
		return false
	}
	list, ok := v.([]any)
	c.list = list
	return ok && len(list) == c.n
}

// locate finds the line of a key path inside entry i of the chunk, 0 when
// it cannot.
func (c *policyChunk) locate(i int, key string) int {
	c.once.Do(func() {
		c.tree, _ = parser.ParseBytes(c.text, 0) // parsed once before: no error
	})
	if c.tree == nil {
		return 0
	}
	path := "$[" + strconv.Itoa(i-c.first) + "]"
	if key != "" {
		path += "." + key
	}
	if line := locatePath(c.tree, path); line > 0 {
		return line + c.line
	}
	return 0
}

// plainYAML reports whether data holds nothing that could tie a policies
// entry to another part of the file: no anchor, alias, tag or merge key,
// no document marker or directive, no tab or carriage return. It errs on
// the side of no: a false no only costs the whole-file parse.
func plainYAML(data []byte) bool {
	if bytes.ContainsAny(data, "&!\t\r") || bytes.Contains(data, []byte("<<")) {
		return false
	}
	for i, c := range data {
		switch c {
		case '*':
			// "*" starts an alias after a space or a flow indicator, and
			// is followed by the anchor's name. In an origin or a quoted
			// "*" it is not.
			if i > 0 && bytes.IndexByte([]byte(" [{,:-"), data[i-1]) >= 0 &&
				i+1 < len(data) && bytes.IndexByte([]byte("\"'., ]}\n"), data[i+1]) < 0 {
				return false
			}
		case '-', '.', '%':
			if (i == 0 || data[i-1] == '\n') && (c == '%' || bytes.HasPrefix(data[i:], []byte{c, c, c})) {
				return false // a document marker or directive
			}
		}
	}
	return true
}

// isPoliciesKey reports whether l is the top-level "policies:" line with
// nothing after the colon but a comment.
func isPoliciesKey(l []byte) bool {
	rest, ok := bytes.CutPrefix(l, []byte("policies:"))
	if !ok {
		return false
	}
	rest = bytes.TrimLeft(rest, " ")
	return len(rest) == 0 || rest[0] == '\n' || rest[0] == '#'
}

func blankOrComment(l []byte) bool {
	t := bytes.TrimLeft(l, " ")
	return len(t) == 0 || t[0] == '\n' || t[0] == '#'
}

func indentOf(l []byte) int {
	n := 0
	for n < len(l) && l[n] == ' ' {
		n++
	}
	return n
}

// isEntry reports whether l starts a block sequence entry at indent n.
func isEntry(l []byte, n int) bool {
	return n < len(l) && l[n] == '-' && (n+1 == len(l) || l[n+1] == ' ' || l[n+1] == '\n')
}
