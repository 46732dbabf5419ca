package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/corsproc/corsproc/api/v1alpha1"
	"github.com/corsproc/corsproc/policy"
)

// The Accepted condition's reasons.
const (
	// ReasonAccepted: the current spec runs.
	ReasonAccepted = "Accepted"
	// ReasonRefused: the current spec was refused and nothing runs for
	// the object.
	ReasonRefused = "Refused"
	// ReasonRefusedKeepsAccepted: the current spec was refused and the
	// one in status.acceptedSpec keeps running.
	ReasonRefusedKeepsAccepted = "RefusedKeepsAccepted"
)

// maxMessage is metav1.Condition's limit on a message.
const maxMessage = 32768

// desired is the status the leader wants an object to have.
type desired struct {
	observedGeneration int64
	status             metav1.ConditionStatus
	reason, message    string
	acceptedGeneration int64
	acceptedSpec       any // nil: none was ever accepted
}

// want works out the status of o, as stored now, from r, the result of
// its generation.
func want(r *result, o *object) desired {
	d := desired{observedGeneration: o.generation, acceptedGeneration: o.acceptedGen, acceptedSpec: o.status["acceptedSpec"]}
	if r.current == nil {
		d.status, d.reason = metav1.ConditionTrue, ReasonAccepted
		d.message = fmt.Sprintf("generation %d runs as policy %s", o.generation, o.key())
		d.acceptedGeneration, d.acceptedSpec = o.generation, o.specValue
		if w := warnings(r.running); w != "" {
			d.message += ", with warnings:\n" + w
		}
		return d
	}
	d.status = metav1.ConditionFalse
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d is refused:\n%s\n", o.generation, problemText(r.current))
	switch {
	case r.running != nil:
		d.reason = ReasonRefusedKeepsAccepted
		fmt.Fprintf(&b, "status.acceptedSpec (generation %d) keeps running until a spec is accepted", o.acceptedGen)
	case errors.Is(r.fallback, errNoAcceptedSpec):
		d.reason = ReasonRefused
		b.WriteString("nothing runs for this object: no spec of it was accepted before")
	default:
		d.reason = ReasonRefused
		fmt.Fprintf(&b, "status.acceptedSpec (generation %d) is refused too, so nothing runs for this object:\n%s", o.acceptedGen, problemText(r.fallback))
	}
	d.message = truncate(b.String())
	return d
}

func warnings(a *policy.Admitted) string {
	if a == nil {
		return ""
	}
	var lines []string
	for _, w := range a.Warnings() {
		lines = append(lines, w.String())
	}
	return strings.Join(lines, "\n")
}

// problemText is every problem of err, one a line.
func problemText(err error) string { return err.Error() }

// truncate keeps a message within the condition's limit, whole runes.
func truncate(s string) string {
	const more = "\n... (cut: corsproc validate with the spec as a policy file lists every problem)"
	if len(s) <= maxMessage {
		return s
	}
	s = s[:maxMessage-len(more)]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + more
}

// fingerprint identifies a desired status, to write it only once.
func (d desired) fingerprint(uid types.UID) string {
	spec, _ := json.Marshal(d.acceptedSpec)
	return fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%s\x00%d\x00%s", uid, d.observedGeneration, d.status, d.reason, d.message, d.acceptedGeneration, spec)
}

// current reads o's stored status in the same terms, and its Accepted
// condition as stored.
func current(o *object) (desired, map[string]any) {
	var d desired
	st := o.status
	d.observedGeneration = asInt64(st["observedGeneration"])
	d.acceptedGeneration = asInt64(st["acceptedGeneration"])
	d.acceptedSpec = st["acceptedSpec"]
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == v1alpha1.ConditionAccepted {
			d.status = metav1.ConditionStatus(fmt.Sprint(m["status"]))
			d.reason, _ = m["reason"].(string)
			d.message, _ = m["message"].(string)
			return d, m
		}
	}
	return d, nil
}

func asInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

// writeStatusLoop writes status, as leader, whenever a composition or an
// object changed.
func (c *Controller) writeStatusLoop(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.dirty:
		case <-retry.C:
		}
		if !c.leader.Load() {
			continue
		}
		if failed := c.writeStatuses(ctx); failed > 0 && ctx.Err() == nil {
			retry.Reset(c.opts.RetryPeriod)
		}
	}
}

