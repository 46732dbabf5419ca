// Package policy loads, validates and compiles corsproc policy files, and
// decides what a request and its response get.
//
// A policy file is parsed once into an immutable [Set]; a Set is safe for
// concurrent use, and a new one is swapped in whole when the file changes.
// Every problem found while loading is collected and returned together as an
// [*Error], each naming the file, the policy and the key.
//
// The package does no I/O beyond reading the file it is given and knows
// nothing of gRPC: the ext_proc server and the CLI both drive it through
// [Set.Decide] and [Decision.Respond].
package policy

// File is a policy file as written. Unset keys are nil so that a policy can
// inherit them from Defaults.
type File struct {
	// Defaults are inherited by every policy for each key it does not set.
	Defaults Settings `json:"defaults,omitzero"`
	// Policies are tried in order; the first whose Match holds is used.
	Policies []Policy `json:"policies"`
}

// Policy is one entry of the policies list.
type Policy struct {
	// Name identifies the policy in errors, logs and metrics; required and
	// unique.
	Name string `json:"name"`
	// Match selects the requests this policy applies to; nil matches all.
	Match *Match `json:"match,omitempty"`
	Settings
}

// Match holds the conditions of a policy; every condition given must hold.
type Match struct {
	// Hosts are :authority values without port, compared case-insensitively;
	// "*.example.com" matches one or more labels before example.com.
	Hosts []string `json:"hosts,omitempty"`
	// PathPrefixes match the start of the path (query excluded).
	PathPrefixes []string `json:"path_prefixes,omitempty"`
	// PathRegex is an RE2 expression that must match the whole path (query
	// excluded).
	PathRegex string `json:"path_regex,omitempty"`
	// Routes are Envoy route names (the xds.route_name attribute).
	Routes []string `json:"routes,omitempty"`
}

// Settings are the CORS keys of a policy (and of defaults).
type Settings struct {
	// Mode is "enforce" (default), "report" or "off".
	Mode *string `json:"mode,omitempty"`
	// AllowedOrigins are exact origins, "https://*.example.com" wildcard
	// subdomains, "http://localhost:*" port wildcards, or the literal "null".
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// AllowedOriginRegexes are RE2 expressions matched against the whole
	// origin.
	AllowedOriginRegexes []string `json:"allowed_origin_regexes,omitempty"`
	// AllowAllOrigins admits every origin, "null" included; never with
	// credentials.
	AllowAllOrigins *bool `json:"allow_all_origins,omitempty"`
	// AllowMethods are the methods a preflight may ask for, or ["*"].
	AllowMethods []string `json:"allow_methods,omitempty"`
	// AllowHeaders are the request headers a preflight may ask for, or ["*"],
	// or ["*", "authorization"].
	AllowHeaders []string `json:"allow_headers,omitempty"`
	// ExposeHeaders are response headers the page may read beyond the
	// CORS-safelisted ones.
	ExposeHeaders []string `json:"expose_headers,omitempty"`
	// PreflightMaxAge is how long, in seconds, a browser may cache a
	// preflight; 0 omits the header (the browser's default applies), -1
	// sends 0 (no caching, while a policy is being changed).
	PreflightMaxAge *int `json:"preflight_max_age,omitempty"`
	// AllowCredentials lets the page send cookies and read the answer.
	AllowCredentials *bool `json:"allow_credentials,omitempty"`
	// AllowPrivateNetwork answers Private Network Access preflights.
	AllowPrivateNetwork *bool `json:"allow_private_network,omitempty"`
	// PreflightStatus is the status of an allowed preflight: 200 or 204.
	PreflightStatus *int `json:"preflight_status,omitempty"`
	// UpstreamCORSHeaders is "replace" (default) or "keep".
	UpstreamCORSHeaders *string `json:"upstream_cors_headers,omitempty"`
}
