package policy

// Policy selection: which policy of a Set a request falls under.

import "strings"

// selectPolicy returns the first policy whose match holds, or nil. The
// host and the path are prepared only once a policy needs them: a
// catch-all policy costs nothing. A Set of many policies (a file with
// hundreds of teams' objects) finds its candidates by host instead of
// trying each policy.
func (s *Set) selectPolicy(authority, path, route string) *compiled {
	if s.byHost != nil {
		if c, ok := s.byHost.selectPolicy(s.policies, authority, path, route); ok {
			return c
		}
	}
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

// indexFrom is the number of policies from which a Set indexes them by
// host: below it, trying each policy in turn costs less than merging
// candidate lists.
const indexFrom = 32

// maxHostLists bounds the candidate lists one request merges: its exact
// host, a suffix per label, and the policies without hosts. A host of
// more labels is selected by trying each policy instead.
const maxHostLists = 8

// hostIndex lists, for each host and wildcard suffix of any policy's
// match.hosts, the policies that name it, in order: the only policies
// with a hosts condition that can match a request for that host.
type hostIndex struct {
	exact   map[string][]int32
	suffix  map[string][]int32
	anyHost []int32 // policies without a hosts condition
}

// indexHosts builds the index of a Set's policies, or nil for a Set too
// small to need one.
func indexHosts(policies []*compiled) *hostIndex {
	if len(policies) < indexFrom {
		return nil
	}
	ix := &hostIndex{exact: map[string][]int32{}, suffix: map[string][]int32{}}
	for i, c := range policies {
		switch {
		case c.never:
		case c.hosts == nil && c.hostSuffixes == nil:
			ix.anyHost = append(ix.anyHost, int32(i))
		default:
			for h := range c.hosts {
				ix.exact[h] = append(ix.exact[h], int32(i))
			}
			for h := range c.hostSuffixes {
				ix.suffix[h] = append(ix.suffix[h], int32(i))
			}
		}
	}
	return ix
}

// selectPolicy is Set.selectPolicy by the index: the candidates of the
// request's host, merged in policy order, each tried in full. ok is false
// when the host has too many labels to merge on the stack.
func (ix *hostIndex) selectPolicy(policies []*compiled, authority, path, route string) (c *compiled, ok bool) {
	host, path := hostOf(authority), pathOnly(path)
	var lists [maxHostLists][]int32
	n := 0
	if l := ix.exact[host]; l != nil {
		lists[n] = l
		n++
	}
	if l := ix.anyHost; l != nil {
		lists[n] = l
		n++
	}
	// The suffixes as matchHost tries them: after each dot, none past an
	// empty label.
	for i := 0; i < len(host); i++ {
		if host[i] != '.' {
			continue
		}
		if i == 0 || host[i-1] == '.' {
			break
		}
		if l := ix.suffix[host[i+1:]]; l != nil {
			if n == len(lists) {
				return nil, false
			}
			lists[n] = l
			n++
		}
	}
	for {
		next := int32(-1)
		for _, l := range lists[:n] {
			if len(l) > 0 && (next < 0 || l[0] < next) {
				next = l[0]
			}
		}
		if next < 0 {
			return nil, true
		}
		for j := range lists[:n] {
			if len(lists[j]) > 0 && lists[j][0] == next {
				lists[j] = lists[j][1:]
			}
		}
		if c := policies[next]; c.matches(host, path, route) {
			return c, true
		}
	}
}
