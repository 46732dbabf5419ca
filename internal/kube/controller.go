// Package kube is `corsproc serve --kubernetes`: it watches CORSPolicy
// objects (and, for guardrails that derive hosts from them, the hostnames
// of HTTPRoutes) and composes them with the central policy file
// (docs/contract.md, "Policies from Kubernetes").
//
// Every replica watches and composes on its own, so that each enforces
// every object as soon as its watch delivers it, whatever the others do.
// Per object, the current spec runs if the central set admits it; else
// the spec of status.acceptedSpec does, if admitted; else nothing does.
// One replica, the holder of a Lease, writes what happened back to the
// objects: their status and an Event, only when that changes. A refused or
// deleted object never disturbs another.
package kube

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/corsproc/corsproc/api/v1alpha1"
	"github.com/corsproc/corsproc/policy"
)

// CORSPolicies is the resource the controller watches.
var CORSPolicies = v1alpha1.GroupVersion.WithResource("corspolicies")

// HTTPRoutes are Gateway API routes, read as unstructured (their
// spec.hostnames only): no Gateway API dependency for one list of strings.
var HTTPRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// Options configure a [Controller].
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// Namespaces are watched; none means every namespace.
	Namespaces []string
	// LeaseNamespace and LeaseName name the Lease whose holder alone
	// writes status and Events: corsproc's own namespace.
	LeaseNamespace, LeaseName string
	// Identity names this replica in the Lease and in its Events;
	// "" means the host name and a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are the leader
	// election's timing; zero means 15s, 10s and 2s (client-go's usual).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Log receives the controller's log lines.
	Log *slog.Logger
}

// Controller watches CORSPolicy objects and composes them with the
// central policy set. Bind it to the running policies, then Run it.
type Controller struct {
	opts  Options
	log   *slog.Logger
	dyn   dynamic.Interface
	disco discovery.DiscoveryInterface
	core  corev1client.CoreV1Interface
	coord coordinationv1client.CoordinationV1Interface

	recompose func() // asks the running policies to call Compose again

	policies []cache.SharedIndexInformer
	routes   []cache.SharedIndexInformer // nil: HTTPRoutes are not served

	synced  atomic.Bool // every store has synced: Compose reads them
	ready   atomic.Bool // and the first composition after it is running
	leader  atomic.Bool
	changed chan struct{} // an object changed: compose again
	dirty   chan struct{} // results or objects changed: write status

	mu       sync.Mutex
	results  map[string]*result    // by NAMESPACE/NAME, of the last Compose
	admitted map[admitKey]admitted // the last admissions, reused while nothing changed
	written  map[string]string     // by NAMESPACE/NAME: the status last written, as leader
}

