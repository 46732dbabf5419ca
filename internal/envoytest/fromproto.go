package envoytest

import (
	"errors"
	"fmt"
	"regexp"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	envoymatcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// FromHTTPFilter reads the settings of an HTTP filter entry of a
// configuration, as Envoy would load it, into a Config: either an
// envoy.filters.http.ext_proc filter, or a composite filter
// (ExtensionWithMatcher + Composite) whose single matcher runs ext_proc
// through ExecuteFilterAction when a request header matches. Processor,
// Routes, Before and After are left for the caller; the message timeout is
// copied as written.
func FromHTTPFilter(hf *hcmv3.HttpFilter) (Config, error) {
	var cfg Config
	a := hf.GetTypedConfig()
	if a == nil {
		return cfg, fmt.Errorf("envoytest: filter %q has no typed_config", hf.GetName())
	}
	ep := &extprocfilterv3.ExternalProcessor{}
	if a.MessageIs(&matchingv3.ExtensionWithMatcher{}) {
		var err error
		if ep, cfg.OnlyWithHeader, cfg.OnlyWithHeaderRegex, err = fromComposite(a); err != nil {
			return cfg, fmt.Errorf("envoytest: filter %q: %w", hf.GetName(), err)
		}
	} else if err := a.UnmarshalTo(ep); err != nil {
		return cfg, fmt.Errorf("envoytest: filter %q is neither ext_proc nor a composite around it: %w", hf.GetName(), err)
	}
	cfg.ProcessingMode = ep.GetProcessingMode()
	cfg.AllowModeOverride = ep.GetAllowModeOverride()
	cfg.RequestAttributes = ep.GetRequestAttributes()
	cfg.ResponseAttributes = ep.GetResponseAttributes()
	cfg.FailureModeAllow = ep.GetFailureModeAllow()
	cfg.MessageTimeout = ep.GetMessageTimeout().AsDuration()
	cfg.ForwardRules = ep.GetForwardRules()
	cfg.MutationRules = ep.GetMutationRules()
	cfg.ReceivingNamespaces = ep.GetMetadataOptions().GetReceivingNamespaces().GetUntyped()
	return cfg, nil
}

// fromComposite unpacks ExtensionWithMatcher{composite, xds_matcher} with
// one matcher: a single predicate on HttpRequestHeaderMatchInput whose
// action is ExecuteFilterAction running ext_proc.
func fromComposite(a *anypb.Any) (*extprocfilterv3.ExternalProcessor, string, string, error) {
	ewm := &matchingv3.ExtensionWithMatcher{}
	if err := a.UnmarshalTo(ewm); err != nil {
		return nil, "", "", err
	}
	if !ewm.GetExtensionConfig().GetTypedConfig().MessageIs(&compositev3.Composite{}) {
		return nil, "", "", errors.New("the ExtensionWithMatcher does not wrap a Composite")
	}
	list := ewm.GetXdsMatcher().GetMatcherList().GetMatchers()
	if len(list) != 1 || ewm.GetXdsMatcher().GetOnNoMatch() != nil {
		return nil, "", "", errors.New("the stand-in knows one xds_matcher.matcher_list entry and no on_no_match")
	}
	sp := list[0].GetPredicate().GetSinglePredicate()
	input := &envoymatcherv3.HttpRequestHeaderMatchInput{}
	if sp == nil || sp.GetInput().GetTypedConfig().UnmarshalTo(input) != nil {
		return nil, "", "", errors.New("the predicate is not a single_predicate on HttpRequestHeaderMatchInput")
	}
	expr, err := valueRegex(sp.GetValueMatch())
	if err != nil {
		return nil, "", "", err
	}
	action := &compositev3.ExecuteFilterAction{}
	if err := list[0].GetOnMatch().GetAction().GetTypedConfig().UnmarshalTo(action); err != nil {
		return nil, "", "", fmt.Errorf("on_match.action is not ExecuteFilterAction: %w", err)
	}
	ep := &extprocfilterv3.ExternalProcessor{}
	if err := action.GetTypedConfig().GetTypedConfig().UnmarshalTo(ep); err != nil {
		return nil, "", "", fmt.Errorf("ExecuteFilterAction does not run ext_proc: %w", err)
	}
	return ep, input.GetHeaderName(), expr, nil
}

// valueRegex turns an xds StringMatcher into the whole-string regex the
// stand-in matches with.
func valueRegex(m *xdsmatcherv3.StringMatcher) (string, error) {
	if m == nil {
		return "", errors.New("the predicate has no value_match")
	}
	if m.GetIgnoreCase() {
		return "", errors.New("value_match.ignore_case is not supported")
	}
	switch p := m.GetMatchPattern().(type) {
	case *xdsmatcherv3.StringMatcher_Exact:
		return regexp.QuoteMeta(p.Exact), nil
	case *xdsmatcherv3.StringMatcher_Prefix:
		return regexp.QuoteMeta(p.Prefix) + ".*", nil
	case *xdsmatcherv3.StringMatcher_SafeRegex:
		return p.SafeRegex.GetRegex(), nil
	}
	return "", fmt.Errorf("value_match %v is not supported", m)
}
