package doctor_test

import (
	"fmt"

	"github.com/corsproc/corsproc/internal/doctor"
)

// Decode a saved /config_dump and list what keeps CORS from working.
func ExampleAnalyze() {
	dump := []byte(`{"configs": [{
	  "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
	  "static_listeners": [{"listener": {
	    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "ingress",
	    "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {
	      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
	      "stat_prefix": "in",
	      "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]}]},
	      "http_filters": [
	        {"name": "envoy.filters.http.jwt_authn", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"}},
	        {"name": "envoy.filters.http.ext_proc", "typed_config": {
	          "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
	          "grpc_service": {"envoy_grpc": {"cluster_name": "corsproc"}},
	          "allow_mode_override": true, "failure_mode_allow": true, "message_timeout": "0.2s"}},
	        {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
	      ]}}]}]}}]}]}`)
	d, notes, err := doctor.Decode(dump)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range append(doctor.Analyze(d, doctor.Options{}), notes...) {
		fmt.Printf("%s %s: %s\n", f.Severity, f.Check, f.Where)
	}
	// Output:
	// error auth-before-corsproc: listener ingress, filter chain 0, http_filters[0] envoy.filters.http.jwt_authn
	// info forwards-all-headers: listener ingress, filter chain 0, http_filters[1] envoy.filters.http.ext_proc
}
