package extproc

import (
	"reflect"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"

	"github.com/corsproc/corsproc/internal/extprocwire"
	"github.com/corsproc/corsproc/policy"
)

// wireHeaderNames are header names a request or response may carry: every
// one corsproc reads and many it does not. Each is sent with a value
// policy code would notice.
var wireHeaderNames = []string{
	":method", ":authority", ":path", ":scheme", ":status", "host", "origin", "vary", "referer", "user-agent", "cookie",
	"authorization", "accept", "accept-encoding", "accept-language", "content-type", "content-length", "cache-control",
	"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "x-envoy-original-path", "forwarded",
	"sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user", "sec-ch-ua", "upgrade", "connection",
	"access-control-request-method", "access-control-request-headers", "access-control-request-private-network",
	"access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
	"access-control-allow-headers", "access-control-expose-headers", "access-control-max-age",
	"access-control-allow-private-network", "timing-allow-origin", "x-corsproc-decision",
	"Vary", "ORIGIN", "Access-Control-Allow-Origin", "ACCESS-CONTROL-MAX-AGE", ":Method", "Host",
}

// TestKeptCoversReaders checks that the codec keeps every header the
// processor reads: the request and response headers read from a message
// decoded by extprocwire are those read from proto.Unmarshal's, for each
// header of wireHeaderNames alone and for all of them together.
func TestKeptCoversReaders(t *testing.T) {
	check := func(t *testing.T, kv []string) {
		for _, m := range []*extprocv3.ProcessingRequest{reqHeaders(kv...), respHeaders(kv...)} {
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var full, fast extprocv3.ProcessingRequest
			if err := proto.Unmarshal(b, &full); err != nil {
				t.Fatal(err)
			}
			if err := extprocwire.Decode(b, &fast); err != nil {
				t.Fatal(err)
			}
			hsFull := full.GetRequestHeaders().GetHeaders().GetHeaders()
			hsFast := fast.GetRequestHeaders().GetHeaders().GetHeaders()
			if full.GetResponseHeaders() != nil {
				hsFull = full.GetResponseHeaders().GetHeaders().GetHeaders()
				hsFast = fast.GetResponseHeaders().GetHeaders().GetHeaders()
			}
			var rFull, rFast policy.Request
			var lFull, lFast [4]string
			readRequest(&rFull, lFull[:], hsFull)
			readRequest(&rFast, lFast[:], hsFast)
			if !reflect.DeepEqual(rFull, rFast) {
				t.Errorf("request read from all headers\n%+v\nfrom the kept ones\n%+v", rFull, rFast)
			}
			var uFull, uFast policy.Upstream
			var vFull, vFast [4]string
			var cFull, cFast [8]string
			readUpstream(&uFull, vFull[:], cFull[:], hsFull)
			readUpstream(&uFast, vFast[:], cFast[:], hsFast)
			if !reflect.DeepEqual(uFull, uFast) {
				t.Errorf("response read from all headers\n%+v\nfrom the kept ones\n%+v", uFull, uFast)
			}
		}
	}
	var all []string
	for _, name := range wireHeaderNames {
		kv := []string{name, "true"}
		all = append(all, kv...)
		t.Run(name+" alone reads the same", func(t *testing.T) { check(t, kv) })
	}
	t.Run("all of them together read the same", func(t *testing.T) { check(t, all) })
}
