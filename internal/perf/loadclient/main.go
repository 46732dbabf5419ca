// Command loadclient is the load side of scripts/bench-server. It drives
// ext_proc streams at several servers as Envoy does (one connection per
// server, a stream per HTTP request, each message answered before the next
// is sent), alternating the servers over rounds, and reads each server's
// CPU time from /proc/PID/stat around every batch. It prints each server's
// CPU per request and its ratio to the first server's, per case.
//
//	loadclient -server null=127.0.0.1:9101=PID -server corsproc=127.0.0.1:9102=PID
//
// It stops by itself after -rounds rounds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

type server struct {
	name, addr string
	pid        int
	client     extprocv3.ExternalProcessorClient
}

type servers []*server

func (s *servers) String() string { return "" }
func (s *servers) Set(v string) error {
	parts := strings.Split(v, "=")
	if len(parts) != 3 {
		return errors.New("want name=addr=pid")
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil {
		return err
	}
	*s = append(*s, &server{name: parts[0], addr: parts[1], pid: pid})
	return nil
}

// header is a header as Envoy sends it: the value in raw_value.
func header(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }

// requestHeaders are the 15 headers Envoy sends for a browser's request
// when the filter has no forward_rules: pseudo-headers, cookies, user
// agent and all.
func requestHeaders(method, origin string, extra ...string) []byte {
	hs := []*corev3.HeaderValue{
		header(":authority", "api.example.com"), header(":path", "/v1/cart/items?page=2"),
		header(":method", method), header(":scheme", "https"),
		header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"),
		header("accept", "application/json"), header("accept-encoding", "gzip, deflate, br"),
		header("accept-language", "en-GB,en;q=0.9"), header("cookie", "session=0123456789abcdef; theme=dark; _ga=GA1.2.123456789.1700000000"),
		header("referer", "https://app.example.com/cart"), header("x-forwarded-proto", "https"),
		header("x-request-id", "4f1c2e8a-7b3d-4c5e-9f0a-1b2c3d4e5f60"), header("x-envoy-external-address", "203.0.113.7"),
	}
	if origin != "" {
		hs = append(hs, header("origin", origin))
	} else {
		hs = append(hs, header("sec-fetch-site", "same-origin"))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		hs = append(hs, header(extra[i], extra[i+1]))
	}
	if len(extra) == 0 {
		hs = append(hs, header("x-forwarded-for", "203.0.113.7"))
	}
	return encode(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: true}}})
}

var responseHeaders = encode(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
	ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		header(":status", "200"), header("content-type", "application/json"), header("content-length", "512"),
		header("cache-control", "private"), header("vary", "accept-encoding"), header("x-request-id", "4f1c2e8a-7b3d-4c5e-9f0a-1b2c3d4e5f60"),
		header("date", "Wed, 02 Dec 2026 12:00:00 GMT"), header("server", "envoy"), header("x-envoy-upstream-service-time", "3"),
	}}}}})

func encode(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // a message built above
	}
	return b
}

// cases are the three kinds of request the targets name.
var cases = []struct {
	name string
	req  []byte
}{
	{"actual", requestHeaders("GET", "https://app.example.com")},
	{"preflight", requestHeaders("OPTIONS", "https://app.example.com",
		"access-control-request-method", "PUT", "access-control-request-headers", "content-type,authorization")},
	{"no-origin", requestHeaders("GET", "")},
}

// rawCodec sends pre-encoded requests; replies are decoded, as Envoy
// decodes them, on the client's own core.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	return proto.Unmarshal(data, v.(*extprocv3.ProcessingResponse))
}
func (rawCodec) Name() string { return "proto" }

