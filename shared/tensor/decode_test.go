package tensor

import (
	"math"
	"strings"
	"testing"
)

// refAttention is single-query attention by libtorch ops, as rl's model
// computes it: repeat the kv heads, q k^T * scale, softcap, masked_fill
// with the dtype's lowest value, softmax, times v.
func refAttention(q, k, v, ok *Tensor, scale, softcap float64) *Tensor {
	if g := q.Size(1) / k.Size(1); g > 1 {
		k, v = k.RepeatInterleave(g, 1), v.RepeatInterleave(g, 1)
	}
	att := q.Matmul(k.Transpose(2, 3)).MulScalar(scale)
	if softcap > 0 {
		att = att.DivScalar(softcap).Tanh().MulScalar(softcap)
	}
	if ok != nil {
		att = att.MaskedFill(ok.LogicalNot(), MinValue(att.DType()))
	}
	B, nh, d := q.Size(0), q.Size(1), q.Size(3)
	return att.Softmax(-1).Matmul(v).Transpose(1, 2).Reshape(B, 1, nh*d)
}

// eachISA runs f under every instruction set of the decoding kernels the
// CPU has (baseline, AVX2, AVX-512), as a subtest each.
func eachISA(t *testing.T, f func(t *testing.T)) {
	best := KernelISA(0)
	defer KernelISA(0)
	for isa := 1; isa <= best; isa++ {
		if KernelISA(isa) != isa {
			t.Fatalf("KernelISA(%d) did not take", isa)
		}
		t.Run([]string{"", "baseline", "avx2", "avx512"}[isa], f)
	}
}

func maxAbsDiff(a, b *Tensor) float64 {
	return a.ToDType(Float32).Sub(b.ToDType(Float32)).Abs().Max().Item()
}

// TestDecodeAttentionMatchesOps checks the fused kernel against the op
// path: multi-head and grouped-query heads, head sizes with and without a
// tail of fewer than 16 channels, q a strided view (as the models' split
// and transpose give it) and k, v the first S positions of a larger cache
// buffer, keys masked per row (one row masked entirely), softcapping, and
// a prefix of P positions shared by rows (prefix rows 0, 1, 0, ...), which
// the op path sees copied before each row's keys.
func TestDecodeAttentionMatchesOps(t *testing.T) {
	ManualSeed(3)
	cases := []struct {
		name             string
		B, nh, nkv, S, d int64
		P                int64 // shared prefix positions (2 prefix rows); 0: none
		mask             bool
		softcap          float64
		dt               DType
		tol              float64
	}{
		{"mha d64", 3, 4, 4, 37, 64, 0, false, 0, Float32, 5e-6},
		{"gqa d72 masked", 3, 6, 2, 21, 72, 0, true, 0, Float32, 5e-6},
		{"gqa d64", 3, 4, 2, 21, 64, 0, false, 0, Float32, 5e-6},
		{"mha d64 masked", 3, 4, 4, 21, 64, 0, true, 0, Float32, 5e-6},
		{"gqa d20 softcap masked", 2, 4, 1, 40, 20, 0, true, 50, Float32, 5e-6},
		{"mha d128 one position", 2, 2, 2, 1, 128, 0, false, 0, Float32, 5e-6},
		{"bf16 gqa masked", 3, 4, 2, 33, 64, 0, true, 0, BFloat16, 2e-2},
		{"prefix mha d64", 5, 4, 4, 6, 64, 11, false, 0, Float32, 5e-6},
		{"prefix gqa d72 masked", 5, 6, 2, 3, 72, 19, true, 0, Float32, 5e-6},
		{"prefix only", 3, 2, 2, 0, 32, 7, true, 0, Float32, 5e-6},
		{"prefix bf16 gqa masked softcap", 4, 4, 2, 9, 64, 14, true, 30, BFloat16, 2e-2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachISA(t, func(t *testing.T) {
				NoGrad(func() {
					Tidy(func() {
						// q as a slice of a fused projection, transposed to (B, nh, 1, d)
						qkv := Randn([]int64{c.B, 1, 3 * c.nh * c.d}, Float32, CPU).ToDType(c.dt)
						q := qkv.Narrow(2, c.nh*c.d, c.nh*c.d).View(c.B, 1, c.nh, c.d).Transpose(1, 2)
						kbuf := Randn([]int64{c.B, c.nkv, c.S + 9, c.d}, Float32, CPU).MulScalar(2).ToDType(c.dt)
						vbuf := Randn([]int64{c.B, c.nkv, c.S + 9, c.d}, Float32, CPU).ToDType(c.dt)
						k, v := kbuf.Narrow(2, 0, c.S), vbuf.Narrow(2, 0, c.S)
						var pk, pv, rows *Tensor
						kf, vf := k, v // what the op path attends over
						if c.P > 0 {
							pk = Randn([]int64{2, c.nkv, c.P, c.d}, Float32, CPU).MulScalar(2).ToDType(c.dt)
							pv = Randn([]int64{2, c.nkv, c.P, c.d}, Float32, CPU).ToDType(c.dt)
							r := make([]int64, c.B)
							for b := range r {
								r[b] = int64(b % 2)
							}
							rows = FromInt64s(r, c.B)
							kf = Cat([]*Tensor{pk.IndexSelect(0, rows), k}, 2)
							vf = Cat([]*Tensor{pv.IndexSelect(0, rows), v}, 2)
						}
						S := c.P + c.S
						var ok *Tensor
						if c.mask {
							m := make([]int64, c.B*S)
							for b := int64(0); b < c.B; b++ {
								for j := int64(0); j < S; j++ {
									if b != 1 && (j+b)%3 != 0 { // row 1: no allowed key
										m[b*S+j] = 1
									}
								}
							}
							ok = FromInt64s(m, c.B, 1, 1, S).NeScalar(0)
						}
						scale := 1 / math.Sqrt(float64(c.d))
						got := DecodeAttention(q, k, v, pk, pv, rows, ok, scale, c.softcap)
						want := refAttention(q.ToDType(Float32), kf.ToDType(Float32), vf.ToDType(Float32), ok, scale, c.softcap)
						if s := got.Shape(); len(s) != 3 || s[0] != c.B || s[1] != 1 || s[2] != c.nh*c.d {
							t.Fatalf("shape %v, want [%d 1 %d]", s, c.B, c.nh*c.d)
						}
						if got.DType() != c.dt {
							t.Fatalf("dtype %v, want %v", got.DType(), c.dt)
						}
						if d := maxAbsDiff(got, want); d > c.tol || math.IsNaN(d) {
							t.Errorf("max |fused - ops| = %g, want <= %g", d, c.tol)
						}
					})
				})
			})
		})
	}
}

