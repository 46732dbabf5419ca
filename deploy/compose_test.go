package deploy

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"golang.org/x/net/html"
)

const composeFile = "envoy/docker-compose.yaml"

// loadCompose loads a compose file as `docker compose` does (compose-go is
// its loader): schema validation, interpolation, normalisation, consistency
// checks, paths resolved against the file's folder. The caller's
// environment is ignored so that the result is the same everywhere.
func loadCompose(t *testing.T, file string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv([]string{}),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
		cli.WithNormalization(true),
		cli.WithInterpolation(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// flagValue returns the value of --name (as --name=v or --name v) in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func addrPort(t *testing.T, addr string) uint32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return uint32(n)
}

// published returns the host port a service publishes for a container port.
func published(t *testing.T, s types.ServiceConfig, target uint32) (hostIP string, port uint32) {
	t.Helper()
	for _, p := range s.Ports {
		if p.Target == target {
			n, err := strconv.ParseUint(p.Published, 10, 16)
			if err != nil {
				t.Fatalf("service %s publishes %d as %q", s.Name, target, p.Published)
			}
			return p.HostIP, uint32(n)
		}
	}
	t.Fatalf("service %s does not publish container port %d", s.Name, target)
	return "", 0
}

// mountFor returns the volume of s whose target holds the container path p.
func mountFor(s types.ServiceConfig, p string) (types.ServiceVolumeConfig, bool) {
	var best types.ServiceVolumeConfig
	found := false
	for _, v := range s.Volumes {
		if p == v.Target || strings.HasPrefix(p, strings.TrimSuffix(v.Target, "/")+"/") {
			if !found || len(v.Target) > len(best.Target) {
				best, found = v, true
			}
		}
	}
	return best, found
}

// hostPathOf maps a container path of s to the host path it is mounted from.
func hostPathOf(t *testing.T, s types.ServiceConfig, p string) string {
	t.Helper()
	v, ok := mountFor(s, p)
	if !ok || v.Type != types.VolumeTypeBind {
		t.Fatalf("service %s: %s is not bind-mounted from the host", s.Name, p)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, v.Target), "/")
	return filepath.Join(v.Source, filepath.FromSlash(rel))
}

var nginxListen = regexp.MustCompile(`(?m)^\s*listen\s+(\d+)\s*;`)

