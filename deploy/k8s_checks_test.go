package deploy

import (
	"path"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"github.com/corsproc/corsproc/policy"
)

// checkWorkloads holds every Deployment of a rendering to what makes it
// start and stay up the first time: labels and selectors agree, probes and
// Service ports hit declared ports, mounted ConfigMaps exist, resources
// are set, and the pod passes the "restricted" Pod Security Standard.
func checkWorkloads(t *testing.T, r *rendering) {
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all[*appsv1.Deployment](r) {
		pod := d.Spec.Template
		t.Run("Deployment "+d.Name+" selects its own pods", func(t *testing.T) {
			if !selects(t, d.Spec.Selector, pod.Labels) {
				t.Errorf("selector %v does not match template labels %v", d.Spec.Selector.MatchLabels, pod.Labels)
			}
			for _, tsc := range pod.Spec.TopologySpreadConstraints {
				if !selects(t, tsc.LabelSelector, pod.Labels) {
					t.Errorf("topology spread on %s does not select the pods", tsc.TopologyKey)
				}
			}
		})
		t.Run("Deployment "+d.Name+" runs at least two replicas", func(t *testing.T) {
			if d.Spec.Replicas != nil {
				if *d.Spec.Replicas < 2 {
					t.Errorf("replicas %v", *d.Spec.Replicas)
				}
				return
			}
			// No replicas (as a Helm chart leaves it under an HPA, so that
			// an upgrade does not reset the count): the HPA's floor counts.
			for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](r) {
				if h.Namespace == d.Namespace && h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
					if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
						t.Errorf("replicas unset and the HPA's minReplicas is %v", h.Spec.MinReplicas)
					}
					return
				}
			}
			t.Errorf("replicas unset (1) and no HPA scales the Deployment")
		})
		t.Run("Deployment "+d.Name+" passes the restricted Pod Security Standard", func(t *testing.T) {
			res := psapolicy.AggregateCheckResults(eval.EvaluatePod(
				psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec))
			if !res.Allowed {
				t.Errorf("forbidden: %s", res.ForbiddenDetail())
			}
		})
		t.Run("Deployment "+d.Name+" has a read-only root, a token only for --kubernetes, and resources", func(t *testing.T) {
			wantToken := false
			for _, c := range pod.Spec.Containers {
				wantToken = wantToken || (c.Name == "corsproc" && runsKubernetes(c.Args))
			}
			mounted := pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken
			switch {
			case mounted && !wantToken:
				t.Errorf("the service account token is mounted: only corsproc --kubernetes talks to the API server")
			case wantToken && (pod.Spec.AutomountServiceAccountToken == nil || !*pod.Spec.AutomountServiceAccountToken):
				t.Errorf("corsproc --kubernetes runs without a mounted service account token: its in-cluster client cannot authenticate")
			}
			for _, c := range pod.Spec.Containers {
				sc := c.SecurityContext
				if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("container %s: root filesystem is writable", c.Name)
				}
				for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					if _, ok := c.Resources.Requests[res]; !ok {
						t.Errorf("container %s: no %s request", c.Name, res)
					}
					if _, ok := c.Resources.Limits[res]; !ok {
						t.Errorf("container %s: no %s limit", c.Name, res)
					}
				}
			}
		})
		t.Run("Deployment "+d.Name+" probes declared ports", func(t *testing.T) {
			for _, c := range pod.Spec.Containers {
				for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
					port, ok := probePort(p)
					if !ok {
						t.Errorf("container %s has no %s probe", c.Name, what)
						continue
					}
					if _, ok := containerPort(c, port); !ok {
						t.Errorf("container %s: %s probe on port %s, which the container does not declare", c.Name, what, port.String())
					}
				}
			}
		})
		t.Run("Deployment "+d.Name+" mounts only what exists", func(t *testing.T) {
			if sa := pod.Spec.ServiceAccountName; sa != "" && sa != "default" {
				if _, ok := find[*corev1.ServiceAccount](r, d.Namespace, sa); !ok {
					t.Errorf("service account %q is not rendered", sa)
				}
			}
			for _, v := range pod.Spec.Volumes {
				if v.ConfigMap != nil {
					if _, ok := find[*corev1.ConfigMap](r, d.Namespace, v.ConfigMap.Name); !ok {
						t.Errorf("volume %s: ConfigMap %q is not rendered", v.Name, v.ConfigMap.Name)
					}
				}
			}
			for _, c := range pod.Spec.Containers {
				for _, m := range c.VolumeMounts {
					if m.SubPath != "" || m.SubPathExpr != "" {
						t.Errorf("container %s mounts %s with a subPath: it would never see a ConfigMap update", c.Name, m.Name)
					}
				}
			}
		})
	}

	for _, s := range all[*corev1.Service](r) {
		t.Run("Service "+s.Name+" selects pods and their ports", func(t *testing.T) {
			var matched []*appsv1.Deployment
			for _, d := range all[*appsv1.Deployment](r) {
				if d.Namespace == s.Namespace && len(s.Spec.Selector) > 0 &&
					selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, d.Spec.Template.Labels) {
					matched = append(matched, d)
				}
			}
			if len(matched) != 1 {
				t.Fatalf("selector %v matches %d Deployments, want 1", s.Spec.Selector, len(matched))
			}
			for _, sp := range s.Spec.Ports {
				target := sp.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(sp.Port)
				}
				found := false
				for _, c := range matched[0].Spec.Template.Spec.Containers {
					_, ok := containerPort(c, target)
					found = found || ok
				}
				if !found {
					t.Errorf("port %s targets %s, which no container declares", sp.Name, target.String())
				}
			}
		})
	}
	for _, p := range all[*policyv1.PodDisruptionBudget](r) {
		t.Run("PodDisruptionBudget "+p.Name+" covers a Deployment that can lose a pod", func(t *testing.T) {
			ok := false
			for _, d := range all[*appsv1.Deployment](r) {
				ok = ok || (d.Namespace == p.Namespace && selects(t, p.Spec.Selector, d.Spec.Template.Labels))
			}
			if !ok {
				t.Errorf("selector %v matches no Deployment", p.Spec.Selector.MatchLabels)
			}
		})
	}
	for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](r) {
		t.Run("HorizontalPodAutoscaler "+h.Name+" scales a Deployment that requests CPU", func(t *testing.T) {
			ref := h.Spec.ScaleTargetRef
			d, ok := find[*appsv1.Deployment](r, h.Namespace, ref.Name)
			if !ok || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
				t.Fatalf("scale target %+v is not a rendered Deployment", ref)
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
				t.Errorf("minReplicas %v, want at least 2", h.Spec.MinReplicas)
			}
			if d.Spec.Replicas != nil && h.Spec.MinReplicas != nil && *d.Spec.Replicas < *h.Spec.MinReplicas {
				t.Errorf("the Deployment's %d replicas are below the HPA's minimum", *d.Spec.Replicas)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
					t.Errorf("container %s has no CPU request: CPU utilisation is undefined", c.Name)
				}
			}
		})
	}
}

