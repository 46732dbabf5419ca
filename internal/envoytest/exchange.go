package envoytest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// attributesKey is the key under which Envoy sends request_attributes.
const attributesKey = "envoy.filters.http.ext_proc"

// bufferLimit is Envoy's default per-connection buffer limit, which bounds a
// BUFFERED body.
const bufferLimit = 1 << 20

type phase int

const (
	phaseRequestHeaders phase = iota
	phaseRequestBody
	phaseResponseHeaders
	phaseResponseBody
)

const (
	modeSkip     = extprocfilterv3.ProcessingMode_SKIP
	modeBuffered = extprocfilterv3.ProcessingMode_BUFFERED
	modeNone     = extprocfilterv3.ProcessingMode_NONE
)

// exchange is one HTTP request going through the filter: Envoy's Filter
// object, which lives as long as the request.
type exchange struct {
	e     *Envoy
	w     http.ResponseWriter
	r     *http.Request
	mode  *extprocfilterv3.ProcessingMode
	route int

	reqHeaders   headerMap
	upstreamCode int
	// present: the ext_proc filter exists for this request (always, unless
	// it sits in a composite whose matcher did not match).
	present bool

	stream             *procStream
	sentProtocolConfig bool
	sentReqAttrs       bool
	sentRespAttrs      bool
	// complete is Envoy's processing_complete_: the processor is not asked
	// anything more for this request.
	complete bool

	// For the access log: the request's dynamic metadata, the code and
	// details of the response written.
	metadata map[string]*structpb.Struct
	code     int
	details  string
}

func (x *exchange) run() {
	defer x.finishStream()
	r := x.r
	path := r.RequestURI
	if !strings.HasPrefix(path, "/") {
		path = r.URL.RequestURI()
	}
	x.route = x.e.match(r.Host, path)
	if x.route < 0 {
		x.localReply(http.StatusNotFound, "route_not_found")
		return
	}
	h := &x.reqHeaders
	h.add(":authority", r.Host)
	h.add(":path", path)
	h.add(":method", r.Method)
	h.add(":scheme", "http")
	h.addHTTPHeader(r.Header)
	if _, ok := h.get("x-forwarded-proto"); !ok {
		h.add("x-forwarded-proto", "http")
	}
	if _, ok := h.get("x-request-id"); !ok {
		h.add("x-request-id", newRequestID())
	}
	hasBody := r.ContentLength != 0

	for _, f := range x.e.cfg.Before {
		if lr := f.Reject(RequestHeaders{h}); lr != nil {
			// ext_proc never saw the request. Outside a composite the
			// filter exists and its encoder step still runs; a composite
			// never matched, so it created no delegate.
			x.present = x.e.onlyWith == nil
			x.filterReply(lr)
			return
		}
	}
	x.present = x.e.onlyWith == nil
	if !x.present {
		v, ok := h.get(strings.ToLower(x.e.cfg.OnlyWithHeader))
		x.present = ok && x.e.onlyWith.MatchString(v)
	}
	if !x.present {
		x.complete = true
	}

	if x.present && x.mode.GetRequestHeaderMode() != modeSkip {
		msg := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{Headers: x.e.forwarded(h), EndOfStream: !hasBody},
		}}
		if x.exchangeMessage(phaseRequestHeaders, msg, h, nil) {
			return
		}
	}
	var body io.Reader = r.Body
	length := r.ContentLength
	if hasBody && !x.complete && x.mode.GetRequestBodyMode() == modeBuffered {
		data, err := io.ReadAll(io.LimitReader(r.Body, bufferLimit+1))
		if err != nil {
			return // the client went away; Envoy resets the stream
		}
		if len(data) > bufferLimit {
			x.localReply(http.StatusRequestEntityTooLarge, "request_payload_too_large")
			return
		}
		msg := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: data, EndOfStream: true},
		}}
		if x.exchangeMessage(phaseRequestBody, msg, h, &data) {
			return
		}
		body, length = bytes.NewReader(data), int64(len(data))
	}
	if x.mode.GetResponseHeaderMode() == modeSkip && x.mode.GetResponseBodyMode() != modeBuffered {
		// Recent Envoy closes the stream as soon as no phase is left.
		x.stopProcessing()
	}
	for _, f := range x.e.cfg.After {
		if lr := f.Reject(RequestHeaders{h}); lr != nil {
			x.filterReply(lr)
			return
		}
	}

	resp, fromUpstream := x.forward(body, length)
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	var rh headerMap
	rh.add(":status", strconv.Itoa(resp.StatusCode))
	rh.addHTTPHeader(resp.Header)
	if fromUpstream {
		rh.add("x-envoy-upstream-service-time", strconv.FormatInt(resp.elapsed.Milliseconds(), 10))
	} else {
		x.beginLocalReply() // the router's own 503
	}
	x.addRouteHeaders(&rh)
	x.respond(&rh, resp.Body, resp.ContentLength != 0)
}

