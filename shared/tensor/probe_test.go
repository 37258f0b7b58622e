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