// checkNamespaces asserts every namespaced object lives in a namespace the
// rendering creates, or in one its gateway brings.
func checkNamespaces(t *testing.T, r *rendering, external ...string) {
	t.Run("every object's namespace exists", func(t *testing.T) {
		for _, o := range r.Objects {
			if o.Kind == "Namespace" || o.Namespace == "" || contains(external, o.Namespace) {
				continue
			}
			if _, ok := find[*corev1.Namespace](r, "", o.Namespace); !ok {
				t.Errorf("%s is in namespace %q, which is not rendered", o, o.Namespace)
			}
		}
	})
}

const corsprocNS = "corsproc"

// pod describes a pod that must or must not reach corsproc.
type pod struct {
	Namespace string
	Labels    map[string]string
}

// admits evaluates a NetworkPolicy for a connection from a pod to a named
// or numbered port of the selected pods, as the CNI would.
func admits(t *testing.T, np *networkingv1.NetworkPolicy, target corev1.Container, from pod, port string) bool {
	t.Helper()
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			if p.Port == nil {
				portOK = true
				continue
			}
			if cp, ok := containerPort(target, *p.Port); ok && (cp.Name == port || strconv.Itoa(int(cp.ContainerPort)) == port) {
				portOK = true
			}
		}
		if !portOK {
			continue
		}
		peerOK := len(rule.From) == 0
		for _, peer := range rule.From {
			if peer.IPBlock != nil {
				continue
			}
			nsOK := peer.NamespaceSelector == nil && from.Namespace == np.Namespace
			if peer.NamespaceSelector != nil {
				s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
				if err != nil {
					t.Fatal(err)
				}
				nsOK = s.Matches(mapLabels{"kubernetes.io/metadata.name": from.Namespace})
			}
			podOK := peer.PodSelector == nil
			if peer.PodSelector != nil {
				s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
				if err != nil {
					t.Fatal(err)
				}
				podOK = s.Matches(mapLabels(from.Labels))
			}
			peerOK = peerOK || (nsOK && podOK)
		}
		if peerOK {
			return true
		}
	}
	return false
}

