package importer

import (
	"strings"
	"testing"

	"github.com/corsproc/corsproc/policy"
)

const ingressYAML = `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: web
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "https://app.example.com, https://*.shop.example.com"
spec:
  rules:
    - host: api.example.com
      http:
        paths:
          - {path: /v1, pathType: Prefix}
          - {path: /healthz, pathType: Exact}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: images
  namespace: web
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
spec:
  rules:
    - host: img.example.com
`

// TestIngressNginxBehaviour runs requests through policies imported from
// Ingress annotations and compares them with what ingress-nginx answers,
// from its source: internal/ingress/annotations/cors/main.go (defaults:
// origin "*", credentials true, its header list) and the template's
// buildOriginRegex ("*" in an origin is [A-Za-z0-9\-]+, one label; the
// origin is matched with ~*, case-insensitively; "*" alone answers "*").
func TestIngressNginxBehaviour(t *testing.T) {
	t.Parallel()
	res, err := Convert("ingress-nginx", []Input{{Name: "ingress.yaml", Data: []byte(ingressYAML)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.Parse("ingress.yaml", res.YAML)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Text, "every origin with credentials") {
		t.Errorf("want one warning, for the images Ingress's default \"*\" with credentials; got %v", res.Warnings)
	}
	tests := []struct {
		name string
		req  policy.Request
		// nginx is ingress-nginx's answer; corsproc, when set, is a
		// deliberate difference, explained by why.
		nginx, corsproc *answer
		why             string
	}{
		{
			name:  "a listed origin is echoed with ingress-nginx's default credentials",
			req:   policy.Request{Method: "GET", Host: "api.example.com", Path: "/v1/cart", Origin: "https://app.example.com"},
			nginx: &answer{allowed: true, allowOrigin: "https://app.example.com", credentials: true},
		},
		{
			name:  "a wildcard origin admits one label",
			req:   policy.Request{Method: "GET", Host: "api.example.com", Path: "/v1", Origin: "https://eu.shop.example.com"},
			nginx: &answer{allowed: true, allowOrigin: "https://eu.shop.example.com", credentials: true},
		},
		{
			name:  "a wildcard origin does not admit two labels",
			req:   policy.Request{Method: "GET", Host: "api.example.com", Path: "/v1", Origin: "https://a.eu.shop.example.com"},
			nginx: &answer{},
		},
		{
			name:     "an upper-case origin, which browsers never send, is refused",
			req:      policy.Request{Method: "GET", Host: "api.example.com", Path: "/v1", Origin: "https://APP.example.com"},
			nginx:    &answer{allowed: true, allowOrigin: "https://APP.example.com", credentials: true},
			corsproc: &answer{},
			why:      "corsproc compares request origins byte for byte with normalised entries; browsers send origins in lower case (docs/contract.md §2)",
		},
		{
			name:  "a Prefix path matches whole segments only",
			req:   policy.Request{Method: "GET", Host: "api.example.com", Path: "/v1x", Origin: "https://app.example.com"},
			nginx: &answer{},
		},
		{
			name:  "an Exact path matches itself",
			req:   policy.Request{Method: "GET", Host: "api.example.com", Path: "/healthz", Origin: "https://app.example.com"},
			nginx: &answer{allowed: true, allowOrigin: "https://app.example.com", credentials: true},
		},
		{
			name:     "a preflight for a header in ingress-nginx's default list is allowed",
			req:      policy.Request{Method: "OPTIONS", Host: "api.example.com", Path: "/v1", Origin: "https://app.example.com", RequestMethod: "PATCH", HasRequestMethod: true, RequestHeaders: []string{"content-type, range"}},
			nginx:    &answer{allowed: true, allowOrigin: "https://app.example.com", credentials: true, allowMethods: "GET, PUT, POST, DELETE, PATCH, OPTIONS", allowHeaders: nginxDefaultHeaders, maxAge: "1728000"},
			corsproc: &answer{allowed: true, allowOrigin: "https://app.example.com", credentials: true, allowMethods: "GET, PUT, POST, DELETE, PATCH, OPTIONS", allowHeaders: "user-agent, x-requested-with, if-modified-since, cache-control, content-type, range, authorization", maxAge: "1728000"},
			why:      "the list leaves out DNT and Keep-Alive, forbidden request headers no page can send, and is lower-cased",
		},
		{
			name:     "a preflight for a header not listed is refused",
			req:      policy.Request{Method: "OPTIONS", Host: "api.example.com", Path: "/v1", Origin: "https://app.example.com", RequestMethod: "GET", HasRequestMethod: true, RequestHeaders: []string{"x-custom"}},
			nginx:    &answer{allowed: false, allowOrigin: "https://app.example.com", credentials: true, allowMethods: "GET, PUT, POST, DELETE, PATCH, OPTIONS", allowHeaders: nginxDefaultHeaders, maxAge: "1728000"},
			corsproc: &answer{},
			why:      "ingress-nginx answers 204 with its lists and the browser refuses; corsproc refuses itself, so the page sees the same failure",
		},
		{
			name:     "the default origin \"*\" answers \"*\", without credentials",
			req:      policy.Request{Method: "GET", Host: "img.example.com", Path: "/a.png", Origin: "https://anyone.example"},
			nginx:    &answer{allowed: true, allowOrigin: "*", credentials: true},
			corsproc: &answer{allowed: true, allowOrigin: "*"},
			why:      "ingress-nginx sends \"*\" with allow-credentials: true, which browsers refuse for credentialed requests; corsproc leaves credentials out",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.req
			r.Origins = 1
			got := corsprocAnswer(set.Explain(&r), r.HasRequestMethod)
			want := *tt.nginx
			if tt.corsproc != nil {
				if tt.why == "" {
					t.Fatal("a deliberate difference needs its reason")
				}
				want = *tt.corsproc
			}
			if got != want {
				t.Errorf("corsproc answers\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}

// FuzzKube feeds arbitrary YAML to every Kubernetes format: a policy that
// loads or an input error, never a panic or a hang.
func FuzzKube(f *testing.F) {
	f.Add(ingressYAML)
	f.Add("apiVersion: v1\nkind: List\nitems:\n- kind: Ingress\n  metadata: {name: a, annotations: {nginx.ingress.kubernetes.io/enable-cors: \"true\"}}\n")
	f.Add("kind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example.com]\n  http:\n  - corsPolicy: {allowOrigins: [{prefix: \"https://a\"}], maxAge: 1h, allowCredentials: true}\n")
	f.Add("kind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n  - filters:\n    - type: CORS\n      cors: {allowOrigins: [\"*\"], allowCredentials: true}\n")
	f.Add("kind: SecurityPolicy\nmetadata: {name: s}\nspec:\n  targetRef: {kind: HTTPRoute, name: r}\n  cors: {allowOrigins: [{type: Prefix, value: x}], maxAge: 10s}\n")
	f.Fuzz(func(t *testing.T, src string) {
		for _, format := range Formats[1:] {
			res, err := Convert(format, []Input{{Name: "in.yaml", Data: []byte(src)}}, Options{})
			if err != nil {
				continue // an input error, or a bug reported with the policy it made
			}
			if _, err := policy.Parse("out", res.YAML); err != nil {
				t.Fatalf("%s: the policy does not load: %v", format, err)
			}
		}
	})
}
