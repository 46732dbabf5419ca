package runner

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/corsproc/corsproc/extproc"
)

// certReloader serves the gRPC listener's certificate, key and client CA
// from files, and swaps in new ones when the files change (cert-manager
// and Kubernetes Secret volumes rewrite them in place or by symlink swap).
// Every handshake reads the current configuration from an atomic pointer;
// files that fail to load leave the running ones in place.
type certReloader struct {
	certFile, keyFile, caFile string
	log                       *slog.Logger

	cur atomic.Pointer[tls.Config]

	mu    sync.Mutex
	tried [sha256.Size]byte
}

func newCertReloader(certFile, keyFile, caFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, caFile: caFile, log: log}
	if _, err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads the files and swaps in a new configuration when they changed;
// it reports whether they did.
func (r *certReloader) load() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return false, fmt.Errorf("--tls-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return false, fmt.Errorf("--tls-key: %w", err)
	}
	var caPEM []byte
	if r.caFile != "" {
		if caPEM, err = os.ReadFile(r.caFile); err != nil {
			return false, fmt.Errorf("--tls-client-ca: %w", err)
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{certPEM, {0}, keyPEM, {0}, caPEM} {
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if sum == r.tried && r.cur.Load() != nil {
		return false, nil
	}
	r.tried = sum
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("--tls-cert %s and --tls-key %s: %w", r.certFile, r.keyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2"}, // gRPC requires ALPN h2
	}
	if r.caFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return false, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it", r.caFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	r.cur.Store(cfg)
	return true, nil
}

// serverConfig is the listener's configuration: every handshake takes the
// configuration current at that moment.
func (r *certReloader) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cfg := r.cur.Load()
			if cfg == nil {
				return nil, errors.New("no certificate loaded")
			}
			return cfg, nil
		},
	}
}

// reload is called when the files may have changed.
func (r *certReloader) reload() {
	changed, err := r.load()
	switch {
	case err != nil:
		r.log.Error("TLS reload failed; the running certificate stays", "error", err.Error())
	case changed:
		attrs := []any{"cert", r.certFile}
		if leaf := r.cur.Load().Certificates[0].Leaf; leaf != nil {
			attrs = append(attrs, "not_after", leaf.NotAfter)
		}
		r.log.Info("TLS certificate reloaded", attrs...)
	}
}

// watch reloads the files when they change, until ctx is done.
func (r *certReloader) watch(ctx context.Context) {
	files := []string{r.certFile, r.keyFile}
	if r.caFile != "" {
		files = append(files, r.caFile)
	}
	_ = extproc.WatchFiles(ctx, r.log, files, r.reload)
}
