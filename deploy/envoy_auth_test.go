package deploy

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/corsproc/corsproc/internal/envoytest"
)

const jwtAuthnFilterName = "envoy.filters.http.jwt_authn"

// jwtAuthn returns the connection manager's jwt_authn filter, its index,
// and its config.
func jwtAuthn(t *testing.T, hcm *hcmv3.HttpConnectionManager) (int, *jwtv3.JwtAuthentication) {
	t.Helper()
	for i, f := range hcm.GetHttpFilters() {
		if f.GetTypedConfig().MessageIs(&jwtv3.JwtAuthentication{}) {
			return i, unpack(t, f.GetTypedConfig(), &jwtv3.JwtAuthentication{})
		}
	}
	t.Fatalf("no %s filter", jwtAuthnFilterName)
	return 0, nil
}

// verifyJWT checks an RS256 token against a JWKS and an issuer, as
// jwt_authn does for a provider with local_jwks (signature, kid, iss; the
// demo token has no exp, which jwt_authn accepts unless require_expiration).
func verifyJWT(jwks, issuer, token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	dec := base64.RawURLEncoding
	var header struct{ Alg, Kid string }
	var claims struct{ Iss string }
	hb, err1 := dec.DecodeString(parts[0])
	cb, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return false
	}
	if header.Alg != "RS256" || claims.Iss != issuer {
		return false
	}
	var set struct {
		Keys []struct{ Kty, Kid, N, E string }
	}
	if json.Unmarshal([]byte(jwks), &set) != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	for _, k := range set.Keys {
		n, errN := dec.DecodeString(k.N)
		e, errE := dec.DecodeString(k.E)
		if k.Kty != "RSA" || k.Kid != header.Kid || errN != nil || errE != nil {
			continue
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil {
			return true
		}
	}
	return false
}

// jwtStandIn plays the configured jwt_authn filter in the Envoy stand-in:
// on the paths its rules cover, a request passes only with a token that
// verifies against the provider's local JWKS; otherwise jwt_authn's 401.
func jwtStandIn(t *testing.T, ja *jwtv3.JwtAuthentication) envoytest.Filter {
	t.Helper()
	type rule struct{ prefix, jwks, issuer string }
	var rules []rule
	for _, r := range ja.GetRules() {
		p := ja.GetProviders()[r.GetRequires().GetProviderName()]
		if r.GetMatch().GetPrefix() == "" || p == nil || p.GetLocalJwks().GetInlineString() == "" {
			t.Fatalf("the stand-in knows jwt_authn rules on a prefix requiring one provider with inline local_jwks; got %v", r)
		}
		rules = append(rules, rule{r.GetMatch().GetPrefix(), p.GetLocalJwks().GetInlineString(), p.GetIssuer()})
	}
	refuse := envoytest.JWTAuthn() // no token is valid to it: its 401s
	return envoytest.Filter{Name: jwtAuthnFilterName, Reject: func(h envoytest.RequestHeaders) *envoytest.LocalReply {
		path, _ := h.Get(":path")
		for _, r := range rules {
			if !strings.HasPrefix(path, r.prefix) {
				continue
			}
			auth, _ := h.Get("authorization")
			if token, ok := strings.CutPrefix(auth, "Bearer "); ok && verifyJWT(r.jwks, r.issuer, token) {
				return nil
			}
			return refuse.Reject(h)
		}
		return nil
	}}
}

// standInFilters configures the Envoy stand-in's filter chain from a
// connection manager: corsproc's filter (plain or composite) and the filters
// around it. It knows jwt_authn; any other filter but the router fails the
// test, so that nothing in the chain goes unmodelled.
func standInFilters(t *testing.T, hcm *hcmv3.HttpConnectionManager) envoytest.Config {
	t.Helper()
	i, _ := corsprocFilter(t, hcm)
	filters := hcm.GetHttpFilters()
	cfg, err := envoytest.FromHTTPFilter(filters[i])
	if err != nil {
		t.Fatal(err)
	}
	for j, f := range filters {
		if j == i || f.GetName() == routerFilterName {
			continue
		}
		if !f.GetTypedConfig().MessageIs(&jwtv3.JwtAuthentication{}) {
			t.Fatalf("filter %s (%s) is not modelled by the stand-in", f.GetName(), f.GetTypedConfig().GetTypeUrl())
		}
		jf := jwtStandIn(t, unpack(t, f.GetTypedConfig(), &jwtv3.JwtAuthentication{}))
		if j < i {
			cfg.Before = append(cfg.Before, jf)
		} else {
			cfg.After = append(cfg.After, jf)
		}
	}
	return cfg
}

