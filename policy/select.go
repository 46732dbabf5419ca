package policy

// Policy selection: which policy of a Set a request falls under.

import "strings"

// selectPolicy returns the first policy whose match holds, or nil. The
// host and the path are prepared only once a policy needs them: a
// catch-all policy costs nothing.
func (s *Set) selectPolicy(authority, path, route string) *compiled {
	var host string
	prepared := false
	for _, c := range s.policies {
		if c.never {
			continue
		}
		if c.hosts == nil && c.hostSuffixes == nil && c.pathPrefixes == nil && c.pathRegex == nil && c.routes == nil {
			return c
		}
		if !prepared {
			host, path, prepared = hostOf(authority), pathOnly(path), true
		}
		if c.matches(host, path, route) {
			return c
		}
	}
	return nil
}

// pathOnly strips the query (and a fragment) from :path.
func pathOnly(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' || p[i] == '#' {
			return p[:i]
		}
	}
	return p
}

// hostOf strips the port and a trailing dot from :authority and lower-cases
// it (allocating only when it has upper-case letters).
func hostOf(a string) string {
	if strings.HasPrefix(a, "[") {
		if i := strings.IndexByte(a, ']'); i >= 0 {
			a = a[:i+1]
		}
	} else if i := strings.LastIndexByte(a, ':'); i >= 0 {
		a = a[:i]
	}
	a = strings.TrimSuffix(a, ".")
	if hasUpper(a) {
		a = strings.ToLower(a)
	}
	return a
}

func (c *compiled) matches(host, path, route string) bool {
	if c.hosts != nil || c.hostSuffixes != nil {
		if !c.matchHost(host) {
			return false
		}
	}
	if c.pathPrefixes != nil {
		ok := false
		for _, p := range c.pathPrefixes {
			if strings.HasPrefix(path, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if c.pathRegex != nil && !c.pathRegex.MatchString(path) {
		return false
	}
	if c.routes != nil {
		for _, r := range c.routes {
			if r == route {
				return true
			}
		}
		return false
	}
	return true
}

func (c *compiled) matchHost(host string) bool {
	if _, ok := c.hosts[host]; ok {
		return true
	}
	if c.hostSuffixes == nil {
		return false
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if i == 0 || host[i-1] == '.' {
				return false // an empty label is no subdomain
			}
			if _, ok := c.hostSuffixes[host[i+1:]]; ok {
				return true
			}
		}
	}
	return false
}
