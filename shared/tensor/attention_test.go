package tensor

import (
	"strings"
	"testing"
)

// refTrainAttention is whole-sequence attention by libtorch ops, as rl's
// model computes it without the fused kernel: repeat the kv heads,
// q k^T * scale, masked_fill with the lowest float, softmax, times v,
// transposed to (B, T, heads*d).
func refTrainAttention(q, k, v, ok *Tensor, scale float64) *Tensor {
	if g := q.Size(1) / k.Size(1); g > 1 {
		k, v = k.RepeatInterleave(g, 1), v.RepeatInterleave(g, 1)
	}
	att := q.Matmul(k.Transpose(2, 3)).MulScalar(scale)
	if ok != nil {
		att = att.MaskedFill(ok.LogicalNot(), MinValue(att.DType()))
	}
	B, nh, T, d := q.Size(0), q.Size(1), q.Size(2), q.Size(3)
	return att.Softmax(-1).Matmul(v).Transpose(1, 2).Reshape(B, T, nh*d)
}

// leaf is a fresh leaf tensor holding base's values, recording gradients.
func leaf(base *Tensor) *Tensor {
	l := base.Detach().Clone()
	l.SetRequiresGrad(true)
	return l
}

// TestAttentionMatchesOps checks the fused training attention against the
// op path, forward values and the gradients of q, k, v (through a random
// weighting of the output): q, k, v as strided views of one fused
// projection (as GPT-2's split and transpose give them) or contiguous,
// multi-head and grouped-query heads, head sizes with and without a tail of
// fewer than 16 channels, a causal mask, a causal mask with left padding
// (whose first rows allow no key: uniform, with no gradient to the
// scores), a (B, 1, 1, S) key mask, more keys than queries, and no mask.
func TestAttentionMatchesOps(t *testing.T) {
	if !HasAttention() {
		t.Skip("no cblas_sgemm in this process: the fused attention does not run here")
	}
	ManualSeed(5)
	cases := []struct {
		name                string
		B, nh, nkv, T, S, d int64
		fusedQKV            bool
		mask                string // "", causal, padded, keys
	}{
		{"gpt2 causal d64", 2, 4, 4, 37, 37, 64, true, "causal"},
		{"gpt2 padded d64", 3, 4, 4, 21, 21, 64, true, "padded"},
		{"gqa causal d72", 2, 6, 2, 19, 19, 72, false, "causal"},
		{"gqa padded d20", 3, 4, 1, 17, 17, 20, false, "padded"},
		{"keys mask", 2, 2, 2, 9, 9, 32, false, "keys"},
		{"more keys than queries", 2, 4, 2, 5, 13, 16, false, "causal"},
		{"no mask", 2, 3, 3, 16, 16, 48, true, ""},
		{"one position", 2, 2, 2, 1, 1, 64, false, "causal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			Tidy(func() {
				var q0, k0, v0 *Tensor
				if c.fusedQKV { // (B, T, 3H) split and transposed: row stride 3H
					qkv := Randn([]int64{c.B, c.T, 3 * c.nh * c.d}, Float32, CPU)
					parts := qkv.Split(c.nh*c.d, 2)
					view := func(x *Tensor) *Tensor { return x.View(c.B, c.T, c.nh, c.d).Transpose(1, 2) }
					q0, k0, v0 = view(parts[0]), view(parts[1]), view(parts[2])
				} else {
					q0 = Randn([]int64{c.B, c.nh, c.T, c.d}, Float32, CPU)
					k0 = Randn([]int64{c.B, c.nkv, c.S, c.d}, Float32, CPU)
					v0 = Randn([]int64{c.B, c.nkv, c.S, c.d}, Float32, CPU)
				}
				past := c.S - c.T
				var ok *Tensor
				causal := func() *Tensor {
					qi := Arange(past, c.S, CPU).Unsqueeze(1)
					kj := Arange(0, c.S, CPU).Unsqueeze(0)
					return kj.Le(qi).Unsqueeze(0).Unsqueeze(0) // (1, 1, T, S)
				}
				keys := func() *Tensor { // row b pads its first b keys
					pad := make([]int64, c.B*c.S)
					for b := int64(0); b < c.B; b++ {
						for j := b; j < c.S; j++ {
							pad[b*c.S+j] = 1
						}
					}
					return FromInt64s(pad, c.B, c.S).NeScalar(0).Unsqueeze(1).Unsqueeze(1) // (B, 1, 1, S)
				}
				switch c.mask {
				case "causal":
					ok = causal()
				case "padded":
					ok = causal().LogicalAnd(keys())
				case "keys":
					ok = keys()
				}
				scale := 1 / 8.0
				w := Randn([]int64{c.B, c.T, c.nh * c.d}, Float32, CPU)
				run := func(f func(q, k, v *Tensor) *Tensor) (out, dq, dk, dv *Tensor) {
					q, k, v := leaf(q0), leaf(k0), leaf(v0)
					out = f(q, k, v)
					out.Mul(w).Sum().Backward()
					return out, q.Grad(), k.Grad(), v.Grad()
				}
				o1, q1, k1, v1 := run(func(q, k, v *Tensor) *Tensor { return Attention(q, k, v, ok, scale) })
				o2, q2, k2, v2 := run(func(q, k, v *Tensor) *Tensor { return refTrainAttention(q, k, v, ok, scale) })
				if got, want := o1.Shape(), o2.Shape(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
					t.Fatalf("shape %v, want %v", got, want)
				}
				for _, x := range []struct {
					what string
					a, b *Tensor
				}{{"output", o1, o2}, {"dq", q1, q2}, {"dk", k1, k2}, {"dv", v1, v2}} {
					if d := maxAbsDiff(x.a, x.b); d > 2e-5 {
						t.Errorf("%s differs from the op path by %.3g", x.what, d)
					}
				}
				if c.mask == "padded" { // row 2's first query sees no key: its output is the mean of v
					want := v0.Narrow(0, 2, 1).Narrow(2, 0, c.S).MeanDim(2, false) // (1, nkv, d)
					got := o1.Narrow(0, 2, 1).Narrow(1, 0, 1).View(1, c.nh, c.d)
					if g := c.nh / c.nkv; g > 1 {
						want = want.RepeatInterleave(g, 1)
					}
					if d := maxAbsDiff(got, want); d > 1e-5 {
						t.Errorf("a row with no allowed key: output differs from the mean of v by %.3g", d)
					}
				}
			})
		})
	}
}