// pageGateway returns the gateway URL the demo page calls.
func pageGateway(t *testing.T) *url.URL {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(string(readRepoFile(t, "envoy/demo/page/index.html"))))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "meta" && attr(n, "name") == "corsproc-gateway" {
			u, err := url.Parse(attr(n, "content"))
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
	}
	t.Fatal(`the demo page has no <meta name="corsproc-gateway">`)
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestComposeDemo(t *testing.T) {
	p, err := loadCompose(t, repoPath(composeFile))
	if err != nil {
		t.Fatalf("docker compose would refuse %s: %v", composeFile, err)
	}
	envoyCfg := loadBootstrap(t, "envoy/envoy.yaml", readRepoFile(t, "envoy/envoy.yaml"))
	clusters := clustersByName(envoyCfg)
	service := func(t *testing.T, name string) types.ServiceConfig {
		t.Helper()
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("no service %q", name)
		}
		return s
	}

	t.Run("it has Envoy, corsproc, two demo services and the page", func(t *testing.T) {
		for _, name := range []string{"envoy", "corsproc", "orders", "legacy", "page"} {
			service(t, name)
		}
	})
	t.Run("every image is pinned to a version", func(t *testing.T) {
		for name, s := range p.Services {
			if s.Build != nil {
				continue
			}
			ref := s.Image
			if i := strings.Index(ref, "@"); i >= 0 {
				ref = ref[:i]
			}
			colon := strings.LastIndex(ref, ":")
			if colon < 0 || colon < strings.LastIndex(ref, "/") {
				t.Errorf("service %s: image %q has no tag", name, s.Image)
				continue
			}
			if tag := ref[colon+1:]; tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
				t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
			}
		}
		if !strings.Contains(service(t, "envoy").Image, "@sha256:") {
			t.Errorf("the Envoy image is not pinned by digest")
		}
	})
	t.Run("corsproc is built from the repository's Dockerfile", func(t *testing.T) {
		b := service(t, "corsproc").Build
		if b == nil {
			t.Fatal("service corsproc has no build section")
		}
		if b.Context != root {
			t.Errorf("build context is %s, want the repository root %s", b.Context, root)
		}
		if _, err := os.Stat(filepath.Join(b.Context, b.Dockerfile)); err != nil {
			t.Errorf("dockerfile: %v", err)
		}
	})
	t.Run("every file it mounts exists, read-only", func(t *testing.T) {
		for name, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					t.Errorf("service %s mounts a %s volume; the demo needs only files from the repository", name, v.Type)
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("service %s mounts %s: %v", name, v.Source, err)
				}
				if !v.ReadOnly {
					t.Errorf("service %s mounts %s writable", name, v.Source)
				}
			}
		}
	})
	t.Run("every published port is bound to loopback", func(t *testing.T) {
		for name, s := range p.Services {
			for _, port := range s.Ports {
				if ip := net.ParseIP(port.HostIP); ip == nil || !ip.IsLoopback() {
					t.Errorf("service %s publishes %d on %q: the demo must not be reachable from the network", name, port.Target, port.HostIP)
				}
			}
		}
	})

	t.Run("Envoy loads the checked envoy.yaml", func(t *testing.T) {
		s := service(t, "envoy")
		args := append(append([]string{}, s.Entrypoint...), s.Command...)
		cfg, ok := flagValue(args, "config-path")
		if !ok {
			if cfg, ok = flagValue(args, "c"); !ok {
				t.Fatalf("envoy's command %q names no --config-path", args)
			}
		}
		if got, want := hostPathOf(t, s, cfg), repoPath("envoy/envoy.yaml"); got != want {
			t.Errorf("envoy loads %s, want %s", got, want)
		}
	})
	t.Run("Envoy publishes its listener where the page calls it", func(t *testing.T) {
		listenerPort := listenerByName(t, envoyCfg, "ingress").GetAddress().GetSocketAddress().GetPortValue()
		_, pub := published(t, service(t, "envoy"), listenerPort)
		gw := pageGateway(t)
		if gw.Port() != strconv.Itoa(int(pub)) || gw.Hostname() != "localhost" {
			t.Errorf("the page calls %s, but Envoy's listener %d is published on localhost:%d", gw, listenerPort, pub)
		}
	})

	cs := service(t, "corsproc")
	args := []string(cs.Command)
	t.Run("corsproc serves gRPC where Envoy's ext_proc cluster points", func(t *testing.T) {
		if len(args) == 0 || args[0] != "serve" {
			t.Fatalf("corsproc's command is %q, want serve ...", args)
		}
		addr, ok := flagValue(args, "grpc-addr")
		if !ok {
			addr = ":9001"
		}
		c := clusters["corsproc"]
		if c == nil {
			t.Fatal("envoy.yaml has no corsproc cluster")
		}
		for _, ep := range clusterEndpoints(c) {
			if ep.Host != "corsproc" {
				t.Errorf("the corsproc cluster points at %s, not at the compose service corsproc", ep)
			}
			if ep.Port != addrPort(t, addr) {
				t.Errorf("the corsproc cluster points at port %d, corsproc listens on %s", ep.Port, addr)
			}
		}
	})
	t.Run("corsproc publishes its admin port", func(t *testing.T) {
		addr, ok := flagValue(args, "admin-addr")
		if !ok {
			addr = ":9002"
		}
		published(t, cs, addrPort(t, addr))
	})
	t.Run("corsproc watches the demo policy through a folder mount", func(t *testing.T) {
		cfg, ok := flagValue(args, "config")
		if !ok {
			t.Fatalf("corsproc's command %q names no --config", args)
		}
		if got, want := hostPathOf(t, cs, cfg), repoPath("envoy/demo-policy.yaml"); got != want {
			t.Errorf("corsproc loads %s, want %s", got, want)
		}
		v, _ := mountFor(cs, cfg)
		if fi, err := os.Stat(v.Source); err != nil || !fi.IsDir() {
			t.Errorf("the policy is mounted from %s, not a folder: an editor's rename-on-save would never reach the container", v.Source)
		}
	})
	t.Run("the demo services answer on the ports Envoy's clusters point at", func(t *testing.T) {
		for _, name := range []string{"orders", "legacy"} {
			s := service(t, name)
			conf := hostPathOf(t, s, "/etc/nginx/conf.d/default.conf")
			data, err := os.ReadFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			m := nginxListen.FindSubmatch(data)
			if m == nil {
				t.Fatalf("%s: no listen directive", conf)
			}
			c := clusters[name]
			if c == nil {
				t.Fatalf("envoy.yaml has no cluster %q", name)
			}
			for _, ep := range clusterEndpoints(c) {
				if ep.Host != name || strconv.Itoa(int(ep.Port)) != string(m[1]) {
					t.Errorf("cluster %q points at %s, but service %s listens on %s", name, ep, name, m[1])
				}
			}
		}
	})
	t.Run("the page is served on its own origin, the one the demo policy allows", func(t *testing.T) {
		s := service(t, "page")
		if hostPathOf(t, s, "/usr/share/nginx/html/index.html") != repoPath("envoy/demo/page/index.html") {
			t.Errorf("the page service does not serve envoy/demo/page/index.html")
		}
		_, pub := published(t, s, 80)
		origin := "http://localhost:" + strconv.Itoa(int(pub))
		if gw := pageGateway(t); gw.Scheme+"://"+gw.Host == origin {
			t.Errorf("the page and the gateway share the origin %s: nothing would be cross-origin", origin)
		}
		if !contains(demoPolicyOrigins(t), origin) {
			t.Errorf("the page's origin %s is not in demo-policy.yaml's defaults", origin)
		}
	})
}

func TestComposeCheckCatchesMistakes(t *testing.T) {
	tests := []struct {
		name    string
		compose string
	}{
		{"an unknown service key is refused", "services:\n  a:\n    image: nginx:1\n    volumez: []\n"},
		{"a port that is not a port is refused", "services:\n  a:\n    image: nginx:1\n    ports: [\"x:y\"]\n"},
		{"a dependency on a missing service is refused", "services:\n  a:\n    image: nginx:1\n    depends_on: [b]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "compose.yaml")
			if err := os.WriteFile(f, []byte(tt.compose), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := loadCompose(t, f); err == nil {
				t.Errorf("loaded without error:\n%s", tt.compose)
			}
		})
	}
}

// demoPolicyOrigins are the allowed_origins of demo-policy.yaml's defaults.
func demoPolicyOrigins(t *testing.T) []string {
	t.Helper()
	f := loadPolicyFile(t, "envoy/demo-policy.yaml")
	return f.Defaults.AllowedOrigins
}
