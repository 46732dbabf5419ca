package extproc

import (
	"sync/atomic"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/corsproc/corsproc/policy"
)

// MetadataNamespace is the dynamic metadata namespace corsproc answers
// under. Envoy stores it only when the filter's
// metadata_options.receiving_namespaces.untyped lists it, and an access log
// prints its keys with %DYNAMIC_METADATA(corsproc:decision)% and the like.
const MetadataNamespace = "corsproc"

// The keys corsproc sets in [MetadataNamespace]. The request phase sets
// the first five (policy only when one matched); the response phase adds
// report_mismatch to a report-mode response whose own CORS headers disagree
// with the policy. Envoy merges the two (StreamInfo::setDynamicMetadata).
const (
	MetadataPolicy         = "policy"
	MetadataClass          = "class"
	MetadataDecision       = "decision"
	MetadataReason         = "reason"
	MetadataMode           = "mode"
	MetadataReportMismatch = "report_mismatch"
)

// numOutcomes and numClasses size the metadata cache; they follow the
// policy package's enums.
const (
	numClasses  = int(policy.Preflight) + 1
	numOutcomes = int(policy.Denied) + 1
)

// encodedMetadata is ProcessingResponse.dynamic_metadata already in wire
// form: its tag, length and the encoded Struct. Set as a reply's unknown
// fields it is sent verbatim, and Envoy (any protobuf decoder) reads it as
// the dynamic_metadata field. Marshalling the Struct itself on every reply
// costs a dozen allocations and microseconds (its maps go through
// reflection); these bytes are built once per combination and shared, read
// only.
type encodedMetadata []byte

// encodeMetadata encodes md as ProcessingResponse field dynamic_metadata.
func encodeMetadata(md *structpb.Struct) encodedMetadata {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(md)
	if err != nil {
		// A Struct of strings and bools always encodes; without bytes the
		// reply simply carries no metadata.
		return nil
	}
	out := protowire.AppendTag(nil, dynamicMetadataField, protowire.BytesType)
	return protowire.AppendBytes(out, b)
}

// dynamicMetadataField is dynamic_metadata's field number in
// envoy.service.ext_proc.v3.ProcessingResponse, read from the generated
// code so that it cannot drift.
var dynamicMetadataField = (&extprocv3.ProcessingResponse{}).ProtoReflect().Descriptor().
	Fields().ByName("dynamic_metadata").Number()

// setMetadata makes resp carry md (nil: none).
func setMetadata(resp *extprocv3.ProcessingResponse, md encodedMetadata) {
	resp.ProtoReflect().SetUnknown(protoreflect.RawFields(md))
}

// metadataCache holds the dynamic metadata one policy can produce, encoded
// once per (class, outcome, reason) on first use and shared by every stream
// after that: the hot path loads a pointer, and no request builds or
// encodes a protobuf map.
type metadataCache struct {
	policy  string                         // "" for requests no policy matched
	entries []atomic.Pointer[decisionMeta] // by index()
}

// decisionMeta is the metadata of one kind of decision, and the CONTINUE
// replies to request_headers that carry it, without and with the
// mode_override that skips the response phase. Such a reply is the same
// for every request of that kind, so it is encoded once: each one is an
// empty ProcessingResponse whose unknown fields are the whole reply in
// wire form, which any encoder writes verbatim (what proto.Marshal
// wrote for the reply built field by field, byte for byte). Shared by
// every stream: read only.
type decisionMeta struct {
	md      encodedMetadata
	replies [2]*extprocv3.ProcessingResponse // [skip]
}

// metadata is the encoded metadata; nil for none.
func (m *decisionMeta) metadata() encodedMetadata {
	if m == nil {
		return nil
	}
	return m.md
}

// continueReply is CONTINUE to request_headers with the metadata, and
// with skip the mode_override that skips the response phase; nil when m
// is nil or the reply could not be encoded.
func (m *decisionMeta) continueReply(skip bool) *extprocv3.ProcessingResponse {
	if m == nil {
		return nil
	}
	if skip {
		return m.replies[1]
	}
	return m.replies[0]
}

// newDecisionMeta encodes md and the two replies that carry it.
func newDecisionMeta(md encodedMetadata) *decisionMeta {
	m := &decisionMeta{md: md}
	for i, skip := range []bool{false, true} {
		var st streamState
		reply := st.continueRequest(skip)
		setMetadata(reply, md)
		b, err := proto.Marshal(reply)
		if err != nil {
			continue // cannot happen; the stream then builds the reply itself
		}
		encoded := &extprocv3.ProcessingResponse{}
		encoded.ProtoReflect().SetUnknown(protoreflect.RawFields(b))
		m.replies[i] = encoded
	}
	return m
}

// newMetadataCache is the cache of the policy named name, whose mode is
// the same in every decision of one set.
func newMetadataCache(name string) *metadataCache {
	return &metadataCache{policy: name,
		entries: make([]atomic.Pointer[decisionMeta], numClasses*numOutcomes*len(policy.Reasons()))}
}

// of returns the metadata that reports d; nil for a decision outside the
// enums (never, but then there is simply no metadata).
func (c *metadataCache) of(d *policy.Decision) *decisionMeta {
	if int(d.Class) >= numClasses || int(d.Outcome) >= numOutcomes || int(d.Reason) >= len(policy.Reasons()) {
		return nil
	}
	i := (int(d.Class)*numOutcomes+int(d.Outcome))*len(policy.Reasons()) + int(d.Reason)
	if m := c.entries[i].Load(); m != nil {
		return m
	}
	fields := map[string]*structpb.Value{
		MetadataClass:    structpb.NewStringValue(d.Class.String()),
		MetadataDecision: structpb.NewStringValue(d.Outcome.String()),
		MetadataReason:   structpb.NewStringValue(d.Reason.String()),
	}
	if c.policy != "" {
		// No policy key at all rather than an empty one: the access log
		// then prints "-", as for any absent value.
		fields[MetadataPolicy] = structpb.NewStringValue(c.policy)
		fields[MetadataMode] = structpb.NewStringValue(d.Mode.String())
	}
	m := newDecisionMeta(encodeMetadata(namespaced(fields)))
	c.entries[i].Store(m) // a racing first use stores an equal entry
	return m
}

// namespaced wraps fields in [MetadataNamespace], the shape
// ProcessingResponse.dynamic_metadata has: namespace -> struct.
func namespaced(fields map[string]*structpb.Value) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: fields}),
	}}
}

// mismatchMetadata is what the response phase adds for a report-mode
// mismatch.
var mismatchMetadata = encodeMetadata(namespaced(map[string]*structpb.Value{
	MetadataReportMismatch: structpb.NewBoolValue(true),
}))
