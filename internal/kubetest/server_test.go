package kubetest_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/corsproc/corsproc/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// TestRestartKeepsWhatEtcdHolds: a namespace created before the API
// server restarts is there after it, at the same address.
func TestRestartKeepsWhatEtcdHolds(t *testing.T) {
	s := kubetest.Get(t)
	ctx := context.Background()
	if err := s.CreateNamespace(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	if err := s.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	cs, err := corev1client.NewForConfig(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Namespaces().Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}