// TestKernelsRejectBadInput: shapes and values the kernels cannot take
// come back as errors naming what is wrong, not crashes.
func TestKernelsRejectBadInput(t *testing.T) {
	for _, c := range []struct {
		name, want string
		run        func()
	}{
		{"3 heads over 2 kv heads", "do not fit", func() {
			q := Zeros([]int64{2, 3, 1, 8}, Float32)
			k := Zeros([]int64{2, 2, 5, 8}, Float32)
			DecodeAttention(q, k, k, nil, nil, nil, nil, 1, 0)
		}},
		{"prefix row out of range", "prefix row 2", func() {
			q := Zeros([]int64{2, 2, 1, 8}, Float32)
			k := Zeros([]int64{2, 2, 5, 8}, Float32)
			pk := Zeros([]int64{2, 2, 3, 8}, Float32)
			DecodeAttention(q, k, k, pk, pk, FromInt64s([]int64{0, 2}, 2), nil, 1, 0)
		}},
		{"mask of the wrong length", "allowed keys", func() {
			q := Zeros([]int64{2, 2, 1, 8}, Float32)
			k := Zeros([]int64{2, 2, 5, 8}, Float32)
			DecodeAttention(q, k, k, nil, nil, nil, Ones([]int64{2, 1, 1, 4}, Bool, CPU), 1, 0)
		}},
		{"float64 attention", "float32 or bfloat16", func() {
			q := Zeros([]int64{1, 1, 1, 8}, Float64)
			DecodeAttention(q, q, q, nil, nil, nil, nil, 1, 0)
		}},
		{"float64 logits", "float32 CPU logits", func() { SampleRows(Zeros([]int64{2, 5}, Float64), []float64{0, 0}, 1) }},
		{"logits rows", "float32 CPU logits", func() { SampleRows(Zeros([]int64{3, 5}, Float32), []float64{0, 0}, 1) }},
		{"packed width", "not a packed weight", func() {
			if !HasPackedLinear() {
				panic(&Error{Msg: "not a packed weight (no AVX-512 here)"})
			}
			p := PackWeight(Zeros([]int64{8, 40}, Float32), false)
			PackedLinear(Zeros([]int64{2, 8}, Float32), p, nil, 100)
		}},
	} {
		err := func() (err error) {
			defer Recover(&err, c.name)
			Tidy(c.run)
			return nil
		}()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// TestSampleRowsInverseCDF checks the draw on a distribution worked out by
// hand: softmax(log p) = p = (0.1, 0.2, 0.3, 0.4), cumulative 0.1, 0.3,
// 0.6, 1.0, so u in [0, 0.1) takes token 0, [0.1, 0.3) token 1, and so on;
// at temperature 2 the probabilities are sqrt(p) normalised.
func TestSampleRowsInverseCDF(t *testing.T) { eachISA(t, testSampleRowsInverseCDF) }

func testSampleRowsInverseCDF(t *testing.T) {
	p := []float64{0.1, 0.2, 0.3, 0.4}
	us := []float64{0, 0.05, 0.0999, 0.1001, 0.29, 0.31, 0.59, 0.61, 0.999999}
	want := []int64{0, 0, 0, 1, 1, 2, 2, 3, 3}
	var lg []float32
	for range us {
		for _, v := range p {
			lg = append(lg, float32(math.Log(v)))
		}
	}
	Tidy(func() {
		l := FromFloat32s(lg, int64(len(us)), 4)
		got := SampleRows(l, us, 1)
		for i := range us {
			if got[i] != want[i] {
				t.Errorf("u = %g: token %d, want %d", us[i], got[i], want[i])
			}
		}
		// temperature 2: weights sqrt(p) = 0.316, 0.447, 0.548, 0.632 (sum 1.943):
		// cumulative 0.163, 0.393, 0.675, 1
		got = SampleRows(l, []float64{0.16, 0.17, 0.39, 0.40, 0.67, 0.68, 0, 0, 0}, 2)
		for i, w := range []int64{0, 1, 1, 2, 2, 3} {
			if got[i] != w {
				t.Errorf("temperature 2, row %d: token %d, want %d", i, got[i], w)
			}
		}
	})
}

// TestSampleRowsMatchesOps draws from random logits with many uniforms
// and checks each token against the inverse CDF computed in float64 from
// the same logits: the token's cumulative probability interval must hold
// u (to 1e-6, float32's rounding of the cumulative sums). It also counts
// the draws where the op path (softmax, float32 cumsum, searchsorted)
// picks another token: only those within that rounding of a boundary.
func TestSampleRowsMatchesOps(t *testing.T) { eachISA(t, testSampleRowsMatchesOps) }

func testSampleRowsMatchesOps(t *testing.T) {
	ManualSeed(5)
	const R, V = 16, 1000
	for _, temp := range []float64{1, 0.7} {
		NoGrad(func() {
			Tidy(func() {
				l := Randn([]int64{R, V}, Float32, CPU).MulScalar(3)
				z := l.Float32s()
				for draw := 0; draw < 20; draw++ {
					u := make([]float64, R)
					uf := make([]float32, R)
					for r := range u {
						u[r] = math.Mod(float64(draw*R+r)*0.618033988749895, 1)
						uf[r] = float32(u[r])
					}
					got := SampleRows(l, u, temp)
					cum := l.DivScalar(temp).Softmax(-1).Cumsum(-1)
					target := FromFloat32s(uf, R, 1).Mul(cum.Narrow(1, V-1, 1))
					ops := cum.SearchsortedRight(target).ClampMax(V - 1).Int64s()
					for r := range got {
						c := cdf64(z[r*V:(r+1)*V], temp)
						j := got[r]
						lo := 0.0
						if j > 0 {
							lo = c[j-1]
						}
						if !(lo-1e-6 <= u[r] && u[r] < c[j]+1e-6) {
							t.Errorf("temperature %g, draw %d, row %d: u %.9f drew token %d with cumulative [%.9f, %.9f)", temp, draw, r, u[r], j, lo, c[j])
						}
						if ops[r] != j && math.Abs(c[min(j, ops[r])]-u[r]) > 1e-6 {
							t.Errorf("temperature %g, draw %d, row %d: token %d, ops %d, away from a boundary (u %.9f)", temp, draw, r, j, ops[r], u[r])
						}
					}
				}
			})
		})
	}
}

// cdf64 is the cumulative softmax(z / temperature) in float64 (z / temperature
// rounded to float32 first, as both paths divide in float32).
func cdf64(z []float32, temperature float64) []float64 {
	w := make([]float64, len(z))
	m := math.Inf(-1)
	for i, v := range z {
		w[i] = float64(float32(float64(v) / temperature))
		m = math.Max(m, w[i])
	}
	tot := 0.0
	for i := range w {
		w[i] = math.Exp(w[i] - m)
		tot += w[i]
	}
	c := 0.0
	for i := range w {
		c += w[i]
		w[i] = c / tot
	}
	return w
}

// TestFusedGeluTanhMatchesOps: the fused GELU equals libtorch's tanh GELU
// to float32 rounding (1e-6 of max(1, |x|)) over [-12, 12], where tanh
// saturates both ways, on a strided input with a tail of fewer than 16
// values; bfloat16 to its rounding (1%).
func TestFusedGeluTanhMatchesOps(t *testing.T) { eachISA(t, testFusedGeluTanh) }

func testFusedGeluTanh(t *testing.T) {
	NoGrad(func() {
		Tidy(func() {
			const n = 4001
			v := make([]float32, n)
			for i := range v {
				v[i] = -12 + 24*float32(i)/(n-1)
			}
			x := FromFloat32s(v, n, 1).Expand(n, 2).Transpose(0, 1) // (2, n), not contiguous
			got := FusedGeluTanh(x)
			want := x.GeluTanh()
			if s := got.Shape(); len(s) != 2 || s[0] != 2 || s[1] != n {
				t.Fatalf("shape %v, want [2 %d]", s, n)
			}
			err := got.Sub(want).Abs().Div(x.Abs().ClampMin(1)).Max().Item()
			t.Logf("float32 max relative error %.3g", err)
			if !(err <= 1e-6) {
				t.Errorf("float32: max relative |fused - ops| = %g, want <= 1e-6", err)
			}
			xb := x.ToDType(BFloat16)
			if d := FusedGeluTanh(xb).ToDType(Float32).Sub(xb.GeluTanh().ToDType(Float32)).Abs().Div(x.Abs().ClampMin(1)).Max().Item(); !(d <= 1e-2) {
				t.Errorf("bfloat16: max relative |fused - ops| = %g, want <= 1e-2", d)
			}
		})
	})
}

// TestPackedLinearMatchesOps: x W + b on packed weights equals libtorch's
// matmul to float32 rounding, for both layouts (Conv1D's (K, N), Linear's
// (N, K)), row counts around the 8-row tiles, outputs that end inside a
// 32-column panel, with and without bias, and a strided input.
func TestPackedLinearMatchesOps(t *testing.T) {
	if !HasPackedLinear() {
		t.Skip("no AVX-512: PackedLinear does not run here (the op path does)")
	}
	ManualSeed(9)
	NoGrad(func() {
		for _, c := range []struct{ M, K, N int64 }{{64, 256, 768}, {1, 40, 7}, {13, 33, 50}, {9, 16, 32}, {8, 64, 96}} {
			for _, transposed := range []bool{false, true} {
				for _, bias := range []bool{false, true} {
					Tidy(func() {
						wShape := []int64{c.K, c.N}
						if transposed {
							wShape = []int64{c.N, c.K}
						}
						w := Randn(wShape, Float32, CPU)
						var b *Tensor
						if bias {
							b = Randn([]int64{c.N}, Float32, CPU)
						}
						x := Randn([]int64{c.M, 1, 2 * c.K}, Float32, CPU).Narrow(2, c.K, c.K) // strided rows
						p := PackWeight(w, transposed)
						got := PackedLinear(x, p, b, c.N)
						wkn := w
						if transposed {
							wkn = w.Transpose(0, 1)
						}
						want := x.Matmul(wkn)
						if b != nil {
							want = want.Add(b)
						}
						if s := got.Shape(); len(s) != 3 || s[0] != c.M || s[1] != 1 || s[2] != c.N {
							t.Fatalf("%v: shape %v, want [%d 1 %d]", c, s, c.M, c.N)
						}
						tol := 2e-6 * math.Sqrt(float64(c.K)) * 4 // sums of K products of N(0, 1) values
						if d := maxAbsDiff(got, want); !(d <= tol) {
							t.Errorf("%v transposed=%v bias=%v: max |packed - ops| = %g, want <= %g", c, transposed, bias, d, tol)
						}
					})
				}
			}
		}
	})
}
