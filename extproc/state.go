package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/corsproc/corsproc/internal/extprocwire"
	"github.com/corsproc/corsproc/policy"
)

// maxSet bounds the headers of one reply; a Decision holds fewer.
const maxSet = 16

// streamState is one stream's scratch: the decision kept between the two
// phases, and every message of the replies, reused from a sync.Pool so that
// a request costs almost no allocation beyond decoding what Envoy sends.
// gRPC encodes a reply inside Send, so a message may be refilled as soon
// as Send returns.
type streamState struct {
	// in is the message being handled; the strings below view its bytes.
	in extprocwire.Request

	// The request phase's decision, for the response phase.
	req     policy.Request
	lines   [4]string // backs req.RequestHeaders
	dec     policy.Decision
	snap    *snapshot // the set that decided, for its counters
	decided bool

	// The response phase.
	up   policy.Upstream
	vary [4]string // backs up.Vary
	cors [8]string // backs up.CORSHeaders
	edit policy.Edit

	// Reply messages.
	resp         extprocv3.ProcessingResponse
	reqHeaders   extprocv3.ProcessingResponse_RequestHeaders
	respHeaders  extprocv3.ProcessingResponse_ResponseHeaders
	headers      extprocv3.HeadersResponse
	common       extprocv3.CommonResponse
	mut          extprocv3.HeaderMutation
	immWrap      extprocv3.ProcessingResponse_ImmediateResponse
	imm          extprocv3.ImmediateResponse
	status       typev3.HttpStatus
	mode         extprocfilterv3.ProcessingMode
	opts         [maxSet]corev3.HeaderValueOption
	vals         [maxSet]corev3.HeaderValue
	optPtrs      [maxSet]*corev3.HeaderValueOption
	reqBody      extprocv3.ProcessingResponse_RequestBody
	respBody     extprocv3.ProcessingResponse_ResponseBody
	body         extprocv3.BodyResponse
	reqTrailers  extprocv3.ProcessingResponse_RequestTrailers
	respTrailers extprocv3.ProcessingResponse_ResponseTrailers
	trailers     extprocv3.TrailersResponse
}

// clear drops every reference into the stream's messages and the policy
// set before the state goes back to the pool.
func (st *streamState) clear() {
	st.req = policy.Request{}
	st.lines = [4]string{}
	st.dec = policy.Decision{}
	st.snap, st.decided = nil, false
	st.up = policy.Upstream{}
	st.vary = [4]string{}
	st.cors = [8]string{}
	st.edit = policy.Edit{}
	for i := range st.vals {
		st.vals[i].Key, st.vals[i].RawValue = "", nil
	}
	st.mut.SetHeaders, st.mut.RemoveHeaders = nil, nil
	// Last: no string above views the message's bytes any more, and the
	// next stream writes over them.
	st.in.Release()
}

// ready returns the response with only its oneof set, whichever the
// caller just chose.
func (st *streamState) ready() *extprocv3.ProcessingResponse {
	st.resp.ModeOverride = nil
	st.resp.DynamicMetadata = nil
	st.resp.OverrideMessageTimeout = nil
	return &st.resp
}

// continueRequest is CONTINUE for request_headers; skip adds the
// mode_override that spares the response round trip.
func (st *streamState) continueRequest(skip bool) *extprocv3.ProcessingResponse {
	st.common = extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE}
	st.headers.Response = &st.common
	st.reqHeaders.RequestHeaders = &st.headers
	st.resp.Response = &st.reqHeaders
	resp := st.ready()
	if skip {
		st.mode = extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP}
		resp.ModeOverride = &st.mode
	}
	return resp
}

// continueResponse is CONTINUE for response_headers, with mut (may be nil).
func (st *streamState) continueResponse(mut *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	st.common = extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE, HeaderMutation: mut}
	st.headers.Response = &st.common
	st.respHeaders.ResponseHeaders = &st.headers
	st.resp.Response = &st.respHeaders
	return st.ready()
}

// continueBody is CONTINUE for a body chunk, left as it is.
func (st *streamState) continueBody() *extprocv3.BodyResponse {
	st.common = extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE}
	st.body.Response = &st.common
	return &st.body
}

// immediate answers the request locally with the decision's status and
// headers.
func (st *streamState) immediate(d *policy.Decision, invalid func(string)) *extprocv3.ProcessingResponse {
	st.status = typev3.HttpStatus{Code: typev3.StatusCode(d.Status)}
	details := "corsproc_preflight_allowed"
	if d.Outcome == policy.Denied {
		details = "corsproc_preflight_denied"
	}
	st.imm = extprocv3.ImmediateResponse{Status: &st.status, Headers: st.mutation(d.Headers(), nil, invalid), Details: details}
	st.immWrap.ImmediateResponse = &st.imm
	st.resp.Response = &st.immWrap
	return st.ready()
}

// mutation fills the reused HeaderMutation: remove these names, then set
// these headers, each overwriting, values in raw_value only. It returns
// nil when there is nothing to do. A header Envoy would refuse is left out
// and reported to invalid.
//
// Every set is append_action OVERWRITE_IF_EXISTS_OR_ADD with the
// deprecated append left unset, which overwrites in every Envoy: ext_proc's
// MutationUtils::applyHeaderMutations (source/extensions/filters/http/
// ext_proc/mutation_utils.cc; lines 168-182 on release/v1.32, as linked
// from envoyproxy/envoy#36982, and the same statement on main in 2026)
// reads only `append`, `PROTOBUF_GET_WRAPPED_OR_DEFAULT(sh, append,
// false)`, so unset means overwrite, and ignores append_action; the
// proposals to honour append_action (envoyproxy/envoy#29862, #37139,
// #39066, unmerged) map OVERWRITE_IF_EXISTS_OR_ADD to overwrite too,
// whatever default they give an unset append. corsproc never needs to add
// a line: it merges vary itself and sets the whole value.
func (st *streamState) mutation(set []policy.Header, remove []string, invalid func(string)) *extprocv3.HeaderMutation {
	if len(set) == 0 && len(remove) == 0 {
		return nil
	}
	out := st.optPtrs[:0]
	for _, h := range set {
		if !validName(h.Name) || !validValue(h.Value) || len(out) == maxSet {
			invalid(h.Name)
			continue
		}
		i := len(out)
		st.vals[i] = corev3.HeaderValue{Key: h.Name, RawValue: raw(h.Value)}
		st.opts[i] = corev3.HeaderValueOption{Header: &st.vals[i], AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
		out = append(out, &st.opts[i])
	}
	st.mut = extprocv3.HeaderMutation{SetHeaders: out, RemoveHeaders: remove}
	return &st.mut
}
