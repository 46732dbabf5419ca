package importer

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/corsproc/corsproc/internal/observe"
	"github.com/corsproc/corsproc/policy"
)

func entries(kv ...any) []observe.Entry {
	var out []observe.Entry
	for i := 0; i < len(kv); i += 2 {
		out = append(out, observe.Entry{Value: kv[i].(string), Count: uint64(kv[i+1].(int))})
	}
	return out
}

func TestSuggestOrigins(t *testing.T) {
	t.Parallel()
	many := func(scheme, domain string, n int) []observe.Entry {
		var out []observe.Entry
		for i := range n {
			out = append(out, observe.Entry{Value: fmt.Sprintf("%s://s%d.%s", scheme, i, domain), Count: 2})
		}
		return out
	}
	for _, tt := range []struct {
		name string
		seen []observe.Entry
		want []string
	}{
		{"origins seen are listed exactly, most requests first", entries("https://b.example.com", 1, "https://app.example.com", 9), []string{"https://app.example.com", "https://b.example.com"}},
		{"a few subdomains stay exact", many("https", "example.com", WildcardMin-1), []string{"https://s0.example.com", "https://s1.example.com", "https://s2.example.com", "https://s3.example.com"}},
		{"many subdomains of one registrable domain become a wildcard", many("https", "example.com", WildcardMin), []string{"https://*.example.com"}},
		{"subdomains of a public suffix never become a wildcard", many("https", "github.io", WildcardMin+2)[:1], []string{"https://s0.github.io"}},
		{"sites under a public suffix are separate domains, never one wildcard", many("https", "github.io", WildcardMin), []string{"https://s0.github.io", "https://s1.github.io", "https://s2.github.io", "https://s3.github.io", "https://s4.github.io"}},
		{"the apex stays exact beside a wildcard", append(many("https", "example.com", WildcardMin), entries("https://example.com", 1)...), []string{"https://*.example.com", "https://example.com"}},
		{"schemes are not merged", append(many("https", "example.com", WildcardMin), entries("http://s9.example.com", 1)...), []string{"https://*.example.com", "http://s9.example.com"}},
		{"null and junk are left out", entries("null", 3, "https://app.example.com/path", 1, "https://ok.example", 1), []string{"https://ok.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _ := suggestOrigins(tt.seen)
			var values []string
			for _, e := range got {
				values = append(values, e.Value)
			}
			if !slices.Equal(values, tt.want) {
				t.Errorf("%v, want %v", values, tt.want)
			}
		})
	}
}

func TestSuggestWritesAMinimalPolicyThatLoads(t *testing.T) {
	t.Parallel()
	cfg, err := policy.Parse("running.yaml", []byte(`
policies:
  - name: shop
    match: {hosts: [api.example.com]}
    mode: report
    allow_all_origins: true
    preflight_max_age: 600
`))
	if err != nil {
		t.Fatal(err)
	}
	obs := observe.Observed{K: 50, Policies: []observe.Summary{{
		Name: "shop", Allowed: 12, Denied: 1,
		Origins:            entries("https://app.example.com", 10, "https://admin.example.com", 3),
		Methods:            entries("PUT", 4, "TRACE", 1),
		Headers:            entries("content-type", 4, "cookie", 1),
		ServiceCredentials: entries("https://app.example.com", 7),
	}, {
		Name: "unknown", Allowed: 1, Origins: entries("http://localhost:3000", 1),
	}}}
	res, err := Suggest(obs, "http://127.0.0.1:9002/observed", cfg)
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.Parse("suggested.yaml", res.YAML)
	if err != nil {
		t.Fatalf("the suggestion does not load: %v\n%s", err, res.YAML)
	}
	shop := set.Policies()[0]
	if !slices.Equal(shop.AllowedOrigins, []string{"https://app.example.com", "https://admin.example.com"}) ||
		*shop.AllowAllOrigins || !*shop.AllowCredentials || *shop.PreflightMaxAge != 600 ||
		!slices.Equal(shop.AllowMethods, []string{"PUT"}) || !slices.Equal(shop.AllowHeaders, []string{"content-type"}) ||
		shop.Match == nil || !slices.Equal(shop.Match.Hosts, []string{"api.example.com"}) || shop.Mode == nil || *shop.Mode != "enforce" {
		t.Errorf("shop: %+v\n%s", shop, res.YAML)
	}
	for _, want := range []string{`- "https://app.example.com"  # 10 requests`, `- "PUT"  # 4 requests`, "Not in the running policy file"} {
		if !strings.Contains(string(res.YAML), want) {
			t.Errorf("the suggestion lacks %q:\n%s", want, res.YAML)
		}
	}
	if unknown := set.Policies()[1]; *unknown.AllowCredentials {
		t.Error("credentials suggested where the service never answered with them")
	}
}
