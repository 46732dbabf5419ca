// Package envoytest is a stand-in for Envoy's HTTP ext_proc filter, for tests
// on machines without an Envoy binary.
//
// An [Envoy] is an HTTP/1.1 server on loopback. For every request it matches a
// [Route], drives one ext_proc Process stream against the configured
// processor exactly as Envoy's envoy.filters.http.ext_proc filter does
// (lockstep phases, message timeout, failure_mode_allow, mode_override,
// header mutation rules, immediate responses), forwards the possibly mutated
// request to the route's upstream and returns the possibly mutated response.
// Around the filter it models the chain: filters before and after it that
// answer locally (jwt_authn, rbac, local_ratelimit), local replies through
// the response phase or not as per Envoy version, forward_rules and
// mutation_rules, a composite filter that creates ext_proc only when a
// request header matches, and route response_headers_to_add.
// The behaviours it follows are listed in shared/notes/envoy-extproc.md and
// shared/notes/envoy-filter-chain.md; where it knowingly differs from Envoy,
// the doc comment of [Config] says so. [FromHTTPFilter] configures it from a
// shipped filter entry.
//
// Typical use:
//
//	e, err := envoytest.Start(envoytest.Config{
//		Processor: lis.Addr().String(),
//		Routes:    []envoytest.Route{{Name: "api", Upstream: upstream.URL}},
//	})
//	if err != nil { t.Fatal(err) }
//	t.Cleanup(func() { e.Close() })
//	res, err := http.Get(e.URL() + "/v1/items")
package envoytest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// DefaultMessageTimeout is Envoy's default message_timeout.
const DefaultMessageTimeout = 200 * time.Millisecond

// drainTimeout bounds how long a finished stream waits, after CloseSend, for
// the processor to end it before the stand-in cancels it.
const drainTimeout = time.Second

// Route is one entry of the stand-in's route table.
type Route struct {
	// Name is the route name, sent as the xds.route_name attribute.
	Name string
	// Host matches the request's :authority without its port,
	// case-insensitively; "" matches any host.
	Host string
	// PathPrefix matches the start of the request path (query excluded);
	// "" matches every path.
	PathPrefix string
	// Upstream is the base URL of the upstream, e.g. an httptest server's
	// URL. Only its scheme (http) and host are used; the request's :path is
	// sent as is.
	Upstream string
	// ResponseHeadersToAdd is the route's (and its virtual host's)
	// response_headers_to_add. Envoy applies it to the upstream's response
	// and to every sendLocalReply (a later filter's 401, the router's 503,
	// an ImmediateResponse) before the encoder chain runs, so ext_proc sees
	// it and can overwrite it (envoy-filter-chain.md §E.3). append_action
	// APPEND_IF_EXISTS_OR_ADD (the default) adds a line, ADD_IF_ABSENT adds
	// one only when the header is missing, OVERWRITE_IF_EXISTS_OR_ADD
	// replaces.
	ResponseHeadersToAdd []*corev3.HeaderValueOption
}