// roundTrip plays one HTTP request: request headers; unless the reply is
// an immediate response or skips the response phase, response headers;
// then the half-close, and the server's end of the stream.
func roundTrip(ctx context.Context, c extprocv3.ExternalProcessorClient, req []byte) error {
	stream, err := c.Process(ctx, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	var resp extprocv3.ProcessingResponse
	if err := stream.SendMsg(req); err != nil {
		return err
	}
	if err := stream.RecvMsg(&resp); err != nil {
		return err
	}
	if resp.GetImmediateResponse() == nil && resp.GetModeOverride().GetResponseHeaderMode() != 2 { // 2: SKIP
		if err := stream.SendMsg(responseHeaders); err != nil {
			return err
		}
		if err := stream.RecvMsg(&resp); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if err := stream.RecvMsg(&resp); !errors.Is(err, io.EOF) {
		return fmt.Errorf("the stream did not end cleanly: %v", err)
	}
	return nil
}

// cpuNanos is the CPU time the process's threads have used, summed from
// each one's /proc/PID/task/TID/schedstat (nanoseconds, where
// /proc/PID/stat counts 10 ms ticks). Go's threads live as long as the
// process, so none takes its time away with it.
func cpuNanos(pid int) (int64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread just ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, errors.New("empty " + dir + "/" + t.Name() + "/schedstat")
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// batch sends n requests over conc concurrent streams.
func batch(ctx context.Context, s *server, req []byte, n, conc int) error {
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	per := n / conc
	for range conc {
		wg.Go(func() {
			for range per {
				if err := roundTrip(ctx, s.client, req); err != nil {
					errs <- fmt.Errorf("%s: %w", s.name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func main() {
	var ss servers
	flag.Var(&ss, "server", "name=addr=pid of a server to measure (repeat; the first is the baseline)")
	rounds := flag.Int("rounds", 15, "rounds; each measures every server on every case")
	n := flag.Int("requests", 5000, "HTTP requests per server, case and round")
	conc := flag.Int("concurrency", 16, "streams in flight on each server's connection")
	var pairs pairList
	flag.Var(&pairs, "compare", "a/b: also print server a's CPU per request over server b's, round by round (repeat)")
	flag.Parse()
	if len(ss) < 2 {
		fmt.Fprintln(os.Stderr, "loadclient: give at least two -server name=addr=pid")
		os.Exit(2)
	}
	index := map[string]int{}
	for i, s := range ss {
		index[s.name] = i
	}
	for _, p := range pairs {
		if _, ok := index[p[0]]; !ok {
			fatal(errors.New("-compare names an unknown server: " + p[0]))
		}
		if _, ok := index[p[1]]; !ok {
			fatal(errors.New("-compare names an unknown server: " + p[1]))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, s := range ss {
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fatal(err)
		}
		defer conn.Close()
		s.client = extprocv3.NewExternalProcessorClient(conn)
		for _, c := range cases { // connect and warm up
			if err := batch(ctx, s, c.req, *n/10, *conc); err != nil {
				fatal(err)
			}
		}
	}
	// cpu[case][server] holds the µs of CPU per request of each round.
	cpu := make([][][]float64, len(cases))
	rate := make([][][]float64, len(cases))
	for i := range cpu {
		cpu[i], rate[i] = make([][]float64, len(ss)), make([][]float64, len(ss))
	}
	for r := range *rounds {
		for ci, c := range cases {
			for k := range ss {
				// Alternate which server goes first from round to round.
				si := k
				if r%2 == 1 {
					si = len(ss) - 1 - k
				}
				s := ss[si]
				before, err := cpuNanos(s.pid)
				if err != nil {
					fatal(err)
				}
				start := time.Now()
				if err := batch(ctx, s, c.req, *n, *conc); err != nil {
					fatal(err)
				}
				wall := time.Since(start)
				after, err := cpuNanos(s.pid)
				if err != nil {
					fatal(err)
				}
				reqs := float64(*n / *conc * *conc)
				cpu[ci][si] = append(cpu[ci][si], float64(after-before)/1e3/reqs)
				rate[ci][si] = append(rate[ci][si], reqs/wall.Seconds())
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, *rounds)
	}
	// The ratios are the medians of each round's ratio to the first
	// server, measured next to it; the quartiles show the spread.
	fmt.Printf("%-10s %-18s %11s %22s %9s %8s\n", "case", "server", "cpu-µs/req", "cpu ratio [q1, q3]", "req/s", "ratio")
	for ci, c := range cases {
		for si, s := range ss {
			ratios, rateRatios := make([]float64, *rounds), make([]float64, *rounds)
			for r := range *rounds {
				ratios[r] = cpu[ci][si][r] / cpu[ci][0][r]
				rateRatios[r] = rate[ci][si][r] / rate[ci][0][r]
			}
			q1, q2, q3 := quartiles(ratios)
			_, rr, _ := quartiles(rateRatios)
			_, m, _ := quartiles(cpu[ci][si])
			_, mr, _ := quartiles(rate[ci][si])
			fmt.Printf("%-10s %-18s %11.1f %7.2fx [%.2f, %.2f] %9.0f %7.2fx\n", c.name, s.name, m, q2, q1, q3, mr, rr)
		}
	}
	for _, p := range pairs {
		a, b := index[p[0]], index[p[1]]
		fmt.Printf("\n%s ÷ %s, CPU per request, median of the rounds' ratios [q1, q3]:\n", p[0], p[1])
		for ci, c := range cases {
			ratios := make([]float64, *rounds)
			for r := range *rounds {
				ratios[r] = cpu[ci][a][r] / cpu[ci][b][r]
			}
			q1, q2, q3 := quartiles(ratios)
			fmt.Printf("%-10s %7.3fx [%.3f, %.3f]\n", c.name, q2, q1, q3)
		}
	}
}

// pairList is the -compare flag: server names a/b.
type pairList [][2]string

func (p *pairList) String() string { return "" }
func (p *pairList) Set(v string) error {
	a, b, ok := strings.Cut(v, "/")
	if !ok || a == "" || b == "" {
		return errors.New("want a/b, two server names")
	}
	*p = append(*p, [2]string{a, b})
	return nil
}

func quartiles(xs []float64) (q1, q2, q3 float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0, 0, 0
	}
	return s[len(s)/4], s[len(s)/2], s[len(s)*3/4]
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadclient:", err)
	os.Exit(1)
}