// New builds a controller; nothing is watched until Run.
func New(o Options) (*Controller, error) {
	if o.Config == nil {
		return nil, errors.New("kube: no API server configuration")
	}
	if o.LeaseNamespace == "" {
		return nil, errors.New("no namespace for the leader election Lease: set --kubernetes-lease-namespace or POD_NAMESPACE (corsproc's own namespace)")
	}
	if o.LeaseName == "" {
		o.LeaseName = "corsproc"
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		if pod := os.Getenv("POD_NAME"); pod != "" {
			host = pod
		}
		o.Identity = host + "_" + strings.ToLower(rand.Text()[:8])
	}
	o.LeaseDuration = cmp.Or(o.LeaseDuration, 15*time.Second)
	o.RenewDeadline = cmp.Or(o.RenewDeadline, 10*time.Second)
	o.RetryPeriod = cmp.Or(o.RetryPeriod, 2*time.Second)
	if o.Log == nil {
		o.Log = slog.Default()
	}
	cfg := rest.CopyConfig(o.Config)
	// Status and Events for many objects at start-up; client-go's default
	// of 5 a second would take minutes over a thousand.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cfg.UserAgent = "corsproc"
	c := &Controller{
		opts: o, log: o.Log.With("component", "kubernetes"),
		changed: make(chan struct{}, 1), dirty: make(chan struct{}, 1),
		results: map[string]*result{}, admitted: map[admitKey]admitted{}, written: map[string]string{},
	}
	var err error
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.disco, err = discovery.NewDiscoveryClientForConfig(cfg); err != nil {
		return nil, err
	}
	if c.core, err = corev1client.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.coord, err = coordinationv1client.NewForConfig(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// Identity is this replica's name in the Lease and its Events.
func (c *Controller) Identity() string { return c.opts.Identity }

// Bind makes recompose the way the controller asks for a new composition
// (extproc's Policies.Recompose); the runner binds Compose the other way.
func (c *Controller) Bind(recompose func()) { c.recompose = recompose }

// Ready says whether every watch has synced and the objects it found run.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Leader says whether this replica holds the Lease now.
func (c *Controller) Leader() bool { return c.leader.Load() }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run watches until ctx is done: informers, then the first composition,
// then leader election and status writing.
func (c *Controller) Run(ctx context.Context) error {
	if c.recompose == nil {
		return errors.New("kube: Run before Bind")
	}
	namespaces := c.opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	withRoutes := c.served(HTTPRoutes)
	if !withRoutes {
		c.log.Info("HTTPRoutes are not served by this API server: guardrails that allow a namespace its routes' hostnames find none")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var factories []dynamicinformer.DynamicSharedInformerFactory
	defer func() {
		for _, f := range factories {
			f.Shutdown() // waits for its informers, which stop with ctx
		}
	}()
	var synced []cache.InformerSynced
	for _, ns := range namespaces {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.dyn, 0, ns, nil)
		inf := f.ForResource(CORSPolicies).Informer()
		c.setup(inf, "CORSPolicy objects", c.policyChanged)
		c.policies = append(c.policies, inf)
		synced = append(synced, inf.HasSynced)
		if withRoutes {
			r := f.ForResource(HTTPRoutes).Informer()
			c.setup(r, "HTTPRoutes", routeChanged)
			c.routes = append(c.routes, r)
			synced = append(synced, r.HasSynced)
		}
		f.Start(ctx.Done())
		factories = append(factories, f)
	}
	c.log.Info("watching CORSPolicy objects", "namespaces", c.opts.Namespaces, "httproutes", withRoutes,
		"lease", c.opts.LeaseNamespace+"/"+c.opts.LeaseName, "identity", c.opts.Identity)
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil // ctx done before the first list
	}
	c.synced.Store(true)
	c.recompose()
	c.ready.Store(true)
	c.log.Info("CORSPolicy objects synced", "objects", len(c.objects()))

	wg.Go(func() { c.writeStatusLoop(ctx) })
	wg.Go(func() { c.elect(ctx) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
			c.recompose()
		}
	}
}

// served says whether the API server serves gvr now.
func (c *Controller) served(gvr schema.GroupVersionResource) bool {
	list, err := c.disco.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		if !apierrors.IsNotFound(err) {
			c.log.Warn("discovery failed; assuming the resource is not served", "resource", gvr.String(), "error", err.Error())
		}
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true
		}
	}
	return false
}

// change says what an update changed, for the informers' handlers.
type change func(old, new *unstructured.Unstructured) (compose, status bool)