// Config configures an [Envoy]. Its fields mirror the ExternalProcessor
// filter's fields of the same names.
//
// Where Envoy versions differ, the stand-in is Envoy >= 1.37: a reply for
// the wrong phase, or an empty reply, gives a local 500 unless
// FailureModeAllow, the stream is closed as soon as no phase is left, and
// local replies (a later filter's 401/403/429, the router's 503) go through
// the response phase unless SkipLocalReplies asks for 1.34-1.36's
// behaviour. The filter chain it models is Before, ext_proc (optionally in
// a composite, OnlyWithHeader), After, router; the behaviours follow
// shared/notes/envoy-filter-chain.md.
//
// Deviations from Envoy, chosen on purpose:
//   - A request that matches no route gets a 404 (details "route_not_found")
//     without any call to the processor; real Envoy runs the filter chain
//     before the router answers 404.
//   - A set_headers entry with both value and raw_value set gives a local 500,
//     as Envoy did before it read raw_value only; current Envoy ignores value.
//     Either way a processor must fill raw_value only.
//   - Only body modes NONE and BUFFERED are supported (Start refuses others;
//     a mode_override asking for them is treated as NONE), and trailers are
//     never sent (trailer modes must be SKIP or DEFAULT).
//   - CommonResponse.status CONTINUE_AND_REPLACE is treated as CONTINUE,
//     clear_route_cache and trailers in a CommonResponse are ignored.
//   - :status may only be set to 200..999 (net/http cannot write larger codes).
//   - net/http does not keep the wire order of different header names, so the
//     client's headers are sent to the processor sorted by name (after the
//     pseudo headers); the order of a repeated header's lines is kept.
//   - The upstream must be plain http.
//   - Envoy's CORS filter and other direct answers (encodeHeaders without
//     sendLocalReply, which skip response_headers_to_add) are not modelled.
type Config struct {
	// Processor is the gRPC target of the ext_proc server, e.g.
	// "127.0.0.1:9001" or "unix:///path/to.sock".
	Processor string
	// DialOptions are added to the gRPC client's options; the default
	// transport credentials are insecure.
	DialOptions []grpc.DialOption
	// Routes are tried in order; the first match wins.
	Routes []Route
	// MessageTimeout bounds each round trip; 0 means
	// [DefaultMessageTimeout].
	MessageTimeout time.Duration
	// FailureModeAllow lets a request continue untouched when the processor
	// times out, fails, or answers out of phase.
	FailureModeAllow bool
	// AllowModeOverride honours mode_override in replies to headers
	// messages.
	AllowModeOverride bool
	// ProcessingMode is the filter's processing_mode; nil is Envoy's
	// default: headers SEND both ways, bodies NONE, trailers SKIP.
	ProcessingMode *extprocfilterv3.ProcessingMode
	// RequestAttributes are sent on the first request-direction message
	// under the key "envoy.filters.http.ext_proc". Supported:
	// xds.route_name, request.path, request.url_path, request.host,
	// request.method, request.scheme, request.id, request.protocol.
	RequestAttributes []string
	// ResponseAttributes are sent on the first response-direction message.
	// Supported: the request ones plus response.code.
	ResponseAttributes []string
	// ForwardRules is the filter's forward_rules: which headers, pseudo
	// headers included, the processor sees, both ways
	// (envoy-filter-chain.md §D). nil sends every header.
	ForwardRules *extprocfilterv3.HeaderForwardingRules
	// MutationRules is the filter's mutation_rules, checked on every header
	// change of a CommonResponse: a refused change is skipped and counted
	// in RejectedHeaderMutations, or, with disallow_is_error, answers a
	// local 500 (envoy-filter-chain.md §D). nil is Envoy's default rules.
	// The headers of an ImmediateResponse are checked by Envoy's fixed
	// permissive rules instead, whatever these say (ext_proc.cc,
	// ImmediateMutationChecker).
	MutationRules *mutationrulesv3.HeaderMutationRules
	// OnlyWithHeader, when set, puts the filter inside a composite filter
	// whose matcher runs it only for requests that carry this request
	// header with a value matching OnlyWithHeaderRegex (whole match; ""
	// means ".*"). For any other request the ext_proc filter is never
	// created: no stream, no phase, no encoder step (envoy-filter-chain.md
	// §E.2; an absent header is no match).
	OnlyWithHeader      string
	OnlyWithHeaderRegex string
	// Before and After are the filters that run before and after ext_proc
	// in http_filters order (the router always comes last). A filter in
	// Before that answers locally does so before ext_proc saw the request:
	// the ext_proc filter exists all the same, so its stream starts with
	// response_headers (envoy-filter-chain.md §A, envoy#11447). Inside a
	// composite (OnlyWithHeader) the delegate is never created then, since
	// the composite's decodeHeaders never ran.
	Before, After []Filter
	// SkipLocalReplies makes local replies (a filter's 401/403/429, the
	// router's 503, an ext_proc error reply) skip ext_proc's response
	// phase, as Envoy 1.34.0-1.36.x, 1.33.1+, 1.32.4+, 1.31.6+ and 1.30.10+
	// do with the runtime guard
	// envoy.reloadable_features.skip_ext_proc_on_local_reply on (its
	// default). false is Envoy <= 1.33.0 and >= 1.37.0, which send local
	// replies through the response phase like any response
	// (envoy-filter-chain.md §A).
	SkipLocalReplies bool
	// ReceivingNamespaces is the filter's
	// metadata_options.receiving_namespaces.untyped: the namespaces of a
	// reply's dynamic_metadata that are stored; any other is dropped
	// (envoy-filter-chain.md §F). Read what was stored with
	// [Envoy.AccessLog].
	ReceivingNamespaces []string
	// AccessLogFormat is the connection manager's access log text format,
	// as [FromBootstrapFile] found it; [AccessLogEntry.Format] renders it.
	// The stand-in itself does not print access logs.
	AccessLogFormat string
}

