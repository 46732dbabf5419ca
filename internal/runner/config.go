package runner

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/corsproc/corsproc/extproc"
	"github.com/corsproc/corsproc/internal/grpcserver"
)

// Config is what `corsproc serve` was asked to do. Every field that is a
// flag is registered by [Config.Flags], with its CORSPROC_* environment
// variable: the one place flags are named.
type Config struct {
	// PolicyFile is the policy file, watched and hot-reloaded; "" runs the
	// embedded development policy.
	PolicyFile string
	// GRPCAddr is the ext_proc listener: host:port or unix:///path.
	GRPCAddr string
	// AdminAddr is the admin HTTP listener's host:port.
	AdminAddr string
	// TLSCert and TLSKey serve gRPC over TLS; TLSClientCA asks for client
	// certificates signed by it (mTLS).
	TLSCert, TLSKey, TLSClientCA string
	// LogLevel and LogFormat ("json" or "text") shape the log.
	LogLevel  slog.Level
	LogFormat string
	// ShutdownGrace bounds the whole drain after the context ends.
	ShutdownGrace time.Duration
	// Lameduck is the part of ShutdownGrace spent serving while health
	// reports NOT_SERVING; [Config.Check] derives it when it is unset.
	Lameduck    time.Duration
	lameduckSet bool
	// Pprof serves /debug/pprof/ on the admin listener.
	Pprof bool
	// DebugHeaders adds x-corsproc-* headers to responses.
	DebugHeaders bool
	// MaxConcurrentStreams bounds the streams open at once on one
	// connection. Envoy does not heed a server's limit (envoy#13933): the
	// cluster's max_concurrent_streams should be at most this.
	MaxConcurrentStreams uint32
	// HandshakeTimeout closes a connection that has not finished its TLS
	// and HTTP/2 handshake by then.
	HandshakeTimeout time.Duration
	// ObserveTop is how many origins, methods and headers /observed keeps
	// per policy, for `corsproc suggest`: fixed memory whatever the traffic.
	ObserveTop int
	// Kubernetes adds the CORSPolicy objects of the cluster to the policy
	// file's policies, as its guardrails allow (package internal/kube).
	Kubernetes bool
	// KubernetesNamespaces are the namespaces watched; none means all.
	KubernetesNamespaces []string
	// Kubeconfig reaches the API server from outside the cluster; ""
	// means the pod's in-cluster configuration, else $KUBECONFIG.
	Kubeconfig string
	// LeaseNamespace holds the Lease of the replica that writes status:
	// corsproc's own namespace, $POD_NAMESPACE unless given.
	LeaseNamespace string
}

// Defaults is the configuration of `corsproc serve` with no flag given.
func Defaults() Config {
	return Config{
		GRPCAddr:             ":9001",
		AdminAddr:            ":9002",
		LogLevel:             slog.LevelInfo,
		LogFormat:            "json",
		ShutdownGrace:        15 * time.Second,
		MaxConcurrentStreams: grpcserver.Defaults.MaxConcurrentStreams,
		HandshakeTimeout:     grpcserver.Defaults.HandshakeTimeout,
		ObserveTop:           extproc.DefaultObserveK,
	}
}

// Flag is one serve flag and the environment variable that stands for it
// when the flag is not on the command line.
type Flag struct {
	Name  string
	Env   string
	Usage string
	// Accepts says what a value may be, for the environment variable's
	// error message.
	Accepts string
	Value   flag.Value
}

