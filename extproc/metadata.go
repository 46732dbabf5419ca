package extproc

import (
	"sync/atomic"

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

// metadataCache holds the dynamic metadata one policy can produce, built
// once per (class, outcome, reason) on first use and shared by every stream
// after that: the hot path loads a pointer, and no request builds a
// protobuf map. A shared message is only ever read (marshalled), which
// protobuf allows from many goroutines at once.
type metadataCache struct {
	policy  string                            // "" for requests no policy matched
	entries []atomic.Pointer[structpb.Struct] // by index()
}

// newMetadataCache is the cache of the policy named name, whose mode is
// the same in every decision of one set.
func newMetadataCache(name string) *metadataCache {
	return &metadataCache{policy: name,
		entries: make([]atomic.Pointer[structpb.Struct], numClasses*numOutcomes*len(policy.Reasons()))}
}

// of returns the metadata that reports d; nil for a decision outside the
// enums (never, but then there is simply no metadata).
func (c *metadataCache) of(d *policy.Decision) *structpb.Struct {
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
	m := namespaced(fields)
	c.entries[i].Store(m) // a racing first use stores an equal message
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
var mismatchMetadata = namespaced(map[string]*structpb.Value{
	MetadataReportMismatch: structpb.NewBoolValue(true),
})
