package runner

import (
	"errors"
	"log/slog"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/corsproc/corsproc/internal/kube"
)

// newController builds the CORSPolicy controller of --kubernetes.
func newController(cfg Config, log *slog.Logger) (*kube.Controller, error) {
	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	ns := cfg.LeaseNamespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	return kube.New(kube.Options{Config: rc, Namespaces: cfg.KubernetesNamespaces, LeaseNamespace: ns, Log: log})
}

// restConfig is --kubeconfig's file, else the pod's in-cluster
// configuration, else $KUBECONFIG's file.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	rc, err := rest.InClusterConfig()
	if err == nil {
		return rc, nil
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
			&clientcmd.ConfigOverrides{}).ClientConfig()
	}
	return nil, errors.New("not in a pod (" + err.Error() + ") and neither --kubeconfig nor $KUBECONFIG is set")
}