// Flags lists every serve flag, bound to c's fields.
func (c *Config) Flags() []Flag {
	return []Flag{
		{"config", "CORSPROC_CONFIG", "the policy `file`, watched and hot-reloaded; default: an embedded development policy allowing http://localhost:* and http://127.0.0.1:*", "a file path", (*stringValue)(&c.PolicyFile)},
		{"grpc-addr", "CORSPROC_GRPC_ADDR", "ext_proc gRPC listener `address`, host:port or unix:///path", "host:port or unix:///path", (*stringValue)(&c.GRPCAddr)},
		{"admin-addr", "CORSPROC_ADMIN_ADDR", "admin HTTP listener `address` (/metrics, /healthz, /readyz, /config, /explain)", "host:port", (*stringValue)(&c.AdminAddr)},
		{"tls-cert", "CORSPROC_TLS_CERT", "serve gRPC over TLS with this PEM certificate `file` (reloaded when it changes)", "a file path", (*stringValue)(&c.TLSCert)},
		{"tls-key", "CORSPROC_TLS_KEY", "the PEM private key `file` of --tls-cert", "a file path", (*stringValue)(&c.TLSKey)},
		{"tls-client-ca", "CORSPROC_TLS_CLIENT_CA", "require client certificates signed by this PEM CA `file` (mTLS)", "a file path", (*stringValue)(&c.TLSClientCA)},
		{"log-level", "CORSPROC_LOG_LEVEL", "log `level`: debug, info (the default), warn or error; debug logs one line per denial", "debug, info, warn or error", (*levelValue)(&c.LogLevel)},
		{"log-format", "CORSPROC_LOG_FORMAT", "log `format`: json or text", "json or text", (*formatValue)(&c.LogFormat)},
		{"shutdown-grace", "CORSPROC_SHUTDOWN_GRACE", "on SIGTERM: report NOT_SERVING at once, serve on for the lameduck part, then stop gracefully within the rest of this `duration`", "a duration such as 15s", (*durationValue)(&c.ShutdownGrace)},
		{"lameduck", "CORSPROC_LAMEDUCK", "the `duration`, within --shutdown-grace, spent serving while NOT_SERVING, so Envoy and Kubernetes stop sending first (default a third of --shutdown-grace, at most 5s)", "a duration such as 5s", &autoDuration{d: &c.Lameduck, set: &c.lameduckSet}},
		{"pprof", "CORSPROC_PPROF", "serve /debug/pprof/ on the admin listener", "true or false", (*boolValue)(&c.Pprof)},
		{"debug-headers", "CORSPROC_DEBUG_HEADERS", "add x-corsproc-decision and x-corsproc-reason to responses, and name the refused item of a preflight (never in production)", "true or false", (*boolValue)(&c.DebugHeaders)},
		{"max-concurrent-streams", "CORSPROC_MAX_CONCURRENT_STREAMS", "the most ext_proc streams (requests in flight) one gRPC connection may have open, `n`; set Envoy's cluster max_concurrent_streams to at most this, as Envoy does not heed the server's limit", "a whole number from 1", (*streamsValue)(&c.MaxConcurrentStreams)},
		{"handshake-timeout", "CORSPROC_HANDSHAKE_TIMEOUT", "close a gRPC connection that has not finished its TLS and HTTP/2 handshake within this `duration`", "a positive duration such as 10s", (*positiveDuration)(&c.HandshakeTimeout)},
		{"kubernetes", "CORSPROC_KUBERNETES", "also run the CORSPolicy objects of the Kubernetes cluster, each admitted by the policy file's guardrails; status and Events are written by one replica", "true or false", (*boolValue)(&c.Kubernetes)},
		{"kubernetes-namespaces", "CORSPROC_KUBERNETES_NAMESPACES", "watch CORSPolicy objects in these `namespaces` only, a comma-separated list (default all)", "a comma-separated list of namespaces", (*listValue)(&c.KubernetesNamespaces)},
		{"kubeconfig", "CORSPROC_KUBECONFIG", "a kubeconfig `file` for --kubernetes (default: the pod's service account, else $KUBECONFIG)", "a file path", (*stringValue)(&c.Kubeconfig)},
		{"kubernetes-lease-namespace", "CORSPROC_KUBERNETES_LEASE_NAMESPACE", "the `namespace` of the Lease that picks the replica writing CORSPolicy status: corsproc's own (default $POD_NAMESPACE)", "a namespace", (*stringValue)(&c.LeaseNamespace)},
		{"observe-top", "CORSPROC_OBSERVE_TOP", "keep the `k` most frequent origins, preflight methods and headers per policy in /observed, for corsproc suggest (fixed memory)", "a whole number from 1 to 1000", &observeTopValue{&c.ObserveTop}},
	}
}

// FlagSet registers c's flags on a new FlagSet named name that reports
// errors to output instead of exiting. Each flag's help names its
// environment variable.
func (c *Config) FlagSet(name string, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	for _, f := range c.Flags() {
		fs.Var(f.Value, f.Name, f.Usage+" (env "+f.Env+")")
	}
	return fs
}

