package tensor

import (
	"slices"
	"testing"
)

// TestDefaultEnv: the cooperative GOMP_SPINCOUNT and OpenBLAS's kernels
// for the CPU are added only where the user set none of the variables, and
// with a guard against re-executing twice.
func TestDefaultEnv(t *testing.T) {
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	add, notes := defaultEnv(get(nil), "Prescott", true, true)
	want := []string{"GOMP_SPINCOUNT=" + OMPSpinCount, "OPENBLAS_CORETYPE=SkylakeX", RLBLASDetected + "=Prescott", "RL_NO_REEXEC=1"}
	if !slices.Equal(add, want) || len(notes) != 2 {
		t.Errorf("nothing set, Prescott on AVX-512: %v (%v), want %v", add, notes, want)
	}
	for _, k := range []string{"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} {
		add, _ := defaultEnv(get(map[string]string{k: "1"}), "SkylakeX", true, true)
		if len(add) != 0 {
			t.Errorf("%s set, SkylakeX chosen: adds %v", k, add)
		}
	}
	if add, _ := defaultEnv(get(map[string]string{"RL_NO_REEXEC": "1"}), "Prescott", true, true); len(add) != 0 {
		t.Errorf("RL_NO_REEXEC set: adds %v", add)
	}
	add, _ = defaultEnv(get(map[string]string{"OPENBLAS_CORETYPE": "Haswell"}), "Haswell", true, true)
	if !slices.Equal(add, []string{"GOMP_SPINCOUNT=" + OMPSpinCount, "RL_NO_REEXEC=1"}) {
		t.Errorf("OPENBLAS_CORETYPE set by the user: %v", add)
	}
}

// TestBetterBLASCore: AVX-512 kernels on an AVX-512 CPU, AVX2 ones on an
// AVX2 CPU, and OpenBLAS's choice kept where it already fits or the BLAS
// is not OpenBLAS.
func TestBetterBLASCore(t *testing.T) {
	for _, c := range []struct {
		core         string
		avx512, avx2 bool
		want         string
	}{
		{"Prescott", true, true, "SkylakeX"},
		{"Haswell", true, true, "SkylakeX"}, // Zen 5 on OpenBLAS 0.3.21
		{"Zen", true, true, "SkylakeX"},
		{"SkylakeX", true, true, ""},
		{"Cooperlake", true, true, ""},
		{"SapphireRapids", true, true, ""},
		{"Prescott", false, true, "Haswell"},
		{"Sandybridge", false, true, "Haswell"},
		{"Zen", false, true, ""},
		{"Haswell", false, true, ""},
		{"Prescott", false, false, ""},
		{"", true, true, ""},
	} {
		if got := BetterBLASCore(c.core, c.avx512, c.avx2); got != c.want {
			t.Errorf("BetterBLASCore(%q, avx512 %v, avx2 %v) = %q, want %q", c.core, c.avx512, c.avx2, got, c.want)
		}
	}
}

// TestBLASCore: libtorch's BLAS here is OpenBLAS (tools/setup installs
// libopenblas0-openmp), so its kernels have a name.
func TestBLASCore(t *testing.T) {
	if BLASCore() == "" {
		t.Skip("libtorch's BLAS is not OpenBLAS")
	}
	t.Logf("OpenBLAS kernels: %s", BLASCore())
}
