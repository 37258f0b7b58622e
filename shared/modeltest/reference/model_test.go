package reference

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func gpt2Config() Config {
	return Config{ModelType: "gpt2", VocabSize: 11, Hidden: 8, Layers: 2, Heads: 2,
		Intermediate: 12, MaxPositions: 16, Eps: 1e-5}
}

func llamaConfig() Config {
	return Config{ModelType: "llama", VocabSize: 11, Hidden: 16, Layers: 2, Heads: 4, KVHeads: 2,
		Intermediate: 20, MaxPositions: 16, Eps: 1e-6, RopeTheta: 10000, AttentionBias: true}
}

// families returns a few configurations covering both model types, tied
// and untied heads, and with and without GQA and biases.
func families() map[string]Config {
	g := gpt2Config()
	gTied := gpt2Config()
	gTied.TiedHead = true
	l := llamaConfig()
	lPlain := llamaConfig()
	lPlain.AttentionBias, lPlain.KVHeads, lPlain.TiedHead = false, 0, true
	lMQA := llamaConfig()
	lMQA.KVHeads = 1
	return map[string]Config{"gpt2": g, "gpt2-tied": gTied, "llama-gqa-bias": l, "llama-mha-tied": lPlain, "llama-mqa": lMQA}
}

func maxAbsDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func checkFinite(t *testing.T, name string, out [][][]float64) {
	t.Helper()
	for b := range out {
		for p := range out[b] {
			for _, v := range out[b][p] {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%s: non-finite value at [%d][%d]: %v", name, b, p, out[b][p])
				}
			}
		}
	}
}

