package tensor

import (
	"math"
	"testing"
)

// TestMatmulGFLOPs: a positive, finite rate for both dtypes, the same
// figures on a second BF16Speed call (measured once), and an error for a
// size that cannot be timed.
func TestMatmulGFLOPs(t *testing.T) {
	for _, dt := range []DType{Float32, BFloat16} {
		g, err := MatmulGFLOPs(dt, 128, 2)
		if err != nil || !(g > 0) || math.IsInf(g, 0) {
			t.Errorf("%v: %v GFLOP/s, %v", dt, g, err)
		}
	}
	bf, fp, err := BF16Speed()
	bf2, fp2, _ := BF16Speed()
	if err != nil || !(bf > 0 && fp > 0) || bf != bf2 || fp != fp2 {
		t.Errorf("BF16Speed: %v %v %v, then %v %v", bf, fp, err, bf2, fp2)
	}
	t.Logf("1024³ matmul: bfloat16 %.0f GFLOP/s, float32 %.0f", bf, fp)
	if _, err := MatmulGFLOPs(Float32, 0, 1); err == nil {
		t.Error("n = 0: no error")
	}
}

// TestMatmulGFLOPsLeavesGenerator: timing draws no random numbers, so a
// seeded training run that warns about --bf16 draws the same ones.
func TestMatmulGFLOPsLeavesGenerator(t *testing.T) {
	draw := func(probe bool) []float32 {
		var v []float32
		Tidy(func() {
			ManualSeed(7)
			if probe {
				if _, err := MatmulGFLOPs(Float32, 64, 1); err != nil {
					t.Fatal(err)
				}
			}
			v = Randn([]int64{4}, Float32, CPU).Float32s()
		})
		return v
	}
	a, b := draw(false), draw(true)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draws after seeding: %v without the probe, %v with it", a, b)
		}
	}
}