// beginLocalReply is what sendLocalReply does to ext_proc before the
// encoder chain runs: in the versions with skip_ext_proc_on_local_reply,
// Filter::onLocalReply marks processing complete, so no response phase is
// sent (envoy-filter-chain.md §A).
func (x *exchange) beginLocalReply() {
	if x.e.cfg.SkipLocalReplies {
		x.stopProcessing()
	}
}

// addRouteHeaders applies the route's response_headers_to_add, as the
// router does on upstream headers and sendLocalReply does in
// finalizeResponseHeaders: before the encoder chain (envoy-filter-chain.md
// §E.3).
func (x *exchange) addRouteHeaders(h *headerMap) {
	if x.route < 0 {
		return
	}
	for _, o := range x.e.cfg.Routes[x.route].ResponseHeadersToAdd {
		k, v := strings.ToLower(o.GetHeader().GetKey()), o.GetHeader().GetValue()
		if v == "" {
			v = string(o.GetHeader().GetRawValue())
		}
		_, exists := h.get(k)
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !exists {
				h.add(k, v)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			h.set(k, v)
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if exists {
				h.set(k, v)
			}
		default: // APPEND_IF_EXISTS_OR_ADD
			h.add(k, v)
		}
	}
}

// filterReply is a Before or After filter's sendLocalReply: the reply is
// built (route headers first, then the filter's), then runs through the
// encoder chain, ext_proc's response phase included where the Envoy
// version sends local replies to it.
func (x *exchange) filterReply(lr *LocalReply) {
	x.e.filterReplies.Add(1)
	x.addDetails(noSpaces(lr.Details))
	var h headerMap
	h.add(":status", strconv.Itoa(lr.Status))
	x.addRouteHeaders(&h)
	for _, kv := range lr.Headers {
		h.set(strings.ToLower(kv[0]), kv[1])
	}
	if lr.Body != "" {
		h.set("content-length", strconv.Itoa(len(lr.Body)))
		h.set("content-type", "text/plain")
	}
	x.beginLocalReply()
	x.respond(&h, strings.NewReader(lr.Body), lr.Body != "")
}

// respond runs the response phases on the response headers rh and writes
// the result. bodyPresent says whether the response has a body.
func (x *exchange) respond(rh *headerMap, respBody io.Reader, bodyPresent bool) {
	method, _ := x.reqHeaders.get(":method")
	status, _ := rh.get(":status")
	code, _ := strconv.Atoi(status)
	hasBody := bodyPresent && method != http.MethodHead &&
		code != http.StatusNoContent && code != http.StatusNotModified
	x.upstreamCode = code

	if x.present && !x.complete && x.mode.GetResponseHeaderMode() != modeSkip {
		msg := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
			ResponseHeaders: &extprocv3.HttpHeaders{Headers: x.e.forwarded(rh), EndOfStream: !hasBody},
		}}
		if x.exchangeMessage(phaseResponseHeaders, msg, rh, nil) {
			return
		}
	}
	body := respBody
	if hasBody && x.present && !x.complete && x.mode.GetResponseBodyMode() == modeBuffered {
		data, err := io.ReadAll(io.LimitReader(respBody, bufferLimit+1))
		if err != nil || len(data) > bufferLimit {
			x.stopProcessing()
			x.localReply(http.StatusInternalServerError, "response_payload_too_large")
			return
		}
		msg := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
			ResponseBody: &extprocv3.HttpBody{Body: data, EndOfStream: true},
		}}
		if x.exchangeMessage(phaseResponseBody, msg, rh, &data) {
			return
		}
		if cl, ok := rh.get("content-length"); ok && cl != strconv.Itoa(len(data)) {
			rh.set("content-length", strconv.Itoa(len(data)))
		}
		body = bytes.NewReader(data)
	}
	x.stopProcessing()
	x.writeResponse(rh, body)
}

