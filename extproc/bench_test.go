package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	nullproc "github.com/corsproc/corsproc/internal/perf/null"
)

// benchPolicy is a production-like policy: the request is matched by the
// last of several policies and allowed with credentials.
const benchPolicy = `
policies:
  - name: admin
    match: {hosts: [admin.example.com], path_prefixes: [/admin/]}
    allowed_origins: ["https://admin.example.com"]
  - name: public
    match: {hosts: [cdn.example.com]}
    allow_all_origins: true
  - name: shop
    match: {hosts: [api.example.com, "*.shop.example.com"], path_prefixes: [/v1/, /v2/]}
    allowed_origins: ["https://app.example.com", "https://*.example.com", "http://localhost:*"]
    allow_credentials: true
    allow_methods: [GET, POST, PUT, DELETE]
    allow_headers: [content-type, authorization, x-request-id]
    expose_headers: [x-request-id, x-total-count]
`

// envoyRequest is what Envoy sends for a browser's credentialed GET from
// an allowed origin, and what the service answers.
var (
	benchRequest = request("GET", "api.example.com",
		"origin", "https://app.example.com",
		"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36",
		"accept", "application/json", "accept-encoding", "gzip, deflate, br", "accept-language", "en-GB,en;q=0.9",
		"cookie", "session=0123456789abcdef", "referer", "https://app.example.com/cart",
		"x-forwarded-proto", "https", "x-forwarded-for", "203.0.113.7")
	benchResponse = respHeaders(":status", "200", "content-type", "application/json", "content-length", "512",
		"cache-control", "private", "vary", "accept-encoding", "x-request-id", "abc", "x-envoy-upstream-service-time", "3")
)

// rawReplies is a client codec that leaves replies undecoded: decoding
// them is Envoy's work, not corsproc's, and would charge corsproc's larger
// replies to corsproc in a same-process benchmark. Requests are sent
// pre-encoded.
type rawReplies struct{ buf []byte }

func (c *rawReplies) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (c *rawReplies) Unmarshal(data []byte, _ any) error {
	c.buf = append(c.buf[:0], data...)
	return nil
}
func (c *rawReplies) Name() string { return "proto" }

// roundTrip plays one HTTP request as Envoy does: a new stream, the
// request headers, the response headers, then the half-close. The
// benchmark request needs both phases from either processor.
func roundTrip(ctx context.Context, c extprocv3.ExternalProcessorClient, codec *rawReplies, req, resp []byte) error {
	stream, err := c.Process(ctx, grpc.ForceCodec(codec))
	if err != nil {
		return err
	}
	for _, m := range [][]byte{req, resp} {
		if err := stream.SendMsg(m); err != nil {
			return err
		}
		if err := stream.RecvMsg(codec); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if err := stream.RecvMsg(codec); !errors.Is(err, io.EOF) {
		return errors.New("stream did not end cleanly: " + errString(err))
	}
	return nil
}

// BenchmarkProcessor drives corsproc's processor over loopback gRPC the way
// Envoy does, against a null processor measured in the same run, and
// reports requests per second, allocations and bytes per request of both,
// the throughput ratio and the allocations corsproc adds.
func BenchmarkProcessor(b *testing.B) {
	ctx := context.Background()
	cors := startServer(b, benchPolicy, Options{Logger: discardLogger()})
	null := &testServer{}
	// The null processor as a user would serve it: grpc's defaults,
	// corsproc's codec not among them.
	null.serveWith(b, nullproc.Processor{}, nil)
	got := cors.exchange(b, benchRequest, benchResponse)
	if got[0].GetModeOverride() != nil || len(lines(b, got[1].GetResponseHeaders().GetResponse().GetHeaderMutation())) != 4 {
		b.Fatalf("the benchmark request is not an allowed actual request of policy shop: %v", got)
	}
	req, err := proto.Marshal(benchRequest)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := proto.Marshal(benchResponse)
	if err != nil {
		b.Fatal(err)
	}
	codec := &rawReplies{}
	for _, c := range []*testServer{cors, null} { // connect and warm both
		for range 100 {
			if err := roundTrip(ctx, c.client, codec, req, resp); err != nil {
				b.Fatal(err)
			}
		}
	}

	// For each side: requests per second, allocations and bytes per
	// request, in its own sub-benchmark (testing.Benchmark cannot nest), the
	// null processor first. Then "paired" alternates the two request by
	// request and times each, so that the ratio is not swayed by whatever
	// else the machine does meanwhile. One stream at a time gives the
	// latency-bound rate; 16 at once, as Envoy multiplexes requests on one
	// connection, the CPU-bound one.
	for _, streams := range []int{1, 16} {
		codecs := make([]*rawReplies, streams)
		for i := range codecs {
			codecs[i] = &rawReplies{}
		}
		errs := make(chan error, streams)
		batch := func(b *testing.B, c *testServer) {
			if streams == 1 {
				if err := roundTrip(ctx, c.client, codecs[0], req, resp); err != nil {
					b.Fatal(err)
				}
				return
			}
			var wg sync.WaitGroup
			for i := range streams {
				wg.Go(func() {
					if err := roundTrip(ctx, c.client, codecs[i], req, resp); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
		}
		var baseAllocs float64
		run := func(b *testing.B, c *testServer) (allocs float64) {
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				batch(b, c)
			}
			runtime.ReadMemStats(&after)
			reqs := float64(b.N * streams)
			allocs = float64(after.Mallocs-before.Mallocs) / reqs
			b.ReportMetric(reqs/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(allocs, "allocs/req")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/reqs, "B/req")
			return allocs
		}
		name := fmt.Sprintf("streams=%d", streams)
		b.Run(name+"/null", func(b *testing.B) { baseAllocs = run(b, null) })
		b.Run(name+"/corsproc", func(b *testing.B) {
			allocs := run(b, cors)
			if baseAllocs > 0 {
				b.ReportMetric(allocs-baseAllocs, "extra-allocs/req")
			}
		})
		b.Run(name+"/paired", func(b *testing.B) {
			var tNull, tCors time.Duration
			i := 0
			for b.Loop() {
				first, second, tFirst, tSecond := null, cors, &tNull, &tCors
				if i++; i%2 == 0 {
					first, second, tFirst, tSecond = cors, null, &tCors, &tNull
				}
				t0 := time.Now()
				batch(b, first)
				t1 := time.Now()
				batch(b, second)
				*tFirst += t1.Sub(t0)
				*tSecond += time.Since(t1)
			}
			reqs := float64(b.N * streams)
			b.ReportMetric(reqs/tNull.Seconds(), "null-req/s")
			b.ReportMetric(reqs/tCors.Seconds(), "corsproc-req/s")
			b.ReportMetric(tNull.Seconds()/tCors.Seconds(), "ratio")
		})
	}
}
