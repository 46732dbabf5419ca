package envoytest

import (
	"net/http"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// withMetadata returns r with dynamic_metadata set to md, given as
// namespace -> key -> value.
func withMetadata(r *extprocv3.ProcessingResponse, md map[string]map[string]any) *extprocv3.ProcessingResponse {
	top := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for ns, kv := range md {
		s, err := structpb.NewStruct(kv)
		if err != nil {
			panic(err) // test data only
		}
		top.Fields[ns] = structpb.NewStructValue(s)
	}
	r.DynamicMetadata = top
	return r
}

// TestDynamicMetadataIsStoredOnlyForReceivingNamespaces pins Envoy's
// handling of ProcessingResponse.dynamic_metadata
// (shared/notes/envoy-filter-chain.md §F; ext_proc.cc setDynamicMetadata):
// each top-level key is a namespace, stored only when
// metadata_options.receiving_namespaces.untyped lists it and dropped
// otherwise; a later reply merges into the namespace key by key; an
// ImmediateResponse's metadata is stored too. The access log reads it
// with %DYNAMIC_METADATA(ns:key)%, "-" when absent.
func TestDynamicMetadataIsStoredOnlyForReceivingNamespaces(t *testing.T) {
	t.Parallel()
	const format = `%RESPONSE_CODE% %RESPONSE_CODE_DETAILS% %REQ(:METHOD)% %REQ(ORIGIN)% d=%DYNAMIC_METADATA(corsproc:decision)% r=%DYNAMIC_METADATA(corsproc:reason)% m=%DYNAMIC_METADATA(corsproc:report_mismatch)% o=%DYNAMIC_METADATA(other:key)%`
	reqMeta := map[string]map[string]any{
		"corsproc": {"decision": "denied", "reason": "origin_not_allowed"},
		"other":    {"key": "dropped unless listed"},
	}
	respMeta := map[string]map[string]any{"corsproc": {"decision": "allowed", "report_mismatch": true}}
	cases := []struct {
		name       string
		namespaces []string
		script     []step
		want       string
	}{{
		name:       "a listed namespace is stored and an unlisted one dropped",
		namespaces: []string{"corsproc"},
		script: []step{
			{want: "request_headers", reply: withMetadata(reqHeadersReply(nil), reqMeta)},
			{want: "response_headers", reply: respHeadersReply(nil)},
		},
		want: "200 via_upstream GET https://a.example d=denied r=origin_not_allowed m=- o=-",
	}, {
		name:       "nothing is stored when no namespace is listed",
		namespaces: nil,
		script: []step{
			{want: "request_headers", reply: withMetadata(reqHeadersReply(nil), reqMeta)},
			{want: "response_headers", reply: respHeadersReply(nil)},
		},
		want: "200 via_upstream GET https://a.example d=- r=- m=- o=-",
	}, {
		name:       "the response phase merges into the namespace key by key",
		namespaces: []string{"corsproc", "other"},
		script: []step{
			{want: "request_headers", reply: withMetadata(reqHeadersReply(nil), reqMeta)},
			{want: "response_headers", reply: withMetadata(respHeadersReply(nil), respMeta)},
		},
		want: "200 via_upstream GET https://a.example d=allowed r=origin_not_allowed m=true o=dropped unless listed",
	}, {
		name:       "an immediate response's metadata is stored",
		namespaces: []string{"corsproc"},
		script: []step{
			{want: "request_headers", reply: withMetadata(immediateReply(403, nil, "", "refused"), reqMeta)},
		},
		want: "403 refused GET https://a.example d=denied r=origin_not_allowed m=- o=-",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, nil, c.script...)
			u := startUpstream(t, nil, nil)
			e := startEnvoy(t, p, u, Config{ReceivingNamespaces: c.namespaces, MessageTimeout: testTimeout})
			resp, _ := do(t, http.MethodGet, e.URL()+"/x", "", "Origin: https://a.example")
			if resp.StatusCode != 200 && resp.StatusCode != 403 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			log := e.AccessLog()
			if len(log) != 1 {
				t.Fatalf("%d access log entries, want 1", len(log))
			}
			got, err := log[0].Format(format)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("access log line\n got %q\nwant %q", got, c.want)
			}
		})
	}
	t.Run("an operator the stand-in does not know is an error, not a silent dash", func(t *testing.T) {
		t.Parallel()
		if _, err := (AccessLogEntry{}).Format("%UPSTREAM_HOST%"); err == nil {
			t.Errorf("Format accepted %s", "%UPSTREAM_HOST%")
		}
	})
}
