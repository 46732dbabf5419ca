package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/testutil"
)

// TestProcessMutualTLS runs corsproc with --tls-client-ca and puts the
// stand-in in front of it with and without a client certificate: with
// one, the gateway works; without, corsproc refuses the connection and the
// gateway fails closed (500), or open with failure_mode_allow.
func TestProcessMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testutil.NewCA(t, "corsproc e2e CA")
	serverCert, serverKey := ca.Issue(t, 2, false)
	clientCert, clientKey := ca.Issue(t, 3, true)
	p := startCorsproc(t,
		"--tls-cert", testutil.WriteFile(t, dir, "tls.crt", string(serverCert)),
		"--tls-key", testutil.WriteFile(t, dir, "tls.key", string(serverKey)),
		"--tls-client-ca", testutil.WriteFile(t, dir, "ca.crt", string(ca.PEM)))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := testutil.Pair(t, clientCert, clientKey)
	withCert := grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{client}}))
	noCert := grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots}))
	up := startUpstream(t)
	cases := []struct {
		name      string
		dial      grpc.DialOption
		allowFail bool
		status    int
	}{
		{"a gateway with a client certificate is served", withCert, false, 204},
		{"a gateway without a client certificate is refused and fails closed", noCert, false, 500},
		{"a gateway without a client certificate is refused and, with failure_mode_allow, lets the request through untouched", noCert, true, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := startEnvoy(t, p.grpcAddr, up, func(cfg *envoytest.Config) {
				cfg.DialOptions = []grpc.DialOption{c.dial}
				cfg.FailureModeAllow = c.allowFail
			})
			if got := preflightStatus(t, e, "http://localhost:3000"); got != c.status {
				t.Errorf("preflight: %d, want %d", got, c.status)
			}
		})
	}
	if st, err := health(t, p.grpcAddr, withCert); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health over mTLS: %v %v", st, err)
	}
}
