package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/corsproc/corsproc/internal/testutil"
)

const adminPolicy = `policies:
  - name: shop
    match: {hosts: [api.example.com]}
    allowed_origins: ["https://app.example.com"]
    allow_headers: [content-type]
  - name: trial
    match: {hosts: [trial.example.com]}
    mode: report
    allowed_origins: ["https://app.example.com"]
`

// TestServeMetricsMove drives requests through the ext_proc listener and
// reads /metrics as Prometheus would: every counter of docs/contract.md §4 moves.
func TestServeMetricsMove(t *testing.T) {
	t.Parallel()
	path := testutil.WriteFile(t, t.TempDir(), "policy.yaml", adminPolicy)
	s := startServe(t, nil, "--config", path)
	c := s.conn(t)
	preflightReply(t, c, "api.example.com", "https://app.example.com")  // allowed
	preflightReply(t, c, "api.example.com", "https://evil.example.com") // denied
	preflightReply(t, c, "api.example.com", "https://evil.example.com") // denied
	preflightReply(t, c, "other.example.com", "https://app.example.com")
	preflightReply(t, c, "trial.example.com", "https://evil.example.com")
	want := map[string]float64{
		`corsproc_requests_total{class="preflight",decision="allowed",policy="shop"}`: 1,
		`corsproc_requests_total{class="preflight",decision="denied",policy="shop"}`:  2,
		`corsproc_requests_total{class="unmatched",decision="skipped",policy=""}`:     1,
		`corsproc_requests_total{class="preflight",decision="denied",policy="trial"}`: 1,
		`corsproc_denials_total{policy="shop",reason="origin_not_allowed"}`:           2,
		`corsproc_denials_total{policy="shop",reason="header_not_allowed"}`:           -2, // a denial series comes with the first such denial
		`corsproc_report_mismatches_total{policy="trial"}`:                            0,
		`corsproc_stream_errors_total{reason="empty_message"}`:                        0,
		`corsproc_phase_duration_seconds_count{phase="request_headers"}`:              5,
		`corsproc_config_reloads_total{result="success"}`:                             0,
		`corsproc_config_reloads_total{result="failure"}`:                             0,
		`corsproc_config_last_reload_successful`:                                      1,
		`corsproc_config_info{sha256="` + s.configSHA(t) + `"}`:                       1,
		`corsproc_phase_duration_seconds_bucket{phase="request_headers",le="+Inf"}`:   5,
		`corsproc_phase_duration_seconds_bucket{phase="response_headers",le="+Inf"}`:  0,
		`corsproc_requests_total{class="no_origin",decision="skipped",policy="shop"}`: 0,
		`corsproc_requests_total{class="actual",decision="allowed",policy="trial"}`:   0,
		`corsproc_denials_total{policy="trial",reason="method_not_allowed"}`:          -2, // a denial series comes with the first such denial
		`corsproc_phase_duration_seconds_bucket{phase="request_headers",le="1e-06"}`:  -1, // exists
		`corsproc_config_last_reload_success_timestamp_seconds`:                       -1,
		`go_goroutines`:           -1,
		`process_open_fds`:        -1,
		`corsproc_streams_active`: -1,
		`corsproc_phase_duration_seconds_bucket{phase="response_headers",le="0.00025"}`:      0,
		`corsproc_requests_total{class="actual",decision="denied",policy="shop"}`:            0,
		`corsproc_requests_total{class="preflight",decision="allowed",policy="trial"}`:       0,
		`corsproc_denials_total{policy="shop",reason="multiple_origins"}`:                    -2, // a denial series comes with the first such denial
		`corsproc_phase_duration_seconds_count{phase="response_headers"}`:                    0,
		`corsproc_stream_errors_total{reason="panic"}`:                                       0,
		`corsproc_stream_errors_total{reason="decode"}`:                                      0,
		`corsproc_denials_total{policy="trial",reason="origin_not_allowed"}`:                 1,
		`corsproc_requests_total{class="actual",decision="allowed",policy="shop"}`:           0,
		`corsproc_requests_total{class="no_origin",decision="skipped",policy="trial"}`:       0,
		`corsproc_phase_duration_seconds_bucket{phase="request_headers",le="0.025"}`:         -1, // exists; how many fit is speed, which a loaded machine does not promise
		`corsproc_denials_total{policy="shop",reason="origin_too_long"}`:                     -2, // a denial series comes with the first such denial
		`corsproc_stream_errors_total{reason="invalid_output_header"}`:                       0,
		`corsproc_stream_errors_total{reason="recv"}`:                                        0,
		`corsproc_stream_errors_total{reason="send"}`:                                        0,
		`corsproc_phase_duration_seconds_sum{phase="request_headers"}`:                       -1,
		`corsproc_requests_total{class="preflight",decision="skipped",policy="shop"}`:        -2, // never pre-created
		`corsproc_requests_total{class="unmatched",decision="skipped",policy="development"}`: -2,
		`corsproc_report_mismatches_total{policy="shop"}`:                                    -2, // enforce: none
		`corsproc_denials_total{policy="shop",reason="origin_allowed"}`:                      -2,
	}
	_, body := s.get(t, "/metrics")
	for series, v := range want {
		got, ok := testutil.Sample(t, body, series)
		switch {
		case v == -2 && ok:
			t.Errorf("%s exists; it should not", series)
		case v == -1 && !ok, v >= 0 && !ok:
			t.Errorf("%s missing from /metrics", series)
		case v >= 0 && got != v:
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
}

// TestServeAdminExplainAndConfig checks /explain (as the CLI's --json) and
// /config (the running policy with its sha256 and load time), and pprof
// only with --pprof.
func TestServeAdminExplainAndConfig(t *testing.T) {
	t.Parallel()
	path := testutil.WriteFile(t, t.TempDir(), "policy.yaml", adminPolicy)
	s := startServe(t, nil, "--config", path, "--pprof")
	cases := []struct {
		name  string
		query url.Values
		code  int
		want  []string
	}{
		{"an allowed preflight is explained with its answer", url.Values{"origin": {"https://app.example.com"}, "host": {"api.example.com"}, "request_method": {"PUT"}},
			200, []string{`"decision": "allowed"`, `"class": "preflight"`, `"status": 204`, `"forwarded": false`, `"policy": "shop"`, `"config": "` + path + `"`}},
		{"a refused header is named", url.Values{"origin": {"https://app.example.com"}, "host": {"api.example.com"}, "request_method": {"PUT"}, "request_headers": {"x-api-key"}},
			200, []string{`"decision": "denied"`, `"reason": "header_not_allowed"`, `x-api-key`}},
		{"an actual request without origin is explained", url.Values{"host": {"api.example.com"}, "method": {"GET"}},
			200, []string{`"class": "no_origin"`, `"value": "origin"`}},
		{"a host no policy matches is explained", url.Values{"host": {"nowhere.example.com"}, "origin": {"https://app.example.com"}},
			200, []string{`"class": "unmatched"`, `"reason": "no_policy"`, `"response_phase": false`}},
		{"a CLI-style parameter name is accepted", url.Values{"origin": {"https://app.example.com"}, "host": {"api.example.com"}, "request-method": {"PUT"}},
			200, []string{`"class": "preflight"`}},
		{"an unknown parameter is refused with the list of known ones", url.Values{"requestMethod": {"PUT"}},
			400, []string{"unknown parameter", "request_method"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, body := s.get(t, "/explain?"+c.query.Encode())
			if code != c.code {
				t.Errorf("status %d, want %d:\n%s", code, c.code, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("lacks %s:\n%s", w, body)
				}
			}
		})
	}
	t.Run("config shows the running policy with its sha256 and load time", func(t *testing.T) {
		t.Parallel()
		code, body := s.get(t, "/config")
		var v struct {
			File     string           `json:"file"`
			SHA256   string           `json:"sha256"`
			LoadedAt string           `json:"loaded_at"`
			Policies []map[string]any `json:"policies"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || code != 200 {
			t.Fatalf("%d %v:\n%s", code, err, body)
		}
		if v.File != path || len(v.SHA256) != 64 || v.LoadedAt == "" || len(v.Policies) != 2 || v.Policies[1]["mode"] != "report" {
			t.Errorf("unexpected /config:\n%s", body)
		}
		if v.Policies[0]["allow_methods"] == nil {
			t.Errorf("/config does not show effective policies (defaults applied):\n%s", body)
		}
	})
	t.Run("pprof is served with --pprof", func(t *testing.T) {
		t.Parallel()
		if code, _ := s.get(t, "/debug/pprof/"); code != 200 {
			t.Errorf("/debug/pprof/: %d", code)
		}
	})
}
