package envoytest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFromBootstrapFileReadsTheShippedDemo(t *testing.T) {
	t.Parallel()
	cfg, err := FromBootstrapFile(filepath.Join("..", "..", "envoy", "envoy.yaml"), "ingress")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OnlyWithHeader != "origin" || cfg.ForwardRules == nil || cfg.MutationRules == nil || !cfg.AllowModeOverride {
		t.Errorf("corsproc's filter settings: %+v", cfg)
	}
	if len(cfg.Routes) == 0 || len(cfg.Routes[0].ResponseHeadersToAdd) == 0 {
		t.Errorf("routes %+v lack the virtual host's response headers", cfg.Routes)
	}
	plain, err := FromBootstrapFile(filepath.Join("..", "..", "envoy", "envoy-no-composite.yaml"), "ingress")
	if err != nil || plain.OnlyWithHeader != "" || plain.ForwardRules == nil {
		t.Errorf("envoy-no-composite.yaml: %v, %+v", err, plain)
	}
}

func TestFromBootstrapFileRefusesWhatEnvoyRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml string }{
		{"an unknown field", "static_resources: {listenerz: []}"},
		{"no such listener", "static_resources: {listeners: []}"},
		{"a first filter that is not corsproc's", `
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: x
          route_config: {}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}`},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "envoy.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := FromBootstrapFile(p, "ingress"); err == nil {
				t.Errorf("no error")
			}
		})
	}
}