func TestOutputShapes(t *testing.T) {
	for name, cfg := range families() {
		w := RandomWeights(cfg, 1, 0.2)
		ids := [][]int{{1, 2, 3}, {4, 5, 6}}
		logits, err := Forward(cfg, w, ids, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		hidden, err := Hidden(cfg, w, ids, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(logits) != 2 || len(logits[1]) != 3 || len(logits[1][2]) != cfg.VocabSize {
			t.Errorf("%s: logits shape wrong", name)
		}
		if len(hidden) != 2 || len(hidden[1]) != 3 || len(hidden[1][2]) != cfg.Hidden {
			t.Errorf("%s: hidden shape wrong", name)
		}
		checkFinite(t, name, logits)
	}
}

// TestCausality: changing the last token leaves every earlier position's
// logits unchanged (and does change the last one).
func TestCausality(t *testing.T) {
	for name, cfg := range families() {
		w := RandomWeights(cfg, 2, 0.3)
		a, err := Forward(cfg, w, [][]int{{3, 1, 4, 1, 5}}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := Forward(cfg, w, [][]int{{3, 1, 4, 1, 9}}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for p := 0; p < 4; p++ {
			if d := maxAbsDiff(a[0][p], b[0][p]); d > 1e-12 {
				t.Errorf("%s: position %d changed by %g when the last token changed", name, p, d)
			}
		}
		if d := maxAbsDiff(a[0][4], b[0][4]); d < 1e-6 {
			t.Errorf("%s: last position did not change (%g)", name, d)
		}
	}
}

// TestLeftPadding: a left-padded sequence with its mask gives, at its real
// positions, the logits of the unpadded sequence, whatever the pad ids; the
// other row of the batch is unaffected by the padding of the first; pad
// rows are finite.
func TestLeftPadding(t *testing.T) {
	for name, cfg := range families() {
		w := RandomWeights(cfg, 3, 0.3)
		seq := []int{7, 2, 9, 4}
		full := []int{1, 8, 3, 6, 10, 5}
		alone, err := Forward(cfg, w, [][]int{seq}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fullAlone, err := Forward(cfg, w, [][]int{full}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, pad := range []int{0, 5} {
			ids := [][]int{append([]int{pad, pad}, seq...), full}
			mask := [][]int{{0, 0, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}}
			got, err := Forward(cfg, w, ids, mask)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkFinite(t, name, got)
			for p := range seq {
				if d := maxAbsDiff(got[0][p+2], alone[0][p]); d > 1e-10 {
					t.Errorf("%s pad=%d: padded position %d differs from unpadded %d by %g", name, pad, p+2, p, d)
				}
			}
			for p := range full {
				if d := maxAbsDiff(got[1][p], fullAlone[0][p]); d > 1e-10 {
					t.Errorf("%s pad=%d: unpadded batch row position %d differs by %g", name, pad, p, d)
				}
			}
		}
		// Without the mask the padded sequence is different (positions and
		// keys change), so the test above is not vacuous.
		noMask, err := Forward(cfg, w, [][]int{append([]int{0, 0}, seq...)}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := maxAbsDiff(noMask[0][5], alone[0][3]); d < 1e-6 {
			t.Errorf("%s: unmasked padding made no difference (%g)", name, d)
		}
	}
}

// TestRightPadding: right padding leaves the real positions unchanged.
func TestRightPadding(t *testing.T) {
	for name, cfg := range families() {
		w := RandomWeights(cfg, 4, 0.3)
		seq := []int{7, 2, 9}
		alone, err := Forward(cfg, w, [][]int{seq}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := Forward(cfg, w, [][]int{{7, 2, 9, 0, 0}}, [][]int{{1, 1, 1, 0, 0}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkFinite(t, name, got)
		for p := range seq {
			if d := maxAbsDiff(got[0][p], alone[0][p]); d > 1e-10 {
				t.Errorf("%s: position %d differs by %g", name, p, d)
			}
		}
	}
}

// TestGPT2PositionsFromMask: with left padding the first real token uses
// wpe[0] (position ids come from the mask), not wpe[2] (its index). A model
// whose wpe is shifted up by two rows, run unpadded, reproduces what
// index-based positions would give; the padded run must not match it.
func TestGPT2PositionsFromMask(t *testing.T) {
	cfg := gpt2Config()
	w := RandomWeights(cfg, 5, 0.3)
	seq := []int{7, 2, 9}
	padded, err := Hidden(cfg, w, [][]int{{0, 0, 7, 2, 9}}, [][]int{{0, 0, 1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	shifted := Weights{}
	for k, v := range w {
		shifted[k] = v
	}
	wpe := w["transformer.wpe.weight"]
	h := cfg.Hidden
	shifted["transformer.wpe.weight"] = Tensor{Shape: wpe.Shape,
		Data: append(append([]float32(nil), wpe.Data[2*h:]...), make([]float32, 2*h)...)}
	shiftedOut, err := Hidden(cfg, shifted, [][]int{seq}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Hidden(cfg, w, [][]int{seq}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(padded[0][2], plain[0][0]); d > 1e-10 {
		t.Errorf("first real token does not use position 0 (diff %g)", d)
	}
	if d := maxAbsDiff(padded[0][2], shiftedOut[0][0]); d < 1e-6 {
		t.Errorf("padded run looks like it used position 2 (diff %g)", d)
	}
}

// TestGQAEqualsRepeatedKV: a GQA model equals the MHA model (KVHeads =
// Heads) whose k/v projections repeat each kv head for its group of query
// heads (query head h reads kv head h / (Heads/KVHeads)), as HF's repeat_kv.
func TestGQAEqualsRepeatedKV(t *testing.T) {
	for _, kv := range []int{1, 2} {
		cfg := llamaConfig()
		cfg.KVHeads = kv
		w := RandomWeights(cfg, 6, 0.3)
		mha := cfg
		mha.KVHeads = cfg.Heads
		mw := Weights{}
		for k, v := range w {
			mw[k] = v
		}
		hd := cfg.Hidden / cfg.Heads
		group := cfg.Heads / kv
		for l := 0; l < cfg.Layers; l++ {
			for _, proj := range []string{"k_proj", "v_proj"} {
				wn := fmt.Sprintf("model.layers.%d.self_attn.%s.weight", l, proj)
				bn := fmt.Sprintf("model.layers.%d.self_attn.%s.bias", l, proj)
				old, oldB := w[wn], w[bn]
				var data, bias []float32
				for h := 0; h < cfg.Heads; h++ {
					g := h / group
					data = append(data, old.Data[g*hd*cfg.Hidden:(g+1)*hd*cfg.Hidden]...)
					bias = append(bias, oldB.Data[g*hd:(g+1)*hd]...)
				}
				mw[wn] = Tensor{Shape: []int{cfg.Heads * hd, cfg.Hidden}, Data: data}
				mw[bn] = Tensor{Shape: []int{cfg.Heads * hd}, Data: bias}
			}
		}
		ids := [][]int{{0, 3, 6, 9, 2}, {5, 5, 1, 7, 8}}
		mask := [][]int{{0, 1, 1, 1, 1}, {1, 1, 1, 1, 1}}
		a, err := Forward(cfg, w, ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Forward(mha, mw, ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			for p := range a[i] {
				if d := maxAbsDiff(a[i][p], b[i][p]); d > 1e-12 {
					t.Errorf("kv=%d: row %d position %d: GQA and repeated-KV MHA differ by %g", kv, i, p, d)
				}
			}
		}
	}
}

func TestRandomWeights(t *testing.T) {
	for name, cfg := range families() {
		w := RandomWeights(cfg, 7, 0.02)
		d, err := resolve(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateWeights(cfg, d, w); err != nil {
			t.Errorf("%s: RandomWeights fails validation: %v", name, err)
		}
		if specs := weightSpecs(cfg, d); len(w) != len(specs) {
			t.Errorf("%s: %d tensors, want %d", name, len(w), len(specs))
		}
		again := RandomWeights(cfg, 7, 0.02)
		other := RandomWeights(cfg, 8, 0.02)
		same, differ := true, false
		for k, v := range w {
			for i := range v.Data {
				same = same && again[k].Data[i] == v.Data[i]
				differ = differ || other[k].Data[i] != v.Data[i]
			}
		}
		if !same || !differ {
			t.Errorf("%s: not deterministic in the seed (same=%v differ=%v)", name, same, differ)
		}
	}
	cfg := gpt2Config()
	w := RandomWeights(cfg, 1, 0.02)
	for _, v := range w["transformer.h.1.ln_2.weight"].Data {
		if math.Abs(float64(v)-1) > 0.2 {
			t.Errorf("norm weight %g not near 1", v)
		}
	}
	if _, ok := w["lm_head.weight"]; !ok {
		t.Error("untied gpt2 has no lm_head.weight")
	}
	cfg.TiedHead = true
	if _, ok := RandomWeights(cfg, 1, 0.02)["lm_head.weight"]; ok {
		t.Error("tied gpt2 has an lm_head.weight")
	}
	l := llamaConfig()
	lw := RandomWeights(l, 1, 0.02)
	if s := lw["model.layers.1.self_attn.k_proj.weight"].Shape; s[0] != 8 || s[1] != 16 {
		t.Errorf("llama k_proj shape %v, want [8 16]", s)
	}
	if _, ok := lw["model.layers.0.self_attn.q_proj.bias"]; !ok {
		t.Error("AttentionBias llama lacks q_proj.bias")
	}
}

func TestValidationErrors(t *testing.T) {
	cfg := gpt2Config()
	ids := [][]int{{1, 2}}
	expectErr := func(name string, cfg Config, w Weights, ids, mask [][]int, wants ...string) {
		t.Helper()
		_, err := Forward(cfg, w, ids, mask)
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		for _, want := range wants {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", name, err, want)
			}
		}
	}

	w := RandomWeights(cfg, 1, 0.1)
	delete(w, "transformer.h.1.attn.c_attn.weight")
	expectErr("missing", cfg, w, ids, nil, `missing weight "transformer.h.1.attn.c_attn.weight"`, "[8 24]")

	w = RandomWeights(cfg, 1, 0.1)
	w["transformer.h.0.attn.c_attn.weight"] = zeros(24, 8)
	expectErr("transposed", cfg, w, ids, nil, `"transformer.h.0.attn.c_attn.weight"`, "expected shape [8 24], got [24 8]")

	w = RandomWeights(cfg, 1, 0.1)
	w["transformer.ln_f.bias"] = Tensor{Shape: []int{8}, Data: make([]float32, 7)}
	expectErr("short data", cfg, w, ids, nil, `"transformer.ln_f.bias"`, "needs 8 values, data has 7")

	w = RandomWeights(cfg, 1, 0.1)
	delete(w, "lm_head.weight")
	expectErr("untied without head", cfg, w, ids, nil, `missing weight "lm_head.weight"`)

	l := llamaConfig()
	lw := RandomWeights(l, 1, 0.1)
	lw["model.layers.0.self_attn.k_proj.weight"] = zeros(16, 16)
	expectErr("llama kv shape", l, lw, ids, nil, `"model.layers.0.self_attn.k_proj.weight"`, "expected shape [8 16], got [16 16]")

	lw = RandomWeights(l, 1, 0.1)
	lw["model.layers.1.self_attn.o_proj.bias"] = zeros(16)
	expectErr("o_proj bias", l, lw, ids, nil, "o_proj.bias")

	noBias := llamaConfig()
	noBias.AttentionBias = false
	expectErr("unexpected q bias", noBias, RandomWeights(l, 1, 0.1), ids, nil, "q_proj.bias", "AttentionBias is false")

	bad := gpt2Config()
	bad.Heads = 3
	expectErr("heads", bad, nil, ids, nil, "not divisible by Heads 3")
	bad = llamaConfig()
	bad.KVHeads = 3
	expectErr("kv heads", bad, nil, ids, nil, "not divisible by KVHeads 3")
	bad = gpt2Config()
	bad.ModelType = "bert"
	expectErr("type", bad, nil, ids, nil, `"bert"`)
	bad = gpt2Config()
	bad.Eps = 0
	expectErr("eps", bad, nil, ids, nil, "Eps")

	w = RandomWeights(cfg, 1, 0.1)
	expectErr("id range", cfg, w, [][]int{{1, 11}}, nil, "ids[0][1] = 11")
	expectErr("ragged", cfg, w, [][]int{{1, 2}, {1}}, nil, "row 1 has length 1")
	expectErr("mask value", cfg, w, ids, [][]int{{1, 2}}, "want 0 or 1")
	expectErr("mask rows", cfg, w, ids, [][]int{{1, 1}, {1, 1}}, "2 rows")
	expectErr("positions", cfg, w, [][]int{make([]int, 17)}, nil, "MaxPositions 16")
}

func TestEmptyInputs(t *testing.T) {
	cfg := gpt2Config()
	w := RandomWeights(cfg, 1, 0.1)
	out, err := Forward(cfg, w, [][]int{}, nil)
	if err != nil || len(out) != 0 {
		t.Errorf("empty batch: %v %v", out, err)
	}
	out, err = Forward(cfg, w, [][]int{{}}, nil)
	if err != nil || len(out) != 1 || len(out[0]) != 0 {
		t.Errorf("empty sequence: %v %v", out, err)
	}
}
