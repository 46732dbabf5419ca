package doctor_test

import (
	"strings"
	"testing"

	"github.com/corsproc/corsproc/internal/doctor"
	"github.com/corsproc/corsproc/internal/doctor/doctortest"
)

// A listener whose chain is: a filter of a type go-control-plane does not
// have (with fields of its own), corsproc with a field from a newer Envoy,
// the router. Clusters hold a type nobody knows either.
const unknownDump = `{"configs": [
 {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
  "static_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "x",
    "transport_socket": {"name": "t", "typed_config": {"@type": "type.googleapis.com/vendor.Socket", "a": 1}}}}]},
 {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
  "static_listeners": [{"listener": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "l",
   "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "stat_prefix": "s",
    "route_config": {"name": "r", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"name": "all", "match": {"prefix": "/"}, "route": {"cluster": "x"}}]}]},
    "http_filters": [
     {"name": "istio.alpn", "typed_config": {"@type": "type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig", "alpn_override": [{"alpn_override": ["h2"]}]}},
     %s
     {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    ]}}]}]}}]}
]}`

const corsprocJSON = `{"name": "envoy.filters.http.ext_proc", "typed_config": {
  "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
  "grpc_service": {"envoy_grpc": {"cluster_name": "corsproc"}},
  "allow_mode_override": true, "failure_mode_allow": true, "message_timeout": "0.2s"%s}},`

func TestDecodeDegradesOnWhatItDoesNotKnow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		extra     string // added to corsproc's config
		wantNote  bool
		wantCheck string
	}{
		{"a filter of unknown type before corsproc is read and warned about", "", false, "unknown-filter-before-corsproc"},
		{"a field from a newer Envoy is dropped with a note, the rest still judged", `, "a_field_from_envoy_2": {"x": 1}`, true, "unknown-filter-before-corsproc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := strings.Replace(unknownDump, "%s", strings.Replace(corsprocJSON, "%s", tt.extra, 1), 1)
			dump, notes, err := doctor.Decode([]byte(data))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := len(notes) > 0; got != tt.wantNote {
				t.Errorf("notes %v, want a note: %v", notes, tt.wantNote)
			}
			if tt.wantNote && (notes[0].Check != "unknown-fields" || !strings.Contains(notes[0].Message, "a_field_from_envoy_2")) {
				t.Errorf("note %+v does not name the unknown field", notes[0])
			}
			fs := doctor.Analyze(dump, doctor.Options{})
			if !has(fs, doctor.Warning, tt.wantCheck) {
				t.Errorf("no warning %s:\n%s", tt.wantCheck, strings.Join(problems(fs), "\n"))
			}
			if has(fs, doctor.Error, "no-corsproc") {
				t.Errorf("corsproc was lost while decoding")
			}
		})
	}
}

// badDumps are inputs that are no config dump; Decode must say so, never
// panic.
var badDumps = []string{
	"",
	"{",
	"[]",
	"null",
	`{"configs": 5}`,
	`{"configs": [5]}`,
	`{"configs": []} {}`,
	`{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "static_listeners": 5}]}`,
	`{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "static_route_configs": [{"route_config": {"@type": 7}}]}]}`,
	`{"mask": "x"}`,
}

func TestDecodeRefusesWhatIsNoDump(t *testing.T) {
	t.Parallel()
	for _, in := range badDumps {
		t.Run("input "+strings.ReplaceAll(in, "/", "_")+" is refused with an error", func(t *testing.T) {
			t.Parallel()
			if _, _, err := doctor.Decode([]byte(in)); err == nil {
				t.Errorf("no error")
			}
		})
	}
}

func TestDecodeReadsAnEmptyDumpAsNoCorsproc(t *testing.T) {
	t.Parallel()
	dump, _, err := doctor.Decode([]byte(`{"configs": []}`))
	if err != nil {
		t.Fatal(err)
	}
	if fs := doctor.Analyze(dump, doctor.Options{}); !has(fs, doctor.Error, "no-corsproc") {
		t.Errorf("findings %v, want no-corsproc", fs)
	}
}

// FuzzDecode feeds arbitrary bytes through Decode and Analyze: whatever
// the input, an error or findings, never a panic or a hang.
func FuzzDecode(f *testing.F) {
	for _, in := range badDumps {
		f.Add([]byte(in))
	}
	f.Add([]byte(strings.Replace(unknownDump, "%s", strings.Replace(corsprocJSON, "%s", "", 1), 1)))
	for _, b := range bases() {
		d, err := b.build()
		if err != nil {
			f.Fatal(err)
		}
		data, err := doctortest.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dump, _, err := doctor.Decode(data)
		if err != nil {
			return
		}
		doctor.Analyze(dump, doctor.Options{})
	})
}
