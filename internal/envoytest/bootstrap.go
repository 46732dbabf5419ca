package envoytest

import (
	"errors"
	"fmt"
	"os"
	"slices"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/goccy/go-yaml"
	"google.golang.org/protobuf/encoding/protojson"

	// The typed_config types the shipped bootstraps use: an unregistered
	// one does not decode, as it would not load in Envoy.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// FromBootstrapFile reads an Envoy static bootstrap (YAML, as Envoy loads
// it: unknown fields refused) and returns the Config of the listener named
// listener: the settings of its first HTTP filter, which must be corsproc's
// (see [FromHTTPFilter]), and its routes in order, each with its name, path
// prefix and response_headers_to_add (the route's, then its virtual
// host's). The caller sets Processor, each route's Upstream, and the
// filters around corsproc's it wants modelled.
func FromBootstrapFile(path, listener string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	for _, l := range b.GetStaticResources().GetListeners() {
		if l.GetName() != listener {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hcm := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(hcm) != nil {
					continue
				}
				cfg, err := fromConnectionManager(hcm)
				if err != nil {
					return cfg, fmt.Errorf("%s: listener %q: %w", path, listener, err)
				}
				return cfg, nil
			}
		}
		return Config{}, fmt.Errorf("%s: listener %q has no HTTP connection manager", path, listener)
	}
	return Config{}, fmt.Errorf("%s: no listener %q", path, listener)
}

func fromConnectionManager(hcm *hcmv3.HttpConnectionManager) (Config, error) {
	if len(hcm.GetHttpFilters()) == 0 {
		return Config{}, errors.New("no HTTP filters")
	}
	cfg, err := FromHTTPFilter(hcm.GetHttpFilters()[0])
	if err != nil {
		return cfg, fmt.Errorf("the first HTTP filter: %w", err)
	}
	if cfg.AccessLogFormat, err = accessLogFormat(hcm); err != nil {
		return cfg, err
	}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if r.GetMatch().GetPrefix() == "" && r.GetMatch().GetPath() == "" {
				return cfg, fmt.Errorf("route %q: the stand-in matches prefixes only", r.GetName())
			}
			cfg.Routes = append(cfg.Routes, Route{Name: r.GetName(), PathPrefix: r.GetMatch().GetPrefix(),
				ResponseHeadersToAdd: slices.Concat(r.GetResponseHeadersToAdd(), vh.GetResponseHeadersToAdd(),
					hcm.GetRouteConfig().GetResponseHeadersToAdd())})
		}
	}
	return cfg, nil
}

// accessLogFormat returns the text format of the connection manager's
// stdout access log, "" when it has none or uses Envoy's default format.
func accessLogFormat(hcm *hcmv3.HttpConnectionManager) (string, error) {
	for _, al := range hcm.GetAccessLog() {
		out := &streamv3.StdoutAccessLog{}
		if al.GetTypedConfig().UnmarshalTo(out) != nil {
			continue
		}
		tf := out.GetLogFormat().GetTextFormatSource()
		if tf == nil {
			return "", nil
		}
		if _, ok := tf.GetSpecifier().(*corev3.DataSource_InlineString); !ok {
			return "", errors.New("the access log's text_format_source is not an inline_string")
		}
		return tf.GetInlineString(), nil
	}
	return "", nil
}