// upstreamResponse is the upstream's answer, or the router's local 503.
type upstreamResponse struct {
	*http.Response
	elapsed time.Duration
}

// forward sends the request, as mutated, to the route's upstream. A
// connection failure becomes Envoy's router 503, which still goes through
// the response phases. It returns nil when the client has gone away.
func (x *exchange) forward(body io.Reader, length int64) (*upstreamResponse, bool) {
	method, _ := x.reqHeaders.get(":method")
	path, _ := x.reqHeaders.get(":path")
	authority, _ := x.reqHeaders.get(":authority")
	if length == 0 {
		body = nil
	}
	req, err := http.NewRequestWithContext(x.r.Context(), method, x.e.upstreams[x.route].String()+path, body)
	if err != nil {
		x.stopProcessing()
		x.localReply(http.StatusBadRequest, "invalid_path")
		return nil, false
	}
	req.ContentLength = length
	req.Host = authority
	x.reqHeaders.httpHeader(req.Header)
	req.Header.Del("Content-Length")
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // no Go default
	}
	req.Header.Set("X-Envoy-Expected-Rq-Timeout-Ms", "15000")
	x.e.upstreamReqs.Add(1)
	start := time.Now()
	resp, err := x.e.upstream.Do(req)
	if err == nil {
		return &upstreamResponse{Response: resp, elapsed: time.Since(start)}, true
	}
	if x.r.Context().Err() != nil {
		return nil, false
	}
	msg := "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	x.addDetails("upstream_reset_before_response_started{connection_failure}")
	return &upstreamResponse{Response: &http.Response{
		StatusCode:    http.StatusServiceUnavailable,
		Header:        http.Header{"Content-Length": {strconv.Itoa(len(msg))}, "Content-Type": {"text/plain"}},
		ContentLength: int64(len(msg)),
		Body:          io.NopCloser(strings.NewReader(msg)),
	}}, false
}

// exchangeMessage runs one phase and applies the reply's CommonResponse to h
// (and, for a body phase, to *body). done reports that the response has been
// written.
func (x *exchange) exchangeMessage(ph phase, msg *extprocv3.ProcessingRequest, h *headerMap, body *[]byte) (done bool) {
	common, done := x.process(ph, msg)
	if done || common == nil {
		return done
	}
	if err := applyMutation(h, common.GetHeaderMutation(), x.e.checker, x.rejected); err != nil {
		x.stopProcessing()
		x.localReply(http.StatusInternalServerError, noSpaces(err.Error()))
		return true
	}
	if body != nil {
		switch m := common.GetBodyMutation().GetMutation().(type) {
		case *extprocv3.BodyMutation_Body:
			*body = m.Body
		case *extprocv3.BodyMutation_ClearBody:
			if m.ClearBody {
				*body = nil
			}
		}
	}
	return false
}

