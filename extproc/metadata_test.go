package extproc

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestDynamicMetadata checks what each reply carries in
// ProcessingResponse.dynamic_metadata, over a real stream: the request
// phase reports the decision in the corsproc namespace, the response phase
// adds only a report-mode mismatch.
func TestDynamicMetadata(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testPolicy, Options{})
	cases := []struct {
		name string
		msgs []*extprocv3.ProcessingRequest
		want []string // per reply: sorted "key=value" pairs of the namespace, "" for no metadata
	}{{
		name: "a refused preflight names policy, class, decision, reason and mode",
		msgs: []*extprocv3.ProcessingRequest{preflight("api.example.com", "https://evil.example.com", "PUT")},
		want: []string{"class=preflight decision=denied mode=enforce policy=shop reason=origin_not_allowed"},
	}, {
		name: "an allowed actual request reports allowed and leaves the response phase without metadata",
		msgs: []*extprocv3.ProcessingRequest{request("GET", "api.example.com", "origin", app), respHeaders(":status", "200")},
		want: []string{"class=actual decision=allowed mode=enforce policy=shop reason=origin_allowed", ""},
	}, {
		name: "a request no policy matches has no policy key, so the access log prints -",
		msgs: []*extprocv3.ProcessingRequest{request("GET", "nowhere.example.com", "origin", app)},
		want: []string{"class=unmatched decision=skipped reason=no_policy"},
	}, {
		name: "a report-mode mismatch is added by the response phase",
		msgs: []*extprocv3.ProcessingRequest{
			request("GET", "report.example.com", "origin", "https://evil.example.com"),
			respHeaders(":status", "200", "access-control-allow-origin", "*"),
		},
		want: []string{"class=actual decision=denied mode=report policy=report-api reason=origin_not_allowed", "report_mismatch=true"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := ts.exchange(t, c.msgs...)
			if len(got) != len(c.want) {
				t.Fatalf("%d replies, want %d", len(got), len(c.want))
			}
			for i, w := range c.want {
				if s := metadataString(t, got[i].GetDynamicMetadata()); s != w {
					t.Errorf("reply %d: metadata %q, want %q", i, s, w)
				}
			}
		})
	}
}

// metadataString renders the corsproc namespace of md as sorted key=value
// pairs, failing on any other namespace.
func metadataString(t *testing.T, md *structpb.Struct) string {
	t.Helper()
	if md == nil {
		return ""
	}
	for ns := range md.GetFields() {
		if ns != MetadataNamespace {
			t.Errorf("metadata namespace %q, want only %q", ns, MetadataNamespace)
		}
	}
	fields := md.GetFields()[MetadataNamespace].GetStructValue().GetFields()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fields[k]
		s := v.GetStringValue()
		if _, ok := v.GetKind().(*structpb.Value_BoolValue); ok {
			s = "false"
			if v.GetBoolValue() {
				s = "true"
			}
		}
		out = append(out, k+"="+s)
	}
	return strings.Join(out, " ")
}

// TestEncodedContinueRepliesDecodeAsBuilt: the CONTINUE replies encoded
// once per kind of decision decode to the reply built field by field,
// with the metadata as a Struct, with and without mode_override.
func TestEncodedContinueRepliesDecodeAsBuilt(t *testing.T) {
	t.Parallel()
	md := namespaced(map[string]*structpb.Value{MetadataPolicy: structpb.NewStringValue("shop")})
	m := newDecisionMeta(encodeMetadata(md))
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprintf("skip=%v", skip), func(t *testing.T) {
			var st streamState
			want := proto.Clone(st.continueRequest(skip)).(*extprocv3.ProcessingResponse)
			want.DynamicMetadata = md
			b, err := proto.Marshal(m.continueReply(skip))
			if err != nil {
				t.Fatal(err)
			}
			var got extprocv3.ProcessingResponse
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, want) {
				t.Errorf("the encoded reply decodes to\n%v\nwant\n%v", &got, want)
			}
		})
	}
}
