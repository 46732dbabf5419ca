package testutil

import corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

// HeaderMap builds a header map the way Envoy sends it, values in
// raw_value; kv are name, value pairs (a name may repeat).
func HeaderMap(kv ...string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return m
}
