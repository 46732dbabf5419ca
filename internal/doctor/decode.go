package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
)

// The config dump sections doctor reads. Clusters, endpoints, secrets and
// the bootstrap are skipped unread: they say nothing about the filter
// chain, and a type in them this build does not know must not make the
// dump unreadable.
var readSections = map[string]bool{
	"envoy.admin.v3.ListenersConfigDump":    true,
	"envoy.admin.v3.RoutesConfigDump":       true,
	"envoy.admin.v3.ScopedRoutesConfigDump": true,
	"envoy.admin.v3.EcdsConfigDump":         true,
}

// Decode reads an Envoy admin /config_dump response (JSON) into a
// ConfigDump holding the listener, route and ECDS sections.
//
// Envoy writes every typed_config as an Any with its type URL. A type this
// build does not know (an Istio or vendor filter, a newer Envoy extension)
// does not fail the dump: its Any keeps the type URL and an empty value, and
// Analyze judges that filter by name and reports it as unknown. Fields this
// build does not know are dropped; that is reported by a returned info
// finding. The error is for input that is no config dump at all.
func Decode(data []byte) (*adminv3.ConfigDump, []Finding, error) {
	var top struct {
		Configs []json.RawMessage `json:"configs"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&top); err != nil {
		return nil, nil, fmt.Errorf("not a config dump: %w", err)
	}
	if dec.More() {
		return nil, nil, errors.New("not a config dump: more than one JSON value")
	}
	if top.Configs == nil {
		return nil, nil, errors.New(`not a config dump: no "configs" list (save the output of Envoy's admin /config_dump)`)
	}
	dump := &adminv3.ConfigDump{}
	var notes []Finding
	for i, raw := range top.Configs {
		var head struct {
			Type string `json:"@type"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, nil, fmt.Errorf("configs[%d]: %w", i, err)
		}
		if !readSections[typeName(head.Type)] {
			continue
		}
		raw, err := stripUnknownTypes(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("configs[%d]: %w", i, err)
		}
		a := &anypb.Any{}
		strict := protojson.UnmarshalOptions{Resolver: lenientResolver{}}
		err = strict.Unmarshal(raw, a)
		if err != nil {
			lenient := protojson.UnmarshalOptions{Resolver: lenientResolver{}, DiscardUnknown: true}
			if err2 := lenient.Unmarshal(raw, a); err2 != nil {
				return nil, nil, fmt.Errorf("configs[%d] (%s): %w", i, typeName(head.Type), err2)
			}
			notes = append(notes, Finding{
				Severity: Info,
				Check:    "unknown-fields",
				Where:    Where{Section: typeName(head.Type)},
				Message:  fmt.Sprintf("the dump has fields this corsproc does not know: %v", err),
				Why:      "the Envoy that wrote it is newer than the go-control-plane corsproc was built with; the unknown fields were ignored, and a check that needs one may miss a problem",
				Fix:      "use a corsproc built against a newer go-control-plane, or ignore this if the fields named are unrelated to HTTP filters",
			})
		}
		dump.Configs = append(dump.Configs, a)
	}
	return dump, notes, nil
}

// stripUnknownTypes empties every JSON object whose "@type" the registry
// does not know, keeping only the type: its fields are unknown by
// definition, and left in place they would make the strict pass (which
// detects unknown fields of known types) fail on them.
func stripUnknownTypes(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep 64-bit integers exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(strip(v))
}

func strip(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if url, ok := v["@type"].(string); ok {
			if _, err := protoregistry.GlobalTypes.FindMessageByURL(url); errors.Is(err, protoregistry.NotFound) {
				return map[string]any{"@type": url}
			}
		}
		for k, x := range v {
			v[k] = strip(x)
		}
	case []any:
		for i, x := range v {
			v[i] = strip(x)
		}
	}
	return v
}

// typeName strips the type URL's prefix: everything to the last '/'.
func typeName(url string) string {
	return url[strings.LastIndexByte(url, '/')+1:]
}

// Resolver is the global registry, except that an Any of a type it does
// not know resolves to an empty message (decoding ignores its every field)
// instead of failing the whole dump. doctortest marshals its dumps with it.
var Resolver interface {
	protoregistry.MessageTypeResolver
	protoregistry.ExtensionTypeResolver
} = lenientResolver{}

type lenientResolver struct{}

func (lenientResolver) FindMessageByName(n protoreflect.FullName) (protoreflect.MessageType, error) {
	return protoregistry.GlobalTypes.FindMessageByName(n)
}

func (lenientResolver) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if errors.Is(err, protoregistry.NotFound) {
		return unknownType, nil
	}
	return mt, err
}

func (lenientResolver) FindExtensionByName(n protoreflect.FullName) (protoreflect.ExtensionType, error) {
	return protoregistry.GlobalTypes.FindExtensionByName(n)
}

func (lenientResolver) FindExtensionByNumber(m protoreflect.FullName, n protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	return protoregistry.GlobalTypes.FindExtensionByNumber(m, n)
}

// unknownType stands in for a type the registry lacks: an empty message
// (stripUnknownTypes has emptied its JSON). It is not registered: the Any
// holding it still names the original type, and unpacking it later fails
// as unknown, which is how Analyze tells.
var unknownType = func() protoreflect.MessageType {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        new("corsproc/doctor/unknown.proto"),
		Package:     new("corsproc.doctor"),
		Syntax:      new("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: new("Unknown")}},
	}, nil)
	if err != nil {
		panic("doctor: building the placeholder type: " + err.Error()) // a build defect, caught by every test
	}
	return dynamicpb.NewMessageType(fd.Messages().Get(0))
}()