// checkDemoAuthentication asserts the demo's claim: a real authentication
// stage after corsproc, applied to a route that exists, with page buttons
// that exercise it with and without a valid token.
func checkDemoAuthentication(t *testing.T, hcm *hcmv3.HttpConnectionManager) {
	t.Helper()
	ci, _ := corsprocFilter(t, hcm)
	ji, ja := jwtAuthn(t, hcm)
	if ji < ci {
		t.Errorf("jwt_authn (filter %d) runs before corsproc (filter %d)", ji, ci)
	}
	if len(ja.GetRules()) == 0 {
		t.Fatalf("jwt_authn has no rules: it authenticates nothing")
	}
	var prefixes []string
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			prefixes = append(prefixes, r.GetMatch().GetPrefix())
		}
	}
	for _, r := range ja.GetRules() {
		if !slices.Contains(prefixes, r.GetMatch().GetPrefix()) {
			t.Errorf("jwt_authn rule on %q matches no route prefix %v", r.GetMatch().GetPrefix(), prefixes)
		}
		p := ja.GetProviders()[r.GetRequires().GetProviderName()]
		if p == nil {
			t.Fatalf("jwt_authn rule requires provider %q, which is not defined", r.GetRequires().GetProviderName())
		}
		var withToken, withoutToken bool
		for _, b := range demoButtons(t) {
			if !strings.HasPrefix(b.Path, r.GetMatch().GetPrefix()) {
				continue
			}
			auth := b.Headers["authorization"]
			token, _ := strings.CutPrefix(auth, "Bearer ")
			switch {
			case auth == "" && b.Status == "401" && b.Expect == "allowed":
				withoutToken = true
			case auth != "" && verifyJWT(p.GetLocalJwks().GetInlineString(), p.GetIssuer(), token) && b.Status == "200":
				withToken = true
			case auth != "":
				t.Errorf("button %q sends a token that provider %q refuses", b.Label, r.GetRequires().GetProviderName())
			}
		}
		if !withToken || !withoutToken {
			t.Errorf("the page lacks a button on %s without a token (a readable 401) or with a valid one", r.GetMatch().GetPrefix())
		}
	}
}

// checkVaryOrigin asserts that Envoy adds vary: origin to every response of
// every virtual host, appended to the service's own vary.
func checkVaryOrigin(t *testing.T, hcm *hcmv3.HttpConnectionManager) {
	t.Helper()
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		found := false
		for _, o := range append(slices.Clone(vh.GetResponseHeadersToAdd()), hcm.GetRouteConfig().GetResponseHeadersToAdd()...) {
			found = found || (strings.EqualFold(o.GetHeader().GetKey(), "vary") && o.GetHeader().GetValue() == "origin" &&
				o.GetAppendAction() == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
		}
		if !found {
			t.Errorf("virtual host %q does not add vary: origin (APPEND_IF_EXISTS_OR_ADD): responses to requests without origin, which corsproc never sees, would lack it", vh.GetName())
		}
	}
}

func TestDemoEnvoyFilesDifferOnlyInCorsprocsFilter(t *testing.T) {
	var boots []proto.Message
	for _, file := range demoEnvoyFiles {
		b := loadBootstrap(t, file, readRepoFile(t, file))
		l := listenerByName(t, b, "ingress")
		hcm := connectionManagers(t, l)[0]
		i, _ := corsprocFilter(t, hcm)
		hcm.HttpFilters[i] = &hcmv3.HttpFilter{Name: "corsproc"}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() == hcmFilterName {
					if err := f.GetTypedConfig().MarshalFrom(hcm); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		boots = append(boots, b)
	}
	if !proto.Equal(boots[0], boots[1]) {
		t.Errorf("%s and %s differ outside corsproc's filter: keep them in step", demoEnvoyFiles[0], demoEnvoyFiles[1])
	}
}

// envoyImageVersion reads the version out of an Envoy image reference such
// as docker.io/envoyproxy/envoy:distroless-v1.39.1@sha256:...
func envoyImageVersion(t *testing.T, image string) [3]int {
	t.Helper()
	ref, _, _ := strings.Cut(image, "@")
	_, tag, ok := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
	var v [3]int
	if !ok {
		t.Fatalf("image %q has no tag", image)
	}
	if i := strings.LastIndex(tag, "v"); i >= 0 {
		tag = tag[i+1:]
	}
	parts := strings.Split(tag, ".")
	if len(parts) != 3 {
		t.Fatalf("image %q: tag %q is not vMAJOR.MINOR.PATCH", image, tag)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("image %q: tag %q is not vMAJOR.MINOR.PATCH", image, tag)
		}
		v[i] = n
	}
	return v
}

// TestShippedEnvoyDeliversLocalRepliesToCorsproc pins the Envoy images of
// the demo and the plain-Envoy overlay to versions where envoy.yaml works
// as documented: the composite filter runs ext_proc (>= 1.36.0) and local
// replies of later filters reach ext_proc's response phase (>= 1.37.0;
// 1.34.0-1.36.x skip them, envoy-filter-chain.md §A).
func TestShippedEnvoyDeliversLocalRepliesToCorsproc(t *testing.T) {
	project, err := loadCompose(t, repoPath(composeFile))
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{"docker-compose.yaml envoy": project.Services["envoy"].Image}
	r := render(t, "k8s/overlays/plain-envoy")
	d := mustFind[*appsv1.Deployment](t, r, corsprocNS, "envoy")
	images["k8s plain-envoy Deployment"] = d.Spec.Template.Spec.Containers[0].Image
	for where, image := range images {
		v := envoyImageVersion(t, image)
		if v[0] < 1 || (v[0] == 1 && v[1] < 37) {
			t.Errorf("%s runs Envoy %d.%d.%d: before 1.37.0 a 401/403/429 from a filter after corsproc skips corsproc and goes out without CORS headers", where, v[0], v[1], v[2])
		}
	}
}