// Stats are counters of an [Envoy], named after the filter's statistics.
type Stats struct {
	// Requests is the number of HTTP requests received.
	Requests int64
	// StreamsStarted counts Process streams opened (streams_started).
	StreamsStarted int64
	// MessagesSent counts ProcessingRequests sent (stream_msgs_sent).
	MessagesSent int64
	// MessagesReceived counts replies accepted for their phase
	// (stream_msgs_received).
	MessagesReceived int64
	// RejectedHeaderMutations counts ignored or refused header changes
	// (rejected_header_mutations).
	RejectedHeaderMutations int64
	// MessageTimeouts counts round trips that exceeded MessageTimeout
	// (message_timeouts).
	MessageTimeouts int64
	// ImmediateResponses counts ImmediateResponses from the processor.
	ImmediateResponses int64
	// FailureModeAllowed counts failures let through by FailureModeAllow
	// (failure_mode_allowed).
	FailureModeAllowed int64
	// StreamsFailed counts streams that ended with an error status
	// (streams_failed).
	StreamsFailed int64
	// StreamsClosedByProcessor counts streams the processor ended with OK
	// before replying (streams_closed).
	StreamsClosedByProcessor int64
	// SpuriousMessages counts replies for the wrong phase or empty replies
	// (spurious_msgs_received).
	SpuriousMessages int64
	// UpstreamRequests counts requests forwarded to an upstream.
	UpstreamRequests int64
	// BytesSent is the serialized size of every ProcessingRequest sent,
	// the bytes corsproc receives (gRPC framing aside).
	BytesSent int64
	// FilterReplies counts local replies sent by [Config.Before] and
	// [Config.After] filters.
	FilterReplies int64
	// LocalReplies lists the response code details of every response the
	// stand-in made itself (route_not_found, ext_proc_error_..., or the
	// processor's ImmediateResponse details), in order.
	LocalReplies []string
}

// Envoy is a running stand-in. It is an [http.Handler], so [New] plus
// httptest.NewServer works as well as [Start].
type Envoy struct {
	cfg       Config
	mode      *extprocfilterv3.ProcessingMode
	forward   forwardRules
	checker   *mutationChecker
	onlyWith  *regexp.Regexp
	upstreams []*url.URL
	conn      *grpc.ClientConn
	client    extprocv3.ExternalProcessorClient
	transport *http.Transport
	upstream  *http.Client

	srv       *http.Server
	ln        net.Listener
	serveDone chan struct{}

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup

	requests, streamsStarted, msgsSent, msgsReceived, rejected atomic.Int64
	timeouts, immediate, allowed, failed, closedByProc         atomic.Int64
	spurious, upstreamReqs, bytesSent, filterReplies           atomic.Int64

	detailsMu sync.Mutex
	details   []string
	accessLog []AccessLogEntry
}

var supportedAttributes = []string{
	"xds.route_name", "request.path", "request.url_path", "request.host",
	"request.method", "request.scheme", "request.id", "request.protocol",
}

// New checks cfg and builds an Envoy that is not listening; serve it with
// httptest.NewServer or any http.Server, and Close it when done.
func New(cfg Config) (*Envoy, error) {
	if cfg.Processor == "" {
		return nil, errors.New("envoytest: Config.Processor is required")
	}
	if cfg.MessageTimeout <= 0 {
		cfg.MessageTimeout = DefaultMessageTimeout
	}
	mode := &extprocfilterv3.ProcessingMode{}
	if cfg.ProcessingMode != nil {
		mode = proto.Clone(cfg.ProcessingMode).(*extprocfilterv3.ProcessingMode)
	}
	if err := checkMode(mode); err != nil {
		return nil, err
	}
	for _, a := range cfg.RequestAttributes {
		if !slices.Contains(supportedAttributes, a) {
			return nil, fmt.Errorf("envoytest: request attribute %q not supported", a)
		}
	}
	for _, a := range cfg.ResponseAttributes {
		if a != "response.code" && !slices.Contains(supportedAttributes, a) {
			return nil, fmt.Errorf("envoytest: response attribute %q not supported", a)
		}
	}
	e := &Envoy{cfg: cfg, mode: mode, checker: defaultChecker}
	var err error
	if e.forward, err = compileForwardRules(cfg.ForwardRules); err != nil {
		return nil, fmt.Errorf("envoytest: %w", err)
	}
	if cfg.MutationRules != nil {
		if e.checker, err = newMutationChecker(cfg.MutationRules); err != nil {
			return nil, fmt.Errorf("envoytest: %w", err)
		}
	}
	if cfg.OnlyWithHeader != "" {
		expr := cfg.OnlyWithHeaderRegex
		if expr == "" {
			expr = ".*"
		}
		if e.onlyWith, err = compileWhole(expr); err != nil {
			return nil, fmt.Errorf("envoytest: OnlyWithHeaderRegex: %w", err)
		}
	}
	for _, f := range append(slices.Clone(cfg.Before), cfg.After...) {
		if f.Reject == nil {
			return nil, fmt.Errorf("envoytest: filter %q has no Reject function", f.Name)
		}
	}
	for i, rt := range cfg.Routes {
		u, err := url.Parse(rt.Upstream)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("envoytest: route %d (%q): upstream %q is not an http://host[:port] URL", i, rt.Name, rt.Upstream)
		}
		e.upstreams = append(e.upstreams, &url.URL{Scheme: u.Scheme, Host: u.Host})
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.Processor, opts...)
	if err != nil {
		return nil, fmt.Errorf("envoytest: processor %q: %w", cfg.Processor, err)
	}
	e.conn = conn
	e.client = extprocv3.NewExternalProcessorClient(conn)
	e.transport = &http.Transport{
		Proxy:               nil,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	e.upstream = &http.Client{
		Transport: e.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return e, nil
}

func checkMode(m *extprocfilterv3.ProcessingMode) error {
	for _, b := range []extprocfilterv3.ProcessingMode_BodySendMode{m.GetRequestBodyMode(), m.GetResponseBodyMode()} {
		if b != extprocfilterv3.ProcessingMode_NONE && b != extprocfilterv3.ProcessingMode_BUFFERED {
			return fmt.Errorf("envoytest: body mode %v not supported (NONE or BUFFERED)", b)
		}
	}
	if m.GetRequestTrailerMode() == extprocfilterv3.ProcessingMode_SEND || m.GetResponseTrailerMode() == extprocfilterv3.ProcessingMode_SEND {
		return errors.New("envoytest: trailer mode SEND not supported")
	}
	return nil
}

// Start builds an Envoy with [New] and serves it on 127.0.0.1 on a free port
// (HTTP/1.1). It returns once the listener accepts connections.
func Start(cfg Config) (*Envoy, error) {
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("envoytest: listen: %w", err)
	}
	e.ln = ln
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	e.serveDone = make(chan struct{})
	go func() {
		defer close(e.serveDone)
		_ = e.srv.Serve(ln)
	}()
	return e, nil
}