// writeStatuses brings every object's status to what the last
// composition says, writing only those that differ; it returns how many
// writes failed, to try again.
func (c *Controller) writeStatuses(ctx context.Context) (failed int) {
	c.mu.Lock()
	results := make([]*result, 0, len(c.results))
	for _, r := range c.results {
		results = append(results, r)
	}
	for k := range c.written {
		if c.results[k] == nil {
			delete(c.written, k) // a deleted object's
		}
	}
	c.mu.Unlock()
	slices.SortFunc(results, func(a, b *result) int { return strings.Compare(a.obj.key(), b.obj.key()) })
	stored := map[string]*object{}
	for _, o := range c.objects() {
		stored[o.key()] = o
	}
	for _, r := range results {
		if ctx.Err() != nil || !c.leader.Load() {
			return failed
		}
		o := stored[r.obj.key()]
		if o == nil || o.uid != r.obj.uid || o.generation != r.obj.generation {
			continue // gone or changed since: the next composition speaks for it
		}
		d := want(r, o)
		have, cond := current(o)
		fp := d.fingerprint(o.uid)
		c.mu.Lock()
		last := c.written[o.key()]
		c.mu.Unlock()
		if fp == have.fingerprint(o.uid) || fp == last {
			continue
		}
		if err := c.patchStatus(ctx, o, d, cond); err != nil {
			failed++
			if !apierrors.IsNotFound(err) {
				c.log.Warn("writing a CORSPolicy's status failed; trying again", "object", o.key(), "error", err.Error())
			}
			continue
		}
		c.mu.Lock()
		c.written[o.key()] = fp
		c.mu.Unlock()
		c.log.Debug("wrote CORSPolicy status", "object", o.key(), "generation", o.generation, "reason", d.reason, "identity", c.opts.Identity)
		if have.status != d.status || have.reason != d.reason || have.message != d.message {
			c.event(ctx, o, d)
		}
	}
	return failed
}

// patchStatus writes d with a JSON merge patch of the status subresource:
// only the status, keeping the conditions that are not corsproc's and an
// unchanged condition's lastTransitionTime.
func (c *Controller) patchStatus(ctx context.Context, o *object, d desired, cond map[string]any) error {
	now := metav1.Now().UTC().Format(time.RFC3339)
	transition := now
	if cond != nil && fmt.Sprint(cond["status"]) == string(d.status) {
		if t, ok := cond["lastTransitionTime"].(string); ok {
			transition = t
		}
	}
	conds := []any{map[string]any{
		"type": v1alpha1.ConditionAccepted, "status": string(d.status), "reason": d.reason, "message": d.message,
		"observedGeneration": d.observedGeneration, "lastTransitionTime": transition,
	}}
	old, _ := o.status["conditions"].([]any)
	for _, x := range old {
		if m, _ := x.(map[string]any); m != nil && m["type"] != v1alpha1.ConditionAccepted {
			conds = append(conds, m)
		}
	}
	status := map[string]any{"observedGeneration": d.observedGeneration, "conditions": conds}
	if d.acceptedSpec != nil {
		status["acceptedSpec"] = d.acceptedSpec
		status["acceptedGeneration"] = d.acceptedGeneration
	}
	patch, err := json.Marshal(map[string]any{
		// The uid makes the patch fail on an object deleted and created
		// again under the same name since it was read.
		"metadata": map[string]any{"uid": o.uid},
		"status":   status,
	})
	if err != nil {
		return err
	}
	_, err = c.dyn.Resource(CORSPolicies).Namespace(o.namespace).Patch(ctx, o.name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: "corsproc"}, "status")
	return err
}

// event records a change of the Accepted condition on the object.
func (c *Controller) event(ctx context.Context, o *object, d desired) {
	typ, reason := corev1.EventTypeNormal, d.reason
	if d.status != metav1.ConditionTrue {
		typ = corev1.EventTypeWarning
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", o.name, now.UnixNano()), Namespace: o.namespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "CORSPolicy",
			Namespace: o.namespace, Name: o.name, UID: o.uid,
		},
		Reason: reason, Message: d.message, Type: typ,
		Source:         corev1.EventSource{Component: "corsproc", Host: c.opts.Identity},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "corsproc.io/corsproc", ReportingInstance: truncateInstance(c.opts.Identity),
		Action: "Admit",
	}
	if _, err := c.core.Events(o.namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		c.log.Warn("recording an Event on a CORSPolicy failed", "object", o.key(), "error", err.Error())
	}
}

// truncateInstance keeps an Event's reportingInstance within its limit.
func truncateInstance(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}

// elect runs for the Lease until ctx is done, again after each loss: the
// holder writes status and Events, the others only compose.
func (c *Controller) elect(ctx context.Context) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: c.opts.LeaseNamespace, Name: c.opts.LeaseName},
		Client:     c.coord,
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.opts.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   c.opts.LeaseDuration,
			RenewDeadline:   c.opts.RenewDeadline,
			RetryPeriod:     c.opts.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            "corsproc",
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					c.mu.Lock()
					clear(c.written) // another holder may have written since
					c.mu.Unlock()
					c.leader.Store(true)
					c.log.Info("holding the Lease: this replica writes CORSPolicy status", "lease", c.opts.LeaseNamespace+"/"+c.opts.LeaseName, "identity", c.opts.Identity)
					signal(c.dirty)
				},
				OnStoppedLeading: func() {
					if c.leader.Swap(false) {
						c.log.Info("the Lease is lost or released", "identity", c.opts.Identity)
					}
				},
			},
		})
		if err != nil { // only for a configuration New has already checked
			c.log.Error("leader election", "error", err.Error())
			return
		}
		le.Run(ctx)
	}
}