// policyChanged: a new generation changes what runs, and so does a new
// acceptedSpec while the current spec is refused; anything else (status,
// labels, the acceptedSpec the leader has just written for a spec that
// runs) may only need status rewritten. Without this, writing the status
// of a thousand objects at start-up would compose the set a thousand times.
func (c *Controller) policyChanged(old, new *unstructured.Unstructured) (bool, bool) {
	if old == nil || new == nil || old.GetGeneration() != new.GetGeneration() || old.GetUID() != new.GetUID() {
		return true, true
	}
	oa, _, _ := unstructured.NestedFieldNoCopy(old.Object, "status", "acceptedSpec")
	na, _, _ := unstructured.NestedFieldNoCopy(new.Object, "status", "acceptedSpec")
	if jsonEqual(oa, na) {
		return false, true
	}
	c.mu.Lock()
	r := c.results[new.GetNamespace()+"/"+new.GetName()]
	c.mu.Unlock()
	runs := r != nil && r.obj.uid == new.GetUID() && r.obj.generation == new.GetGeneration() && r.current == nil
	return !runs, true
}

func routeChanged(old, new *unstructured.Unstructured) (bool, bool) {
	if old == nil || new == nil {
		return true, false
	}
	oh, _, _ := unstructured.NestedFieldNoCopy(old.Object, "spec", "hostnames")
	nh, _, _ := unstructured.NestedFieldNoCopy(new.Object, "spec", "hostnames")
	return !jsonEqual(oh, nh), false
}

func (c *Controller) setup(inf cache.SharedIndexInformer, what string, ch change) {
	// A failed list or watch (no RBAC, the API server away) is said in
	// corsproc's own log; the informer tries again with a backoff.
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if errors.Is(err, io.EOF) {
			return // a watch closed normally
		}
		c.log.Warn("listing or watching "+what+" failed; trying again", "error", err.Error())
	})
	// The stores keep what Compose and the status need, not the
	// managedFields, which are most of a small object's bytes.
	_ = inf.SetTransform(func(obj any) (any, error) {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			u.SetManagedFields(nil)
			u.SetAnnotations(nil)
		}
		return obj, nil
	})
	on := func(old, new any) {
		compose, status := ch(asUnstructured(old), asUnstructured(new))
		if compose {
			signal(c.changed)
		} else if status {
			signal(c.dirty)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { on(nil, obj) },
		UpdateFunc: on,
		DeleteFunc: func(obj any) { on(obj, nil) },
	})
}

func asUnstructured(obj any) *unstructured.Unstructured {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// object is what the controller reads of one CORSPolicy.
type object struct {
	namespace, name string
	uid             types.UID
	generation      int64
	spec            []byte         // JSON
	specValue       any            // for status.acceptedSpec
	accepted        []byte         // status.acceptedSpec as JSON; nil when absent
	acceptedGen     int64          // status.acceptedGeneration
	status          map[string]any // as stored, to compare what would be written
}

func (o *object) key() string { return o.namespace + "/" + o.name }

// objects lists the stored CORSPolicy objects, by namespace then name.
func (c *Controller) objects() []*object {
	var out []*object
	for _, inf := range c.policies {
		for _, item := range inf.GetStore().List() {
			if u := asUnstructured(item); u != nil {
				out = append(out, readObject(u))
			}
		}
	}
	slices.SortFunc(out, func(a, b *object) int { return strings.Compare(a.key(), b.key()) })
	return out
}

func readObject(u *unstructured.Unstructured) *object {
	o := &object{namespace: u.GetNamespace(), name: u.GetName(), uid: u.GetUID(), generation: u.GetGeneration()}
	o.specValue = u.Object["spec"]
	if o.specValue == nil {
		o.specValue = map[string]any{}
	}
	o.spec, _ = json.Marshal(o.specValue) // decoded from JSON: always marshals
	o.status, _ = u.Object["status"].(map[string]any)
	if a, ok := o.status["acceptedSpec"]; ok && a != nil {
		o.accepted, _ = json.Marshal(a)
	}
	o.acceptedGen, _, _ = unstructured.NestedInt64(u.Object, "status", "acceptedGeneration")
	return o
}

// routeHosts are the hostnames of each namespace's HTTPRoutes, sorted.
func (c *Controller) routeHosts() map[string][]string {
	out := map[string][]string{}
	for _, inf := range c.routes {
		for _, item := range inf.GetStore().List() {
			u := asUnstructured(item)
			if u == nil {
				continue
			}
			hosts, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "hostnames")
			out[u.GetNamespace()] = append(out[u.GetNamespace()], hosts...)
		}
	}
	for ns, hosts := range out {
		slices.Sort(hosts)
		out[ns] = slices.Compact(hosts)
	}
	return out
}