// Parse fills c from the environment (through lookupEnv) and then args; a
// flag on the command line wins over its variable. For --help it prints
// the flags to stdout (help is read with a pager) and returns
// [flag.ErrHelp]; any other error names the flag or variable and says what
// it accepts, and nothing is printed.
func (c *Config) Parse(args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	fs := c.FlagSet("serve", io.Discard)
	for _, f := range c.Flags() {
		v, ok := lookupEnv(f.Env)
		if !ok || v == "" {
			continue
		}
		if err := fs.Set(f.Name, v); err != nil {
			return fmt.Errorf("%s=%q: want %s", f.Env, v, f.Accepts)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: corsproc serve [flags]\n\nEvery flag may be given as its CORSPROC_* environment variable instead; a flag on the command line wins.\n\nFlags:\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; the policy file is given with --config", fs.Arg(0))
	}
	return c.Check()
}

// Check rejects combinations no flag parser sees, and works out the
// lameduck when it was not given.
func (c *Config) Check() error {
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case c.GRPCAddr == "" || c.AdminAddr == "":
		return errors.New("--grpc-addr and --admin-addr must not be empty")
	case c.ShutdownGrace < 0:
		return errors.New("--shutdown-grace must not be negative")
	case c.MaxConcurrentStreams == 0:
		return errors.New("--max-concurrent-streams must be at least 1")
	case c.HandshakeTimeout <= 0:
		return errors.New("--handshake-timeout must be positive")
	case c.ObserveTop < 1 || c.ObserveTop > extproc.MaxObserveK:
		return fmt.Errorf("--observe-top must be from 1 to %d", extproc.MaxObserveK)
	case !c.Kubernetes && (len(c.KubernetesNamespaces) > 0 || c.Kubeconfig != "" || c.LeaseNamespace != ""):
		return errors.New("--kubernetes-namespaces, --kubeconfig and --kubernetes-lease-namespace need --kubernetes")
	}
	if !c.lameduckSet && c.Lameduck == 0 {
		c.Lameduck = min(c.ShutdownGrace/3, 5*time.Second)
	}
	if c.Lameduck > c.ShutdownGrace {
		return fmt.Errorf("--lameduck %v is longer than --shutdown-grace %v", c.Lameduck, c.ShutdownGrace)
	}
	return nil
}

// SetLameduck sets the lameduck explicitly, zero included (a bare zero in
// Config means "work it out").
func (c *Config) SetLameduck(d time.Duration) { c.Lameduck, c.lameduckSet = d, true }

type stringValue string

func (s *stringValue) String() string     { return string(*s) }
func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }

// listValue is a comma-separated list; empty items are dropped.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }
func (l *listValue) Set(v string) error {
	*l = nil
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

type boolValue bool

func (b *boolValue) String() string { return strconv.FormatBool(bool(*b)) }
func (b *boolValue) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("want true or false")
	}
	*b = boolValue(x)
	return nil
}
func (b *boolValue) IsBoolFlag() bool { return true }

type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("want a duration such as 15s")
	}
	*d = durationValue(x)
	return nil
}

type positiveDuration time.Duration

func (d *positiveDuration) String() string { return time.Duration(*d).String() }
func (d *positiveDuration) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil || x <= 0 {
		return errors.New("want a positive duration such as 10s")
	}
	*d = positiveDuration(x)
	return nil
}

type streamsValue uint32

func (n *streamsValue) String() string { return strconv.FormatUint(uint64(*n), 10) }
func (n *streamsValue) Set(v string) error {
	x, err := strconv.ParseUint(v, 10, 32)
	if err != nil || x == 0 {
		return errors.New("want a whole number from 1")
	}
	*n = streamsValue(x)
	return nil
}

type observeTopValue struct{ k *int }

func (v *observeTopValue) String() string {
	if v.k == nil {
		return ""
	}
	return strconv.Itoa(*v.k)
}
func (v *observeTopValue) Set(s string) error {
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 || k > extproc.MaxObserveK {
		return fmt.Errorf("want a whole number from 1 to %d", extproc.MaxObserveK)
	}
	*v.k = k
	return nil
}

type levelValue slog.Level

func (l *levelValue) String() string { return (*slog.Level)(l).String() }
func (l *levelValue) Set(v string) error {
	if err := (*slog.Level)(l).UnmarshalText([]byte(v)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	return nil
}

type formatValue string

func (f *formatValue) String() string { return string(*f) }
func (f *formatValue) Set(v string) error {
	if v != "json" && v != "text" {
		return errors.New("want json or text")
	}
	*f = formatValue(v)
	return nil
}

// autoDuration is a duration flag whose default is worked out from other
// flags when it is not given; its empty String keeps the help text from
// printing a made-up default.
type autoDuration struct {
	d   *time.Duration
	set *bool
}

func (a *autoDuration) String() string {
	if a == nil || a.set == nil || !*a.set {
		return ""
	}
	return a.d.String()
}

func (a *autoDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return errors.New("want a duration such as 5s, not negative")
	}
	*a.d, *a.set = d, true
	return nil
}
