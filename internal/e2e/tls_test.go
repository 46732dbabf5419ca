package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsproc/corsproc/internal/envoytest"
)

// issue makes a certificate for 127.0.0.1 signed by parent (self-signed
// when parent is nil) and returns it with its key.
func issue(t *testing.T, parent *tls.Certificate, ca, client bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "corsproc e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage, tmpl.ExtKeyUsage = true, true, x509.KeyUsageCertSign, nil
	}
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func writePEM(t *testing.T, dir, name string, c tls.Certificate, withKey bool) string {
	t.Helper()
	var b []byte
	if withKey {
		k, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		b = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k})
	} else {
		b = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProcessMutualTLS runs corsproc with --tls-client-ca and puts the
// stand-in in front of it with and without a client certificate: with
// one, the gateway works; without, corsproc refuses the connection and the
// gateway fails closed (500), or open with failure_mode_allow.
func TestProcessMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := issue(t, nil, true, false)
	server := issue(t, &ca, false, false)
	client := issue(t, &ca, false, true)
	p := startCorsproc(t,
		"--tls-cert", writePEM(t, dir, "tls.crt", server, false),
		"--tls-key", writePEM(t, dir, "tls.key", server, true),
		"--tls-client-ca", writePEM(t, dir, "ca.crt", ca, false))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Leaf)
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
