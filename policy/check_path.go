package policy

import (
	"regexp"
	"strconv"
	"strings"
)

// checkPathRegexPrefix warns about a path_regex written as a search, not as
// the whole-path match it is: "^/v1/upload" starts with an anchor, as a
// prefix search would, yet matches only "/v1/upload" itself and never
// "/v1/upload/123". A regex that ends the match deliberately ($, \z) or lets
// it run on (.*, .+) is left alone.
func checkPathRegexPrefix(l loc, re string) {
	if !strings.HasPrefix(re, "^") {
		return
	}
	tail := strings.TrimRight(re, ")")
	for _, end := range []string{".*", ".+", ".*?", ".+?", "$", `\z`} {
		if strings.HasSuffix(tail, end) && !strings.HasSuffix(tail, `\`+end) {
			return
		}
	}
	what := "longer paths"
	if ex := examplePathUnder(re); !regexp.MustCompile(anchor(re)).MatchString(ex) { // compiled by the caller already
		what = strconv.Quote(ex)
	}
	l.valueWarning(re, "looks like a prefix match, but path_regex must match the whole path, so it never matches "+what+
		"; end it with .* for a prefix (or use path_prefixes), or with $ if the whole path is meant")
}

// examplePathUnder makes a path below the regex's literal start, for the
// warning: "^/v1/upload" gives "/v1/upload/123".
func examplePathUnder(re string) string {
	lit := strings.TrimPrefix(re, "^")
	if i := strings.IndexAny(lit, `\.[]()*+?{}|$`); i >= 0 {
		lit = lit[:i]
	}
	return strings.TrimSuffix(lit, "/") + "/123"
}
