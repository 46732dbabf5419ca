package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// hundredThousandOrigins writes the largest policy file the size limit is
// made for: 1,000 policies of 100 origins each, with hosts and paths.
func hundredThousandOrigins() []byte {
	var b bytes.Buffer
	b.WriteString("defaults:\n  allow_credentials: true\npolicies:\n")
	for p := range 1000 {
		fmt.Fprintf(&b, "  - name: tenant-%04d-api\n    match:\n      hosts: [\"api-%04d.customers.example.com\"]\n      path_prefixes: [\"/v1/\", \"/v2/\"]\n    allowed_origins:\n", p, p)
		for o := range 100 {
			fmt.Fprintf(&b, "      - https://app-%03d.tenant-%04d.customers.example.com\n", o, p)
		}
	}
	return b.Bytes()
}

func TestMaxFileSizeHoldsAHundredThousandOrigins(t *testing.T) {
	t.Parallel()
	data := hundredThousandOrigins()
	t.Logf("1,000 policies with 100,000 origins: %d bytes (%.1f MiB), limit %d MiB", len(data), float64(len(data))/(1<<20), MaxFileSize>>20)
	if len(data) > MaxFileSize/2 {
		t.Errorf("%d bytes: the limit leaves less than a factor 2 of margin over 100,000 origins", len(data))
	}
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil || len(got) != len(data) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(data), err)
	}
}

// countingReader is an endless source of binary bytes that counts what is
// read from it: standard input fed from a large file or /dev/urandom.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.n + int64(i))
	}
	r.n += int64(len(p))
	return len(p), nil
}

// TestReadFileRefusesAHugeBinaryFileWithoutReadingIt is not parallel: it
// measures the memory the refusal allocates, which other tests would blur.
func TestReadFileRefusesAHugeBinaryFileWithoutReadingIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("\x7fELF\x02\x01\x01\x00binary\xff\xfe"), 1<<16)
	for written := 0; written < 27<<20; written += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Load(path)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "over the 16 MiB limit") || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want the file named and the limit", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("refusing a 27 MiB file allocated %d bytes; it should not read the file", alloc)
	}
}

func TestReadFromStopsAtTheLimit(t *testing.T) {
	t.Parallel()
	r := &countingReader{}
	_, err := ReadFrom("<stdin>", r)
	if err == nil || !strings.Contains(err.Error(), "<stdin>: more than 16 MiB") {
		t.Fatalf("error %v, want the limit named", err)
	}
	if r.n > MaxFileSize+64<<10 {
		t.Errorf("read %d bytes from an endless input; want at most the limit and a buffer", r.n)
	}
}

func TestReadFromRefusesBinaryWithAShortEscapedExcerpt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want string
	}{
		{"a NUL byte is named with its line and an escaped excerpt", "policies:\n  - name: a\x00b\n", `x.yaml:2: not a text file: byte 21 is not UTF-8 text (near ..."\n  - name: a\x00b\n")`},
		{"bytes that are not UTF-8 are refused", "\xff\xfep\x00o\x00l\x00", `x.yaml:1: not a text file: byte 0 is not UTF-8 text (near "\xff\xfep\x00o\x00l\x00")`},
		{"a long binary shows only a cut excerpt", strings.Repeat("a: b\n", 100) + "\x7fELF\x02\x01\x01" + strings.Repeat("\x00", 1000), `x.yaml:101: not a text file: byte 507 is not UTF-8 text (near ..."a: b\n\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"...)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ReadFrom("x.yaml", strings.NewReader(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error\n  %v\nwant it to start with\n  %s", err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long; an excerpt should be short", len(err.Error()))
			}
		})
	}
	t.Run("text passes unchanged", func(t *testing.T) {
		t.Parallel()
		in := "policies:\n  - name: café\n"
		got, err := ReadFrom("x.yaml", strings.NewReader(in))
		if err != nil || string(got) != in {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("a missing file is a read error that wraps the cause", func(t *testing.T) {
		t.Parallel()
		_, err := ReadFile(filepath.Join(t.TempDir(), "missing.yaml"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("error %v, want one wrapping os.ErrNotExist", err)
		}
	})
}