// TestGeluTanhGradMatchesOps checks the fused GELU's values and gradient
// against libtorch's gelu(approximate="tanh") and its backward, across the
// range where tanh saturates, with a length that leaves a vector tail.
func TestGeluTanhGradMatchesOps(t *testing.T) {
	eachISA(t, func(t *testing.T) {
		Tidy(func() {
			x0 := Randn([]int64{3, 1001}, Float32, CPU).MulScalar(4)
			w := Randn([]int64{3, 1001}, Float32, CPU)
			run := func(f func(x *Tensor) *Tensor) (y, dx *Tensor) {
				x := leaf(x0)
				y = f(x)
				y.Mul(w).Sum().Backward()
				return y, x.Grad()
			}
			y1, d1 := run(GeluTanhGrad)
			y2, d2 := run((*Tensor).GeluTanh)
			if d := maxAbsDiff(y1, y2); d > 1e-5 {
				t.Errorf("gelu differs from libtorch's by %.3g", d)
			}
			if d := maxAbsDiff(d1, d2); d > 1e-5 {
				t.Errorf("gelu's gradient differs from libtorch's by %.3g", d)
			}
		})
	})
}

func TestAttentionRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		name, want string
		run        func()
	}{
		{"3 heads over 2 kv heads", "do not fit", func() {
			q := Zeros([]int64{2, 3, 4, 8}, Float32)
			k := Zeros([]int64{2, 2, 4, 8}, Float32)
			Attention(q, k, k, nil, 1)
		}},
		{"float64", "float32 CPU", func() {
			q := Zeros([]int64{1, 1, 4, 8}, Float64)
			Attention(q, q, q, nil, 1)
		}},
		{"int mask", "bool CPU tensor", func() {
			q := Zeros([]int64{1, 1, 4, 8}, Float32)
			Attention(q, q, q, Ones([]int64{1, 1, 4, 4}, Int64, CPU), 1)
		}},
		{"gelu float64", "float32 CPU", func() { GeluTanhGrad(Zeros([]int64{4}, Float64)) }},
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
