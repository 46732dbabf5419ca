package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsproc/corsproc/internal/testutil"
)

// replaceFile puts content at path by renaming a new file over it, as
// cert-manager and Secret volumes do.
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func tlsDial(ca *testutil.CA, client ...tls.Certificate) grpc.DialOption {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: client}))
}

// TestServeOverTLS checks TLS and mTLS on the gRPC listener: who gets in
// and who is refused.
func TestServeOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := testutil.NewCA(t, "corsproc test CA"), testutil.NewCA(t, "another CA")
	certPEM, keyPEM := ca.Issue(t, 10, false)
	clientCert := issueClient(t, ca)
	strangerCert := issueClient(t, other)
	files := map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "ca.PEM": ca.PEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tlsArgs := []string{"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem")}
	plain := grpc.WithTransportCredentials(insecure.NewCredentials())
	cases := []struct {
		name   string
		args   []string
		dial   grpc.DialOption
		admits bool
	}{
		{"TLS admits a client that trusts the CA", tlsArgs, tlsDial(ca), true},
		{"TLS refuses a plaintext client", tlsArgs, plain, false},
		{"mTLS admits a client with a certificate from the client CA", append(tlsArgs, "--tls-client-ca", filepath.Join(dir, "ca.PEM")), tlsDial(ca, clientCert), true},
		{"mTLS refuses a client without a certificate", append(tlsArgs, "--tls-client-ca", filepath.Join(dir, "ca.PEM")), tlsDial(ca), false},
		{"mTLS refuses a client with a certificate from another CA", append(tlsArgs, "--tls-client-ca", filepath.Join(dir, "ca.PEM")), tlsDial(ca, strangerCert), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := startServe(t, nil, c.args...)
			st, err := healthStatus(t, s.conn(t, c.dial), "")
			if c.admits && (err != nil || st != healthpb.HealthCheckResponse_SERVING) {
				t.Errorf("refused: %v %v", st, err)
			}
			if !c.admits && err == nil {
				t.Errorf("admitted: %v", st)
			}
		})
	}
}

func issueClient(t *testing.T, ca *testutil.CA) tls.Certificate {
	t.Helper()
	c, k := ca.Issue(t, 99, true)
	return testutil.Pair(t, c, k)
}

// servedSerial handshakes with the listener and returns the serial number
// of the certificate it presents.
func servedSerial(t *testing.T, addr string, ca *testutil.CA) int64 {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testutil.Patience()}, "tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN %q, want h2", p)
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestServeReloadsItsCertificate replaces the certificate files and checks
// new handshakes get the new one; broken files leave the old one serving.
func TestServeReloadsItsCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testutil.NewCA(t, "corsproc test CA")
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := ca.Issue(t, 1, false)
	replaceFile(t, certPath, c1)
	replaceFile(t, keyPath, k1)
	s := startServe(t, nil, "--tls-cert", certPath, "--tls-key", keyPath)
	if got := servedSerial(t, s.grpcAddr, ca); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	c2, k2 := ca.Issue(t, 2, false)
	replaceFile(t, keyPath, k2)
	replaceFile(t, certPath, c2)
	testutil.WaitUntil(t, "the new certificate to be served", func() bool { return servedSerial(t, s.grpcAddr, ca) == 2 })
	if st, err := healthStatus(t, s.conn(t, tlsDial(ca)), ""); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC over the new certificate: %v %v", st, err)
	}

	replaceFile(t, keyPath, []byte("not a key"))
	testutil.WaitUntil(t, "the failure to be logged", func() bool {
		return strings.Contains(s.stderr.String(), "TLS reload failed")
	})
	if got := servedSerial(t, s.grpcAddr, ca); got != 2 {
		t.Errorf("a broken key replaced the running certificate: serial %d", got)
	}
}
