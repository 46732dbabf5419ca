package envoytest

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// AccessLogEntry is what Envoy knows of one request when it writes the
// access log: enough to render the command operators [AccessLogEntry.Format]
// supports.
type AccessLogEntry struct {
	// Start is when the request arrived.
	Start time.Time
	// Method, Path and Authority are :method, :path and :authority as the
	// client sent them.
	Method, Path, Authority string
	// Request is the client's request headers.
	Request http.Header
	// ResponseCode is the status sent to the client; 0 if none was.
	ResponseCode int
	// ResponseCodeDetails is "via_upstream" for an upstream's response,
	// else the details of the local reply.
	ResponseCodeDetails string
	// DynamicMetadata is the request's filter metadata by namespace: what
	// the processor set in the namespaces Config.ReceivingNamespaces lists.
	DynamicMetadata map[string]*structpb.Struct
}

// AccessLog returns an entry per request finished so far, in the order they
// finished.
func (e *Envoy) AccessLog() []AccessLogEntry {
	e.detailsMu.Lock()
	defer e.detailsMu.Unlock()
	return slices.Clone(e.accessLog)
}

func (e *Envoy) logRequest(x *exchange, start time.Time) {
	entry := AccessLogEntry{
		Start: start, Method: x.r.Method, Path: x.r.RequestURI, Authority: x.r.Host,
		Request: x.r.Header.Clone(), ResponseCode: x.code, ResponseCodeDetails: x.details,
		DynamicMetadata: x.metadata,
	}
	if entry.ResponseCodeDetails == "" && entry.ResponseCode != 0 {
		entry.ResponseCodeDetails = "via_upstream"
	}
	e.detailsMu.Lock()
	e.accessLog = append(e.accessLog, entry)
	e.detailsMu.Unlock()
}

// setDynamicMetadata stores a reply's dynamic_metadata as Envoy's ext_proc
// filter does (setDynamicMetadata, envoy-filter-chain.md §F): each
// top-level key is a namespace, stored only if ReceivingNamespaces lists
// it, else dropped; its value is read as a struct (anything else is an
// empty one). StreamInfo::setDynamicMetadata merges into what the
// namespace holds, so a later reply replaces the keys it sets and keeps the
// others.
func (x *exchange) setDynamicMetadata(md *structpb.Struct) {
	for ns, v := range md.GetFields() {
		if !slices.Contains(x.e.cfg.ReceivingNamespaces, ns) {
			continue
		}
		if x.metadata == nil {
			x.metadata = map[string]*structpb.Struct{}
		}
		cur := x.metadata[ns]
		if cur == nil {
			cur = &structpb.Struct{Fields: map[string]*structpb.Value{}}
			x.metadata[ns] = cur
		}
		for k, fv := range v.GetStructValue().GetFields() {
			cur.Fields[k] = proto.Clone(fv).(*structpb.Value)
		}
	}
}

// operator matches one command operator: NAME, then (ARGS), then :Z.
var operator = regexp.MustCompile(`%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%`)

// Format renders an access log text format for e, as Envoy's substitution
// formatter does for the operators it supports: START_TIME (no format
// argument), PROTOCOL, RESPONSE_CODE, RESPONSE_CODE_DETAILS, REQ(name)
// (and REQ(a?b)), DYNAMIC_METADATA(ns:key[:key...]) and
// DYNAMIC_METADATA(ns), each with an optional :max_length. A missing value
// prints "-"; a string prints as is, anything else as JSON. Any other
// operator is an error, so that a test never passes on a format the
// stand-in does not understand.
func (e AccessLogEntry) Format(format string) (string, error) {
	var errs []string
	out := operator.ReplaceAllStringFunc(format, func(op string) string {
		m := operator.FindStringSubmatch(op)
		v, err := e.operator(m[1], m[2])
		if err != nil {
			errs = append(errs, err.Error())
			return op
		}
		if m[3] != "" {
			if n, err := strconv.Atoi(m[3]); err == nil && len(v) > n {
				v = v[:n]
			}
		}
		return v
	})
	if len(errs) > 0 {
		return out, fmt.Errorf("envoytest: access log format: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

func (e AccessLogEntry) operator(name, arg string) (string, error) {
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	switch name {
	case "START_TIME":
		if arg != "" {
			return "", fmt.Errorf("START_TIME(%s): format arguments are not supported", arg)
		}
		return e.Start.UTC().Format("2006-01-02T15:04:05.000Z"), nil
	case "PROTOCOL":
		return "HTTP/1.1", nil
	case "RESPONSE_CODE":
		return strconv.Itoa(e.ResponseCode), nil
	case "RESPONSE_CODE_DETAILS":
		return orDash(e.ResponseCodeDetails), nil
	case "REQ":
		for _, h := range strings.Split(arg, "?") {
			switch strings.ToLower(h) {
			case ":method":
				return e.Method, nil
			case ":path":
				return e.Path, nil
			case ":authority", "host":
				return e.Authority, nil
			}
			if vs := e.Request.Values(h); len(vs) > 0 {
				return vs[0], nil
			}
		}
		return "-", nil
	case "DYNAMIC_METADATA":
		path := strings.Split(arg, ":")
		st := e.DynamicMetadata[path[0]]
		if st == nil {
			return "-", nil
		}
		v := structpb.NewStructValue(st)
		for _, k := range path[1:] {
			v = v.GetStructValue().GetFields()[k]
			if v == nil {
				return "-", nil
			}
		}
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			return s.StringValue, nil
		}
		j, err := protojson.Marshal(v)
		if err != nil {
			return "", err
		}
		return string(j), nil
	}
	return "", fmt.Errorf("%%%s%% is not supported by the stand-in", name)
}