// result is what Compose made of one object.
type result struct {
	obj      *object
	current  error            // nil: the current spec runs
	fallback error            // why status.acceptedSpec does not run either (when current failed)
	running  *policy.Admitted // what runs for it; nil for nothing
}

type admitKey struct {
	key      string
	accepted bool // status.acceptedSpec rather than spec
}

// admitted is one admission, kept while its inputs stay the same: a
// thousand objects are not compiled again when one of them changes.
type admitted struct {
	central *policy.Set
	uid     types.UID
	spec    string
	hosts   string
	a       *policy.Admitted
	err     error
}

// Compose admits every stored object against central, as the package
// says, and returns central with those that run; extproc's Policies call
// it with their lock held.
func (c *Controller) Compose(central *policy.Set) *policy.Set {
	if !c.synced.Load() {
		// A partial list would run some objects and not others; until the
		// watch has listed everything the file's set runs alone (and
		// readiness says not ready).
		return central
	}
	objs := c.objects()
	hosts := c.routeHosts()
	c.mu.Lock()
	defer c.mu.Unlock()
	results := make(map[string]*result, len(objs))
	cache := make(map[admitKey]admitted, len(objs))
	var run []*policy.Admitted
	for _, o := range objs {
		r := &result{obj: o}
		routeHosts := hosts[o.namespace]
		var a *policy.Admitted
		a, r.current = c.admit(cache, central, o, o.spec, false, routeHosts)
		if r.current != nil {
			if o.accepted == nil {
				r.fallback = errNoAcceptedSpec
			} else {
				a, r.fallback = c.admit(cache, central, o, o.accepted, true, routeHosts)
			}
		}
		r.running = a
		if a != nil {
			run = append(run, a)
		}
		results[o.key()] = r
	}
	c.admitted, c.results = cache, results
	set, err := central.With(run)
	if err != nil { // every Admitted comes from central: cannot happen
		c.log.Error("composing the CORSPolicy objects failed; the policy file's set runs alone", "error", err.Error())
		set = central
	}
	signal(c.dirty)
	return set
}

var errNoAcceptedSpec = errors.New("no spec was accepted before")

// admit is central.Admit of spec, or the same admission as last time when
// nothing it depends on changed; next collects what was used.
func (c *Controller) admit(next map[admitKey]admitted, central *policy.Set, o *object, spec []byte, accepted bool, routeHosts []string) (*policy.Admitted, error) {
	k := admitKey{o.key(), accepted}
	hosts := strings.Join(routeHosts, ",")
	if prev, ok := c.admitted[k]; ok && prev.central == central && prev.uid == o.uid && prev.spec == string(spec) && prev.hosts == hosts {
		next[k] = prev
		return prev.a, prev.err
	}
	a, err := central.Admit(policy.Contribution{
		Namespace:  o.namespace,
		Name:       o.name,
		Source:     "CORSPolicy " + o.key(),
		Spec:       spec,
		RouteHosts: routeHosts,
	})
	next[k] = admitted{central: central, uid: o.uid, spec: string(spec), hosts: hosts, a: a, err: err}
	return a, err
}

// String says what runs for r's object, for the log.
func (r *result) String() string {
	switch {
	case r.current == nil:
		return fmt.Sprintf("generation %d runs", r.obj.generation)
	case r.running != nil:
		return fmt.Sprintf("generation %d refused; generation %d keeps running", r.obj.generation, r.obj.acceptedGen)
	default:
		return fmt.Sprintf("generation %d refused; nothing runs", r.obj.generation)
	}
}
