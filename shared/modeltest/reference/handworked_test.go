package reference

import (
	"math"
	"testing"
)

// tensor builds a Tensor from float64 values.
func tensor(shape []int, vals ...float64) Tensor {
	data := make([]float32, len(vals))
	for i, v := range vals {
		data[i] = float32(v)
	}
	return Tensor{Shape: shape, Data: data}
}

func zeros(shape ...int) Tensor {
	return Tensor{Shape: shape, Data: make([]float32, numElements(shape))}
}

// TestGPT2HandWorkedConstantAttention is a 1-layer GPT-2 of width 2 whose
// q/k projections are zero and whose value projection is a pure bias, so the
// attention output is that bias at every position whatever the attention
// weights are, and whose MLP input weights are zero, so the MLP adds a
// constant. Everything is then computable on paper.
//
// Config: V=3, H=2, 1 head, I=3, P=2, eps=0.9375, tied head.
//
//	wte = [[1,0],[0,1],[1,1]], wpe = [[0,0],[3,-2]], ids = [0,1]
//	c_attn: W = 0, b = (q: 0,0 | k: 0,0 | v: 1,2) => v = (1,2) everywhere,
//	        attention output = (1,2) at both positions.
//	attn.c_proj: W = [[1,1],[0,1]] (Conv1D, [in,out]), b = (0.5, 0):
//	        (1,2)·W = (1·1+2·0, 1·1+2·1) = (1,3); + b = (1.5, 3).
//	mlp.c_fc: W = 0, b = (1,-1,0) => gelu = (g(1), g(-1), 0),
//	        g(1) = 0.8411919906, g(-1) = -0.1588080094, g(1)-g(-1) = 1.
//	mlp.c_proj: W = [[1,0],[0,1],[5,7]], b = 0 => (g(1), g(-1)).
//
// A LayerNorm of a 2-vector (a,b) is ±d/sqrt(d²+eps) with d = (a-b)/2.
//
//	pos 0: x = (1,0)+(0,0) = (1,0); +attn (2.5, 3), d = -0.25;
//	       +mlp: d = -0.25 + (g(1)-g(-1))/2 = 0.25; d²+eps = 1
//	       => normalised (0.25, -0.25).
//	pos 1: x = (0,1)+(3,-2) = (3,-1); +attn (4.5, 2), d = 1.25;
//	       +mlp: d = 1.75; d²+eps = 3.0625+0.9375 = 4
//	       => normalised (0.875, -0.875).
//	ln_f: w = (1,2), b = (0,0.25):
//	       h0 = (0.25, -0.5+0.25) = (0.25, -0.25)
//	       h1 = (0.875, -1.75+0.25) = (0.875, -1.5)
//	logits = wte·h (tied):
//	       pos 0: (0.25, -0.25, 0)
//	       pos 1: (0.875, -1.5, -0.625)
//
// ln_1 and ln_2 do not matter (their outputs meet zero weights).
func TestGPT2HandWorkedConstantAttention(t *testing.T) {
	cfg := Config{ModelType: "gpt2", VocabSize: 3, Hidden: 2, Layers: 1, Heads: 1,
		Intermediate: 3, MaxPositions: 2, Eps: 0.9375, TiedHead: true}
	w := Weights{
		"transformer.wte.weight":             tensor([]int{3, 2}, 1, 0, 0, 1, 1, 1),
		"transformer.wpe.weight":             tensor([]int{2, 2}, 0, 0, 3, -2),
		"transformer.h.0.ln_1.weight":        tensor([]int{2}, 1, 1),
		"transformer.h.0.ln_1.bias":          tensor([]int{2}, 0, 0),
		"transformer.h.0.attn.c_attn.weight": zeros(2, 6),
		"transformer.h.0.attn.c_attn.bias":   tensor([]int{6}, 0, 0, 0, 0, 1, 2),
		"transformer.h.0.attn.c_proj.weight": tensor([]int{2, 2}, 1, 1, 0, 1),
		"transformer.h.0.attn.c_proj.bias":   tensor([]int{2}, 0.5, 0),
		"transformer.h.0.ln_2.weight":        tensor([]int{2}, 1, 1),
		"transformer.h.0.ln_2.bias":          tensor([]int{2}, 0, 0),
		"transformer.h.0.mlp.c_fc.weight":    zeros(2, 3),
		"transformer.h.0.mlp.c_fc.bias":      tensor([]int{3}, 1, -1, 0),
		"transformer.h.0.mlp.c_proj.weight":  tensor([]int{3, 2}, 1, 0, 0, 1, 5, 7),
		"transformer.h.0.mlp.c_proj.bias":    tensor([]int{2}, 0, 0),
		"transformer.ln_f.weight":            tensor([]int{2}, 1, 2),
		"transformer.ln_f.bias":              tensor([]int{2}, 0, 0.25),
	}
	ids := [][]int{{0, 1}}

	hidden, err := Hidden(cfg, w, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	approxSlice(t, "hidden pos 0", hidden[0][0], []float64{0.25, -0.25}, 1e-12)
	approxSlice(t, "hidden pos 1", hidden[0][1], []float64{0.875, -1.5}, 1e-12)

	logits, err := Forward(cfg, w, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	approxSlice(t, "logits pos 0", logits[0][0], []float64{0.25, -0.25, 0}, 1e-12)
	approxSlice(t, "logits pos 1", logits[0][1], []float64{0.875, -1.5, -0.625}, 1e-12)

	// Untied: lm_head = [[2,0],[0,0],[1,-1]] gives at pos 1
	// (2·0.875, 0, 0.875+1.5) = (1.75, 0, 2.375).
	cfg.TiedHead = false
	w["lm_head.weight"] = tensor([]int{3, 2}, 2, 0, 0, 0, 1, -1)
	logits, err = Forward(cfg, w, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	approxSlice(t, "untied logits pos 1", logits[0][1], []float64{1.75, 0, 2.375}, 1e-12)
}

// TestGPT2HandWorkedAttention checks the attention arithmetic (q|k|v split
// order, the causal mask and the 1/sqrt(head_dim) scale) on a 1-layer,
// 1-head GPT-2 of width 2 whose MLP adds nothing.
//
// Config: V=2, H=2, I=2, P=2, eps=0.9375, tied; wte = [[0.25,-0.25],
// [1.75,-1.75]], wpe = 0, ids = [0,1]; ln_1 and ln_f are plain (w=1, b=0).
//
// ln_1 maps a 2-vector with half-difference d to ±d/sqrt(d²+eps):
// x_0 = (0.25,-0.25): d = 0.25, d²+eps = 1, a_0 = (0.25,-0.25);
// x_1 = (1.75,-1.75): d = 1.75, d²+eps = 4, a_1 = (0.875,-0.875). Write a_t = (s_t, -s_t), s_0 = 0.25, s_1 = 0.875.
//
// c_attn W (Conv1D [in=2, out=6], columns q0 q1 k0 k1 v0 v1):
//
//	row 0: 2 0 1  0 1 0
//	row 1: 0 0 0 -1 0 1
//
// so a·W = (2s, 0 | s, s | s, -s); with b = (0,0 | 0.5,0 | 0,1):
// q_t = (2s_t, 0), k_t = (s_t+0.5, s_t), v_t = (s_t, 1-s_t):
//
//	q0 = (0.5, 0)    k0 = (0.75, 0.25)    v0 = (0.25, 0.75)
//	q1 = (1.75, 0)   k1 = (1.375, 0.875)  v1 = (0.875, 0.125)
//
// Position 0 sees only key 0: o0 = v0 = (0.25, 0.75).
// Position 1: scores q1·k0/√2 = 1.3125/√2, q1·k1/√2 = 2.40625/√2;
// p11 = 1/(1+exp(-(2.40625-1.3125)/√2)) = 1/(1+exp(-1.09375/√2)),
// p10 = 1-p11; o1 = p10·v0 + p11·v1.
// c_proj W = [[1,1],[0,1]], b = 0: (o0,o1)·W = (o0, o0+o1).
// Residual: x0 = (0.25,-0.25)+(0.25,1) = (0.5,0.75), d = -0.125.
// x1 = (1.75,-1.75)+(o1_0, o1_0+o1_1), d = (3.5 - o1_1)/2.
// The MLP adds gelu(0)·W + 0 = 0. ln_f: h_t = (S,-S), S = d/sqrt(d²+eps).
// Tied logits: (0.25S+0.25S, 1.75S+1.75S) = (0.5S, 3.5S).
func TestGPT2HandWorkedAttention(t *testing.T) {
	cfg := Config{ModelType: "gpt2", VocabSize: 2, Hidden: 2, Layers: 1, Heads: 1,
		Intermediate: 2, MaxPositions: 2, Eps: 0.9375, TiedHead: true}
	w := Weights{
		"transformer.wte.weight":      tensor([]int{2, 2}, 0.25, -0.25, 1.75, -1.75),
		"transformer.wpe.weight":      zeros(2, 2),
		"transformer.h.0.ln_1.weight": tensor([]int{2}, 1, 1),
		"transformer.h.0.ln_1.bias":   tensor([]int{2}, 0, 0),
		"transformer.h.0.attn.c_attn.weight": tensor([]int{2, 6},
			2, 0, 1, 0, 1, 0,
			0, 0, 0, -1, 0, 1),
		"transformer.h.0.attn.c_attn.bias":   tensor([]int{6}, 0, 0, 0.5, 0, 0, 1),
		"transformer.h.0.attn.c_proj.weight": tensor([]int{2, 2}, 1, 1, 0, 1),
		"transformer.h.0.attn.c_proj.bias":   tensor([]int{2}, 0, 0),
		"transformer.h.0.ln_2.weight":        tensor([]int{2}, 1, 1),
		"transformer.h.0.ln_2.bias":          tensor([]int{2}, 0, 0),
		"transformer.h.0.mlp.c_fc.weight":    zeros(2, 2),
		"transformer.h.0.mlp.c_fc.bias":      tensor([]int{2}, 0, 0),
		"transformer.h.0.mlp.c_proj.weight":  tensor([]int{2, 2}, 1, 2, 3, 4),
		"transformer.h.0.mlp.c_proj.bias":    tensor([]int{2}, 0, 0),
		"transformer.ln_f.weight":            tensor([]int{2}, 1, 1),
		"transformer.ln_f.bias":              tensor([]int{2}, 0, 0),
	}
	eps := 0.9375
	p11 := 1 / (1 + math.Exp(-1.09375/math.Sqrt2))
	p10 := 1 - p11
	o11 := p10*0.75 + p11*0.125
	d0 := -0.125
	d1 := (3.5 - o11) / 2
	S0 := d0 / math.Sqrt(d0*d0+eps)
	S1 := d1 / math.Sqrt(d1*d1+eps)

	hidden, err := Hidden(cfg, w, [][]int{{0, 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	approxSlice(t, "hidden pos 0", hidden[0][0], []float64{S0, -S0}, 1e-12)
	approxSlice(t, "hidden pos 1", hidden[0][1], []float64{S1, -S1}, 1e-12)
	logits, err := Forward(cfg, w, [][]int{{0, 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	approxSlice(t, "logits pos 0", logits[0][0], []float64{0.5 * S0, 3.5 * S0}, 1e-12)
	approxSlice(t, "logits pos 1", logits[0][1], []float64{0.5 * S1, 3.5 * S1}, 1e-12)
}

// TestLlamaHandWorked checks a 1-layer, 1-head Llama of width 2 (head dim 2,
// so inv_freq = (1) whatever theta is) with q/k/v biases and an untied head
// against the forward pass written out scalar by scalar, every nn.Linear
// as y_i = Σ_j W[i][j]·x_j.
func TestLlamaHandWorked(t *testing.T) {
	cfg := Config{ModelType: "llama", VocabSize: 2, Hidden: 2, Layers: 1, Heads: 1, KVHeads: 1,
		Intermediate: 1, Eps: 0.5, RopeTheta: 10000, AttentionBias: true}
	w := Weights{
		"model.embed_tokens.weight":                      tensor([]int{2, 2}, 1, 2, 3, -1),
		"model.layers.0.input_layernorm.weight":          tensor([]int{2}, 1, 0.5),
		"model.layers.0.self_attn.q_proj.weight":         tensor([]int{2, 2}, 1, 2, 0, -1),
		"model.layers.0.self_attn.q_proj.bias":           tensor([]int{2}, 0.125, -0.25),
		"model.layers.0.self_attn.k_proj.weight":         tensor([]int{2, 2}, 0.5, 0, 1, 1),
		"model.layers.0.self_attn.k_proj.bias":           tensor([]int{2}, 0, 0.375),
		"model.layers.0.self_attn.v_proj.weight":         tensor([]int{2, 2}, 2, 0, 1, -1),
		"model.layers.0.self_attn.v_proj.bias":           tensor([]int{2}, 0.5, 0),
		"model.layers.0.self_attn.o_proj.weight":         tensor([]int{2, 2}, 1, 0.5, 0, 2),
		"model.layers.0.post_attention_layernorm.weight": tensor([]int{2}, 2, 1),
		"model.layers.0.mlp.gate_proj.weight":            tensor([]int{1, 2}, 1, -1),
		"model.layers.0.mlp.up_proj.weight":              tensor([]int{1, 2}, 0.5, 2),
		"model.layers.0.mlp.down_proj.weight":            tensor([]int{2, 1}, 1, -2),
		"model.norm.weight":                              tensor([]int{2}, 1, 3),
		"lm_head.weight":                                 tensor([]int{2, 2}, 1, 0, 2, -1),
	}
	eps := 0.5
	type vec2 [2]float64
	rms := func(x, w vec2) vec2 {
		r := math.Sqrt((x[0]*x[0]+x[1]*x[1])/2 + eps)
		return vec2{x[0] / r * w[0], x[1] / r * w[1]}
	}
	// rope for head dim 2 at position p: (x0 cos p - x1 sin p, x1 cos p + x0 sin p).
	rot := func(x vec2, p float64) vec2 {
		return vec2{x[0]*math.Cos(p) - x[1]*math.Sin(p), x[1]*math.Cos(p) + x[0]*math.Sin(p)}
	}
	silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }

	// ids [1, 0]: x0 = (3,-1), x1 = (1,2).
	x := []vec2{{3, -1}, {1, 2}}
	var q, k, v [2]vec2
	for i, xi := range x {
		a := rms(xi, vec2{1, 0.5})
		q[i] = vec2{1*a[0] + 2*a[1] + 0.125, 0*a[0] - 1*a[1] - 0.25}
		k[i] = vec2{0.5*a[0] + 0*a[1], 1*a[0] + 1*a[1] + 0.375}
		v[i] = vec2{2*a[0] + 0*a[1] + 0.5, 1*a[0] - 1*a[1]}
		q[i], k[i] = rot(q[i], float64(i)), rot(k[i], float64(i))
	}
	dot := func(a, b vec2) float64 { return a[0]*b[0] + a[1]*b[1] }
	// Position 0 attends only to itself; position 1 to keys 0 and 1.
	o := [2]vec2{v[0]}
	s10, s11 := dot(q[1], k[0])/math.Sqrt2, dot(q[1], k[1])/math.Sqrt2
	p11 := 1 / (1 + math.Exp(s10-s11))
	o[1] = vec2{(1-p11)*v[0][0] + p11*v[1][0], (1-p11)*v[0][1] + p11*v[1][1]}
	var want [2]vec2
	for i := range x {
		// o_proj [[1,0.5],[0,2]].
		h := vec2{x[i][0] + 1*o[i][0] + 0.5*o[i][1], x[i][1] + 0*o[i][0] + 2*o[i][1]}
		n := rms(h, vec2{2, 1})
		gate := 1*n[0] - 1*n[1]
		up := 0.5*n[0] + 2*n[1]
		p := silu(gate) * up
		h = vec2{h[0] + 1*p, h[1] - 2*p} // down_proj [[1],[-2]]
		f := rms(h, vec2{1, 3})
		want[i] = vec2{1*f[0] + 0*f[1], 2*f[0] - 1*f[1]} // lm_head [[1,0],[2,-1]]
	}

	logits, err := Forward(cfg, w, [][]int{{1, 0}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		approxSlice(t, "llama logits", logits[0][i], want[i][:], 1e-12)
	}
}
