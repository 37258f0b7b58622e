package rollout

import (
	"math"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/metrics"
)

// TestDeriveWorld: TRL's GRPOConfig/RLOOConfig __post_init__ with
// num_processes: generation_batch_size = per_device_train_batch_size x
// num_processes x steps_per_generation (steps_per_generation defaults to
// gradient_accumulation_steps); a given generation_batch_size must be a
// multiple of the global batch (per_device x num_processes), and
// steps_per_generation is its quotient.
func TestDeriveWorld(t *testing.T) {
	p := func(v int) *int { return &v }
	for _, c := range []struct {
		perDevice, gas, world int
		gbs, spg              *int
		wantGB, wantSPG       int
		wantErr               string
	}{
		{4, 2, 1, nil, nil, 8, 2, ""},
		{4, 2, 2, nil, nil, 16, 2, ""},
		{2, 3, 4, nil, nil, 24, 3, ""},
		{4, 2, 2, p(24), nil, 24, 3, ""},
		{4, 2, 2, p(12), nil, 0, 0, "generation_batch_size (12) must be divisible by the global batch size (per_device_train_batch_size 4 x 2 processes)"},
		{4, 2, 2, nil, p(5), 40, 5, ""},
		{4, 2, 2, p(8), p(1), 0, 0, "can not be both configured"},
	} {
		gb, spg, err := Derive(c.perDevice, c.gas, c.world, c.gbs, c.spg)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%+v: err = %v, want %q", c, err, c.wantErr)
			}
			continue
		}
		if err != nil || gb != c.wantGB || spg != c.wantSPG {
			t.Errorf("%+v: %d, %d, %v; want %d, %d", c, gb, spg, err, c.wantGB, c.wantSPG)
		}
	}
}

// TestRowSeedsDistinct: RowSeed differs between rows and between seeds
// (each row of a generation has its own sampler).
func TestRowSeedsDistinct(t *testing.T) {
	seen := map[uint64]bool{}
	for _, s := range []uint64{0, 1, 0xdeadbeef} {
		for i := range 1000 {
			v := RowSeed(s, i)
			if seen[v] {
				t.Fatalf("RowSeed(%d, %d) = %d repeats", s, i, v)
			}
			seen[v] = true
		}
	}
}

// TestAddStatsOneProcess: in a world of one, a mean Stat is Sum/N (0
// when N is 0, TRL's clamp(min=1)), a min or max Stat is its value, and
// a NaN min/max (no sequence had one) is not logged.
func TestAddStatsOneProcess(t *testing.T) {
	var o Online[int]
	var acc metrics.Accumulator
	o.AddStats(&acc, []Stat{{Key: "entropy", Sum: 6, N: 4}, {Key: "kl", Sum: 0, N: 0},
		{Key: "low_min", Sum: 0.25, Op: StatMin}, {Key: "high_max", Sum: math.NaN(), Op: StatMax}})
	got := acc.Means()
	want := map[string]float64{"entropy": 1.5, "kl": 0, "low_min": 0.25}
	if len(got) != len(want) {
		t.Fatalf("logged %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %g, want %g", k, got[k], v)
		}
	}
}
