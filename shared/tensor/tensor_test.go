package tensor

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

func TestRoundTripAndOps(t *testing.T) {
	Tidy(func() {
		a := FromFloat32s([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
		if got := a.Shape(); len(got) != 2 || got[0] != 2 || got[1] != 3 {
			t.Fatalf("Shape = %v, want [2 3]", got)
		}
		b := a.Matmul(a.Transpose(0, 1)) // [[14 32] [32 77]]
		want := []float32{14, 32, 32, 77}
		for i, v := range b.Float32s() {
			if v != want[i] {
				t.Errorf("matmul[%d] = %g, want %g", i, v, want[i])
			}
		}
		s := a.Sum().Item()
		if s != 21 {
			t.Errorf("Sum = %g, want 21", s)
		}
		sm := a.Softmax(1).Float32s()
		e := []float64{math.Exp(1), math.Exp(2), math.Exp(3)}
		z := e[0] + e[1] + e[2]
		if !close(float64(sm[0]), e[0]/z, 1e-6) {
			t.Errorf("softmax[0] = %g, want %g", sm[0], e[0]/z)
		}
		g := FromFloat32s([]float32{1}, 1).GeluTanh().Item()
		if !close(g, 0.8411919906, 1e-6) {
			t.Errorf("GeluTanh(1) = %g, want 0.8411919906", g)
		}
		ids := FromInt64s([]int64{2, 0}, 2)
		emb := Embedding(a.Transpose(0, 1).Contiguous(), ids).Float32s() // rows of a^T: [3 6], [1 4]
		if emb[0] != 3 || emb[1] != 6 || emb[2] != 1 || emb[3] != 4 {
			t.Errorf("Embedding = %v, want [3 6 1 4]", emb)
		}
		parts := a.Split(2, 1)
		if len(parts) != 2 || parts[1].Size(1) != 1 {
			t.Errorf("Split sizes wrong: %v", parts)
		}
		sc := Scalar(2.5)
		if sc.Dim() != 0 || sc.Item() != 2.5 {
			t.Errorf("Scalar = %v %g", sc.Shape(), sc.Item())
		}
	})
}

func TestErrorsBecomeGoErrors(t *testing.T) {
	err := func() (err error) {
		defer Recover(&err, "multiply")
		Tidy(func() {
			a := Zeros([]int64{2, 3}, Float32)
			b := Zeros([]int64{4, 5}, Float32)
			a.Matmul(b)
		})
		return nil
	}()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if !strings.HasPrefix(err.Error(), "multiply: libtorch:") || strings.Contains(err.Error(), "Exception raised from") {
		t.Errorf("err = %q, want a short message prefixed with the operation", err)
	}
	// A replaced wrapper reports itself by name.
	if len(scopes) != 0 {
		t.Errorf("scope stack not unwound after panic: %d", len(scopes))
	}
}

func TestTidyFreesAndKeeps(t *testing.T) {
	var kept, tmp *Tensor
	Tidy(func() {
		tmp = Ones([]int64{3}, Float32, CPU)
		kept = tmp.MulScalar(2).Keep()
	})
	if tmp.Defined() {
		t.Error("temporary survived Tidy")
	}
	if !kept.Defined() || kept.Sum().Item() != 6 {
		t.Error("kept tensor lost")
	}
	kept.Free()
	kept.Free() // twice is fine
}

func TestNoGradNestsAndSurvivesPanic(t *testing.T) {
	if !GradEnabled() {
		t.Fatal("grad should start enabled")
	}
	NoGrad(func() {
		NoGrad(func() {})
		if GradEnabled() {
			t.Error("inner NoGrad re-enabled grad")
		}
	})
	func() {
		defer func() { recover() }()
		NoGrad(func() { panic("boom") })
	}()
	if !GradEnabled() {
		t.Error("grad not restored after panic")
	}
}

// TestAutogradFiniteDifference checks d/dx sum(log_softmax(x W)) against finite differences.
func TestAutogradFiniteDifference(t *testing.T) {
	xs := []float32{0.3, -1.2, 0.7, 0.1, 0.5, -0.4}
	ws := []float32{0.2, -0.3, 0.5, 0.9, -0.7, 0.4, 0.1, 0.8, -0.6}
	f := func(x []float32) float64 {
		var v float64
		Tidy(func() {
			X := FromFloat32s(x, 2, 3).ToDType(Float64)
			W := FromFloat32s(ws, 3, 3).ToDType(Float64)
			v = X.Matmul(W).LogSoftmax(1).Select(1, 0).Sum().ItemF64()
		})
		return v
	}
	var grad []float64
	Tidy(func() {
		X := FromFloat32s(xs, 2, 3).ToDType(Float64)
		X.SetRequiresGrad(true)
		W := FromFloat32s(ws, 3, 3).ToDType(Float64)
		X.Matmul(W).LogSoftmax(1).Select(1, 0).Sum().Backward()
		grad = X.Grad().Float64s()
	})
	for i := range xs {
		h := float32(1e-3)
		p := append([]float32(nil), xs...)
		m := append([]float32(nil), xs...)
		p[i] += h
		m[i] -= h
		fd := (f(p) - f(m)) / float64(2*h)
		if math.Abs(fd-grad[i]) > 1e-3 {
			t.Errorf("grad[%d] = %g, finite difference %g", i, grad[i], fd)
		}
	}
}

func TestCrossEntropyIgnoreIndex(t *testing.T) {
	Tidy(func() {
		logits := FromFloat32s([]float32{1, 2, 3, 1, 1, 1}, 2, 3)
		target := FromInt64s([]int64{2, -100}, 2)
		got := logits.CrossEntropy(target, -100, ReduceMean).Item()
		want := -(3 - math.Log(math.Exp(1)+math.Exp(2)+math.Exp(3)))
		if !close(got, want, 1e-6) {
			t.Errorf("CrossEntropy = %g, want %g (second row ignored)", got, want)
		}
	})
}

// TestAutocastBF16 checks CPU autocast: a linear layer computes in bfloat16
// inside it and float32 outside, its value matches the float32 product to
// bfloat16 precision, the float32 weight gets a float32 gradient close to
// the float32 one, and the state nests and is restored after a panic.
func TestAutocastBF16(t *testing.T) {
	xs := []float32{0.3, -1.2, 0.7, 0.1, 0.5, -0.4}
	ws := []float32{0.2, -0.3, 0.5, 0.9, -0.7, 0.4, 0.1, 0.8, -0.6}
	// y = x W^T, summed: dy/dW[j][k] = sum_i x[i][k].
	run := func(cast bool) (out []float64, dt DType, grad []float64, gdt DType) {
		Tidy(func() {
			X := FromFloat32s(xs, 2, 3)
			W := FromFloat32s(ws, 3, 3)
			W.SetRequiresGrad(true)
			var y *Tensor
			f := func() { y = X.Linear(W, nil) }
			if cast {
				Autocast(BFloat16, func() {
					if !AutocastEnabled() {
						t.Error("AutocastEnabled false inside Autocast")
					}
					f()
				})
			} else {
				f()
			}
			dt = y.DType()
			out = y.ToDType(Float64).Float64s()
			y.ToDType(Float32).Sum().Backward()
			g := W.Grad()
			gdt = g.DType()
			grad = g.ToDType(Float64).Float64s()
		})
		return
	}
	want, wdt, wgrad, _ := run(false)
	got, gdt, ggrad, ggdt := run(true)
	if wdt != Float32 || gdt != BFloat16 {
		t.Fatalf("linear output dtype: %v without autocast, %v with; want float32, bfloat16", wdt, gdt)
	}
	if ggdt != Float32 {
		t.Errorf("weight gradient dtype under autocast = %v, want float32", ggdt)
	}
	for i := range want {
		// Hand check of one entry: y[0][0] = 0.3*0.2 + -1.2*-0.3 + 0.7*0.5 = 0.77.
		if i == 0 && math.Abs(want[0]-0.77) > 1e-6 {
			t.Fatalf("float32 y[0][0] = %g, want 0.77", want[0])
		}
		if math.Abs(got[i]-want[i]) > 1e-2*math.Max(1, math.Abs(want[i])) {
			t.Errorf("bf16 y[%d] = %g, float32 %g", i, got[i], want[i])
		}
	}
	for i := range wgrad {
		if math.Abs(ggrad[i]-wgrad[i]) > 2e-2*math.Max(1, math.Abs(wgrad[i])) {
			t.Errorf("bf16 grad[%d] = %g, float32 %g", i, ggrad[i], wgrad[i])
		}
	}
	if AutocastEnabled() {
		t.Error("autocast still on after Autocast returned")
	}
	Autocast(BFloat16, func() {
		Autocast(BFloat16, func() {})
		if !AutocastEnabled() {
			t.Error("inner Autocast turned the outer one off")
		}
	})
	func() {
		defer func() { recover() }()
		Autocast(BFloat16, func() { panic("boom") })
	}()
	if AutocastEnabled() {
		t.Error("autocast not restored after a panic")
	}
}

// TestSearchsortedRight: per row, the count of entries <= each value
// (ties counted), as torch.searchsorted(right=True): by hand.
func TestSearchsortedRight(t *testing.T) {
	Tidy(func() {
		sorted := FromFloat32s([]float32{0.1, 0.3, 0.3, 0.6, 1, 0, 0, 2, 2, 2}, 2, 5)
		vals := FromFloat32s([]float32{0.3, 0.05, 1, 0, 2, 1.5}, 2, 3)
		got := sorted.SearchsortedRight(vals).Int64s()
		want := []int64{3, 0, 5, 2, 5, 2}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("searchsorted %v, want %v", got, want)
			}
		}
	})
}
