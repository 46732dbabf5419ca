package doctor_test

import (
	"fmt"
	"path/filepath"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"

	"github.com/corsproc/corsproc/internal/doctor"
	"github.com/corsproc/corsproc/internal/doctor/doctortest"
)

// BenchmarkDecodeAndAnalyze reads a mesh-sized dump: the Istio gateway
// listener and its routes 500 times over (a few MB of JSON).
func BenchmarkDecodeAndAnalyze(b *testing.B) {
	one, err := doctortest.Istio(filepath.Join(root, "k8s", "overlays", "istio"))
	if err != nil {
		b.Fatal(err)
	}
	big := &adminv3.ConfigDump{}
	for range 500 {
		big.Configs = append(big.Configs, one.Configs...)
	}
	data, err := doctortest.Marshal(big)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d, _, err := doctor.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if fs := doctor.Analyze(d, doctor.Options{}); len(fs) != 0 {
			b.Fatal(fmt.Sprint(fs))
		}
	}
}
