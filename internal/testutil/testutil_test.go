package testutil

import (
	"testing"
	"time"
)

func TestScaleMultipliesByThePatienceVariable(t *testing.T) {
	cases := []struct {
		name, env string
		want      time.Duration
	}{
		{"no variable leaves the limit alone", "", 10 * time.Second},
		{"a factor of 3 triples it", "3", 30 * time.Second},
		{"a fraction shortens it", "0.5", 5 * time.Second},
		{"a value that is not a number is ignored", "slow", 10 * time.Second},
		{"a negative factor is ignored", "-1", 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(PatienceEnv, c.env)
			if got := Scale(10 * time.Second); got != c.want {
				t.Errorf("Scale(10s) = %v, want %v", got, c.want)
			}
		})
	}
}

func TestSampleFindsExactlyTheSeriesAsked(t *testing.T) {
	t.Parallel()
	const exposition = `# TYPE corsproc_config_reloads_total counter
corsproc_config_reloads_total{result="failure"} 2
corsproc_config_reloads_total{result="success"} 5
corsproc_requests 1e+06
`
	cases := []struct {
		name, series string
		want         float64
		ok           bool
	}{
		{"a labelled series is found", `corsproc_config_reloads_total{result="success"}`, 5, true},
		{"a value in exponent form is read", "corsproc_requests", 1e6, true},
		{"a name without its labels matches nothing", "corsproc_config_reloads_total", 0, false},
		{"an absent series is reported absent", "corsproc_nope", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Sample(t, exposition, c.series)
			if got != c.want || ok != c.ok {
				t.Errorf("Sample(%s) = %v, %v; want %v, %v", c.series, got, ok, c.want, c.ok)
			}
		})
	}
}