// process sends msg for phase ph and waits for the reply. It returns the
// reply's CommonResponse (nil to continue untouched), or done when a local
// reply or an ImmediateResponse has been written.
func (x *exchange) process(ph phase, msg *extprocv3.ProcessingRequest) (common *extprocv3.CommonResponse, done bool) {
	if x.stream == nil {
		x.stream = x.e.openStream()
	}
	if !x.sentProtocolConfig {
		x.sentProtocolConfig = true
		msg.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  x.mode.GetRequestBodyMode(),
			ResponseBodyMode: x.mode.GetResponseBodyMode(),
		}
	}
	x.addAttributes(ph, msg)
	x.e.bytesSent.Add(int64(proto.Size(msg)))
	res, timedOut := x.stream.roundTrip(msg, x.e.cfg.MessageTimeout)
	switch {
	case timedOut:
		x.e.timeouts.Add(1)
		return nil, x.fail(http.StatusGatewayTimeout, "ext_proc_error_per-message_timeout_exceeded")
	case res.err == io.EOF:
		// A clean close: the processor is done with this request.
		x.e.closedByProc.Add(1)
		x.stopProcessing()
		return nil, false
	case res.err != nil:
		x.e.failed.Add(1)
		st := status.Convert(res.err)
		return nil, x.fail(http.StatusInternalServerError,
			noSpaces(fmt.Sprintf("ext_proc_error_gRPC_error_%d{%s}", st.Code(), st.Message())))
	}
	resp := res.resp
	if resp.GetResponse() != nil {
		// Envoy stores it for every reply it dispatches, before it checks
		// the reply fits the phase (onReceiveMessage).
		x.setDynamicMetadata(resp.GetDynamicMetadata())
	}
	if x.e.cfg.AllowModeOverride && (ph == phaseRequestHeaders || ph == phaseResponseHeaders) &&
		resp.GetModeOverride() != nil && resp.GetImmediateResponse() == nil {
		x.overrideMode(resp.GetModeOverride())
	}
	var ok bool
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		x.e.msgsReceived.Add(1)
		x.stopProcessing()
		x.immediateResponse(r.ImmediateResponse)
		return nil, true
	case *extprocv3.ProcessingResponse_RequestHeaders:
		ok, common = ph == phaseRequestHeaders, r.RequestHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_RequestBody:
		ok, common = ph == phaseRequestBody, r.RequestBody.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		ok, common = ph == phaseResponseHeaders, r.ResponseHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseBody:
		ok, common = ph == phaseResponseBody, r.ResponseBody.GetResponse()
	}
	if !ok {
		// Envoy >= 1.35: a reply for another phase, or an empty one.
		x.e.spurious.Add(1)
		return nil, x.fail(http.StatusInternalServerError, "ext_proc_error_spurious_message")
	}
	x.e.msgsReceived.Add(1)
	return common, false
}

// fail stops processing after a failure: the request continues untouched
// with FailureModeAllow, otherwise it gets a local reply.
func (x *exchange) fail(code int, details string) (done bool) {
	x.stopProcessing()
	if x.e.cfg.FailureModeAllow {
		x.e.allowed.Add(1)
		return false
	}
	x.localReply(code, details)
	return true
}

// overrideMode applies a mode_override: everything but request_header_mode,
// which has already been acted on.
func (x *exchange) overrideMode(o *extprocfilterv3.ProcessingMode) {
	m := proto.Clone(o).(*extprocfilterv3.ProcessingMode)
	m.RequestHeaderMode = x.mode.GetRequestHeaderMode()
	m.RequestTrailerMode, m.ResponseTrailerMode = x.mode.GetRequestTrailerMode(), x.mode.GetResponseTrailerMode()
	if m.RequestBodyMode != modeBuffered {
		m.RequestBodyMode = modeNone
	}
	if m.ResponseBodyMode != modeBuffered {
		m.ResponseBodyMode = modeNone
	}
	x.mode = m
}

func (x *exchange) addAttributes(ph phase, msg *extprocv3.ProcessingRequest) {
	names, sent := x.e.cfg.RequestAttributes, &x.sentReqAttrs
	if ph >= phaseResponseHeaders {
		names, sent = x.e.cfg.ResponseAttributes, &x.sentRespAttrs
	}
	if len(names) == 0 || *sent {
		return
	}
	*sent = true
	fields := make(map[string]*structpb.Value, len(names))
	for _, n := range names {
		fields[n] = x.attribute(n)
	}
	msg.Attributes = map[string]*structpb.Struct{attributesKey: {Fields: fields}}
}