// corsprocContainer returns the corsproc Deployment and its container.
func corsprocContainer(t *testing.T, r *rendering) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d := mustFind[*appsv1.Deployment](t, r, corsprocNS, "corsproc")
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "corsproc" {
			return d, c
		}
	}
	t.Fatalf("the corsproc Deployment has no container corsproc")
	return nil, corev1.Container{}
}

// checkCorsproc holds the corsproc Deployment, Service, ConfigMap and
// NetworkPolicy of a rendering to the contract: ports, probes, flags, policy,
// and who may connect.
func checkCorsproc(t *testing.T, r *rendering, gateway pod) {
	d, c := corsprocContainer(t, r)
	args := c.Args
	grpcAddr, ok := flagValue(args, "grpc-addr")
	if !ok {
		grpcAddr = ":9001"
	}
	adminAddr, ok := flagValue(args, "admin-addr")
	if !ok {
		adminAddr = ":9002"
	}
	t.Run("corsproc serves gRPC and admin on the declared ports, and only those", func(t *testing.T) {
		if len(args) == 0 || args[0] != "serve" {
			t.Fatalf("args %q, want serve ...", args)
		}
		g, a := addrPort(t, grpcAddr), addrPort(t, adminAddr)
		if g != grpcPort || a != adminPort {
			t.Errorf("gRPC on %d and admin on %d, the contract says %d and %d", g, a, grpcPort, adminPort)
		}
		want := map[string]int32{"grpc": int32(g), "metrics": int32(a)}
		if len(c.Ports) != len(want) {
			t.Errorf("container declares %d ports, want %d", len(c.Ports), len(want))
		}
		for name, port := range want {
			if cp, ok := containerPort(c, intstr.FromString(name)); !ok || cp.ContainerPort != port {
				t.Errorf("no container port %s = %d", name, port)
			}
		}
	})
	t.Run("corsproc's readiness and liveness probes ask the gRPC health service", func(t *testing.T) {
		for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.GRPC == nil {
				t.Errorf("%s probe is not a gRPC probe", what)
				continue
			}
			if uint32(p.GRPC.Port) != addrPort(t, grpcAddr) {
				t.Errorf("%s probe on port %d, gRPC is on %s", what, p.GRPC.Port, grpcAddr)
			}
		}
	})
	t.Run("Prometheus finds the metrics by annotation", func(t *testing.T) {
		ann := d.Spec.Template.Annotations
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" ||
			ann["prometheus.io/port"] != strconv.Itoa(int(addrPort(t, adminAddr))) {
			t.Errorf("annotations %v do not point at the admin port's /metrics", ann)
		}
	})
	t.Run("the pod outlives corsproc's shutdown grace", func(t *testing.T) {
		grace := 15 * time.Second
		if v, ok := flagValue(args, "shutdown-grace"); ok {
			var err error
			if grace, err = time.ParseDuration(v); err != nil {
				t.Fatal(err)
			}
		}
		tg := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		if tg == nil || time.Duration(*tg)*time.Second <= grace {
			t.Errorf("terminationGracePeriodSeconds %v is not longer than --shutdown-grace %v: the kubelet would kill corsproc mid-drain", tg, grace)
		}
	})
	t.Run("the policy corsproc loads is the ConfigMap's, and it passes corsproc validate", func(t *testing.T) {
		cfg, ok := flagValue(args, "config")
		if !ok {
			t.Fatal("no --config: corsproc would run the embedded development policy")
		}
		var mount *corev1.VolumeMount
		for i, m := range c.VolumeMounts {
			if path.Dir(cfg) == m.MountPath {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil {
			t.Fatalf("no volume is mounted at %s", path.Dir(cfg))
		}
		var cmName string
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == mount.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
		cm, ok := find[*corev1.ConfigMap](r, corsprocNS, cmName)
		if !ok {
			t.Fatalf("volume %s is not a rendered ConfigMap", mount.Name)
		}
		data, ok := cm.Data[path.Base(cfg)]
		if !ok {
			t.Fatalf("ConfigMap %s has no key %s", cm.Name, path.Base(cfg))
		}
		if _, err := policy.Parse("ConfigMap "+cm.Name+"/"+path.Base(cfg), []byte(data)); err != nil {
			t.Errorf("%v", err)
		}
	})
	t.Run("the Service speaks gRPC to corsproc's gRPC port", func(t *testing.T) {
		s := mustFind[*corev1.Service](t, r, corsprocNS, "corsproc")
		for _, sp := range s.Spec.Ports {
			cp, _ := containerPort(c, sp.TargetPort)
			if uint32(cp.ContainerPort) == addrPort(t, grpcAddr) {
				if sp.AppProtocol == nil || *sp.AppProtocol != "grpc" {
					t.Errorf("port %s has no appProtocol: grpc: gateways would speak HTTP/1.1 to it", sp.Name)
				}
				return
			}
		}
		t.Errorf("no Service port reaches gRPC")
	})

	np := mustFind[*networkingv1.NetworkPolicy](t, r, corsprocNS, "corsproc")
	t.Run("the NetworkPolicy covers corsproc's pods and blocks egress but to the API server with --kubernetes", func(t *testing.T) {
		if !selects(t, &np.Spec.PodSelector, d.Spec.Template.Labels) {
			t.Errorf("podSelector does not select corsproc's pods")
		}
		checkEgress(t, np, args)
	})
	prometheus := pod{"monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}}
	stranger := pod{"default", map[string]string{"app": "shop"}}
	tests := []struct {
		name string
		from pod
		port string
		want bool
	}{
		{"the gateway reaches the gRPC port", gateway, "grpc", true},
		{"the gateway does not reach the admin port", gateway, "metrics", false},
		{"Prometheus reaches the metrics port", prometheus, "metrics", true},
		{"Prometheus does not reach the gRPC port", prometheus, "grpc", false},
		{"another pod reaches neither port", stranger, "grpc", false},
		{"another pod does not reach the metrics port", stranger, "metrics", false},
	}
	for _, tt := range tests {
		t.Run("NetworkPolicy: "+tt.name, func(t *testing.T) {
			if got := admits(t, np, c, tt.from, tt.port); got != tt.want {
				t.Errorf("pod %v in %s to port %s: admitted %v, want %v", tt.from.Labels, tt.from.Namespace, tt.port, got, tt.want)
			}
		})
	}
}