// URL is the base URL of a started Envoy, e.g. "http://127.0.0.1:41234";
// "" for one made with [New].
func (e *Envoy) URL() string {
	if e.ln == nil {
		return ""
	}
	return "http://" + e.ln.Addr().String()
}

// Addr is the host:port a started Envoy listens on; "" for one made with
// [New].
func (e *Envoy) Addr() string {
	if e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

// Close stops the listener, waits for every request and every Process
// stream to end, and closes the gRPC connection. It is safe to call twice.
func (e *Envoy) Close() error {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	e.mu.Unlock()
	if already {
		return nil
	}
	if e.srv != nil {
		_ = e.srv.Close()
		<-e.serveDone
	}
	e.wg.Wait()
	e.transport.CloseIdleConnections()
	return e.conn.Close()
}

// Stats returns a snapshot of the counters.
func (e *Envoy) Stats() Stats {
	e.detailsMu.Lock()
	details := slices.Clone(e.details)
	e.detailsMu.Unlock()
	return Stats{
		Requests:                 e.requests.Load(),
		StreamsStarted:           e.streamsStarted.Load(),
		MessagesSent:             e.msgsSent.Load(),
		MessagesReceived:         e.msgsReceived.Load(),
		RejectedHeaderMutations:  e.rejected.Load(),
		MessageTimeouts:          e.timeouts.Load(),
		ImmediateResponses:       e.immediate.Load(),
		FailureModeAllowed:       e.allowed.Load(),
		StreamsFailed:            e.failed.Load(),
		StreamsClosedByProcessor: e.closedByProc.Load(),
		SpuriousMessages:         e.spurious.Load(),
		UpstreamRequests:         e.upstreamReqs.Load(),
		BytesSent:                e.bytesSent.Load(),
		FilterReplies:            e.filterReplies.Load(),
		LocalReplies:             details,
	}
}

// ServeHTTP runs one request through the filter, the upstream and back.
func (e *Envoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		http.Error(w, "envoytest: closed", http.StatusServiceUnavailable)
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()
	e.requests.Add(1)
	x := &exchange{e: e, w: w, r: r, mode: proto.Clone(e.mode).(*extprocfilterv3.ProcessingMode)}
	start := time.Now()
	x.run()
	e.logRequest(x, start)
}

// match returns the index of the first route matching r, or -1.
func (e *Envoy) match(host, path string) int {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for i, rt := range e.cfg.Routes {
		if rt.Host != "" && !strings.EqualFold(strings.Trim(rt.Host, "[]"), host) {
			continue
		}
		if strings.HasPrefix(path, rt.PathPrefix) {
			return i
		}
	}
	return -1
}

func (e *Envoy) addDetails(d string) {
	e.detailsMu.Lock()
	e.details = append(e.details, d)
	e.detailsMu.Unlock()
}