func (x *exchange) attribute(name string) *structpb.Value {
	get := func(k string) string { v, _ := x.reqHeaders.get(k); return v }
	switch name {
	case "xds.route_name":
		return structpb.NewStringValue(x.e.cfg.Routes[x.route].Name)
	case "request.path":
		return structpb.NewStringValue(get(":path"))
	case "request.url_path":
		p, _, _ := strings.Cut(get(":path"), "?")
		return structpb.NewStringValue(p)
	case "request.host":
		return structpb.NewStringValue(get(":authority"))
	case "request.method":
		return structpb.NewStringValue(get(":method"))
	case "request.scheme":
		return structpb.NewStringValue(get(":scheme"))
	case "request.id":
		return structpb.NewStringValue(get("x-request-id"))
	case "request.protocol":
		return structpb.NewStringValue("HTTP/1.1")
	case "response.code":
		return structpb.NewNumberValue(float64(x.upstreamCode))
	}
	return structpb.NewNullValue()
}

// immediateResponse writes the processor's ImmediateResponse as Envoy's
// sendLocalReply does. Header mutations go through the filter's rules; a
// refused mutation is logged by Envoy and the reply is still sent.
func (x *exchange) immediateResponse(ir *extprocv3.ImmediateResponse) {
	x.e.immediate.Add(1)
	code := int(ir.GetStatus().GetCode())
	if code < 200 || code > 999 {
		code = http.StatusOK
	}
	var h headerMap
	h.add(":status", strconv.Itoa(code))
	x.addRouteHeaders(&h)
	_ = applyMutation(&h, ir.GetHeaders(), immediateChecker, x.rejected)
	body := ir.GetBody()
	if len(body) > 0 {
		h.set("content-length", strconv.Itoa(len(body)))
		if _, ok := h.get("content-type"); !ok {
			h.add("content-type", "text/plain")
		}
	}
	x.addDetails(noSpaces(ir.GetDetails()))
	x.writeResponse(&h, bytes.NewReader(body))
}

// localReply writes a response made by the stand-in itself, without a
// body, after processing stopped: the route's response headers, no
// response phase.
func (x *exchange) localReply(code int, details string) {
	x.addDetails(details)
	var h headerMap
	h.add(":status", strconv.Itoa(code))
	x.addRouteHeaders(&h)
	x.writeResponse(&h, nil)
}

// writeResponse writes h and body to the client, as Envoy's codec does:
// server is overwritten with "envoy", nothing is sniffed.
func (x *exchange) writeResponse(h *headerMap, body io.Reader) {
	s, _ := h.get(":status")
	code, err := strconv.Atoi(s)
	if err != nil {
		code = http.StatusInternalServerError
	}
	out := x.w.Header()
	h.httpHeader(out)
	if _, ok := out["Content-Type"]; !ok {
		out["Content-Type"] = nil // suppress net/http's content sniffing
	}
	out.Set("Server", "envoy")
	x.w.WriteHeader(code)
	x.code = code
	if body != nil {
		_, _ = io.Copy(x.w, body)
	}
}

// addDetails records the response code details of a response the
// stand-in made itself.
func (x *exchange) addDetails(d string) {
	x.details = d
	x.e.addDetails(d)
}

func (x *exchange) rejected() { x.e.rejected.Add(1) }

// stopProcessing marks processing complete and closes the stream.
func (x *exchange) stopProcessing() {
	x.complete = true
	x.finishStream()
}

func (x *exchange) finishStream() {
	if x.stream != nil {
		x.stream.finish()
	}
}

// noSpaces is Envoy's StringUtil::replaceAllEmptySpace for response code
// details.
func noSpaces(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' {
			return '_'
		}
		return r
	}, s)
}

// newRequestID returns a random UUID v4, like Envoy's x-request-id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
