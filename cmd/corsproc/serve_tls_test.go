package main

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
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf for 127.0.0.1, for servers or clients, and returns
// its PEM certificate and key.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "corsproc-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func pair(t *testing.T, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

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

func tlsDial(ca *testCA, client ...tls.Certificate) grpc.DialOption {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: client}))
}

// TestServeOverTLS checks TLS and mTLS on the gRPC listener: who gets in
// and who is refused.
func TestServeOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := newCA(t, "corsproc test CA"), newCA(t, "another CA")
	certPEM, keyPEM := ca.issue(t, 10, false)
	clientCert := ca.issueClient(t)
	strangerCert := other.issueClient(t)
	files := map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "ca.pem": ca.pem}
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
		{"mTLS admits a client with a certificate from the client CA", append(tlsArgs, "--tls-client-ca", filepath.Join(dir, "ca.pem")), tlsDial(ca, clientCert), true},
		{"mTLS refuses a client without a certificate", append(tlsArgs, "--tls-client-ca", filepath.Join(dir, "ca.pem")), tlsDial(ca), false},
		{"mTLS refuses a client with a certificate from another CA", append(tlsArgs, "--tls-client-ca", filepath.Join(dir, "ca.pem")), tlsDial(ca, strangerCert), false},
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

func (ca *testCA) issueClient(t *testing.T) tls.Certificate {
	t.Helper()
	c, k := ca.issue(t, 99, true)
	return pair(t, c, k)
}

// servedSerial handshakes with the listener and returns the serial number
// of the certificate it presents.
func servedSerial(t *testing.T, addr string, ca *testCA) int64 {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
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
	ca := newCA(t, "corsproc test CA")
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := ca.issue(t, 1, false)
	replaceFile(t, certPath, c1)
	replaceFile(t, keyPath, k1)
	s := startServe(t, nil, "--tls-cert", certPath, "--tls-key", keyPath)
	if got := servedSerial(t, s.grpcAddr, ca); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	c2, k2 := ca.issue(t, 2, false)
	replaceFile(t, keyPath, k2)
	replaceFile(t, certPath, c2)
	waitUntil(t, "the new certificate to be served", 2*time.Second, func() bool { return servedSerial(t, s.grpcAddr, ca) == 2 })
	if st, err := healthStatus(t, s.conn(t, tlsDial(ca)), ""); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC over the new certificate: %v %v", st, err)
	}

	replaceFile(t, keyPath, []byte("not a key"))
	waitUntil(t, "the failure to be logged", 2*time.Second, func() bool {
		return strings.Contains(s.stderr.String(), "TLS reload failed")
	})
	if got := servedSerial(t, s.grpcAddr, ca); got != 2 {
		t.Errorf("a broken key replaced the running certificate: serial %d", got)
	}
}
