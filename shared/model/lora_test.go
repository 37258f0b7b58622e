package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// logitsOf runs m on a fixed left-padded batch and returns the logits of
// the real tokens.
func logitsOf(t *testing.T, m *Model, disable bool) []float64 {
	t.Helper()
	ids := []int64{3, 7, 1, 9, 4, 4, 0, 0, 5, 2, 8, 11}
	mask := []int64{1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1}
	var out []float64
	tensor.Tidy(func() {
		tensor.NoGrad(func() {
			in := &Input{IDs: tensor.FromInt64s(ids, 2, 6), AttentionMask: tensor.FromInt64s(mask, 2, 6), DisableAdapters: disable}
			lg := m.Forward(in).Float32s()
			V := len(lg) / 12
			for i, keep := range mask {
				if keep == 1 {
					for _, v := range lg[i*V : (i+1)*V] {
						out = append(out, float64(v))
					}
				}
			}
		})
	})
	return out
}

func maxRelDiff(a, b []float64) float64 {
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(a[i]-b[i])/(1+math.Abs(b[i])))
	}
	return worst
}

// TestPeftAdapterFixture: an adapter written the way peft writes it
// (tools/goldens/peft_adapter.py: peft's keys, r, lora_alpha, use_rslora,
// GPT-2's fan_in_fan_out) loaded onto its base gives the logits of the
// weights peft's merge_and_unload computes (merged/, computed in PyTorch);
// with the adapter disabled, the base's logits.
func TestPeftAdapterFixture(t *testing.T) {
	for _, fam := range []string{"llama", "gpt2"} {
		t.Run(fam, func(t *testing.T) {
			root := filepath.Join("testdata", "peft", fam)
			m, err := Load(filepath.Join(root, "adapter"), LoadOptions{BaseModel: filepath.Join(root, "base")})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if !m.HasAdapters() {
				t.Fatal("no adapters loaded")
			}
			merged, err := Load(filepath.Join(root, "merged"), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer merged.Free()
			base, err := Load(filepath.Join(root, "base"), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer base.Free()
			got, want := logitsOf(t, m, false), logitsOf(t, merged, false)
			if d := maxRelDiff(got, want); d > 1e-5 {
				t.Errorf("adapter logits differ from peft's merged weights by %.3g (want <= 1e-5)", d)
			}
			if d := maxRelDiff(logitsOf(t, m, true), logitsOf(t, base, false)); d > 1e-6 {
				t.Errorf("adapter disabled: logits differ from the base's by %.3g", d)
			}
			if d := maxRelDiff(got, logitsOf(t, base, false)); d < 1e-3 {
				t.Errorf("the adapter changes the logits by only %.3g: the fixture does not test anything", d)
			}
			// merge_and_unload: the same logits, no adapters left
			if err := m.MergeAdapters(); err != nil {
				t.Fatal(err)
			}
			if m.HasAdapters() {
				t.Error("adapters left after merging")
			}
			if d := maxRelDiff(logitsOf(t, m, false), want); d > 1e-5 {
				t.Errorf("merged in rl: logits differ from peft's merge by %.3g", d)
			}
		})
	}
}

// TestLoraSaveAsPeft: fresh adapters leave the outputs unchanged (B = 0);
// saved, they have peft's keys, shapes and config fields; loaded back onto
// the base, they give the same logits bit for bit.
func TestLoraSaveAsPeft(t *testing.T) {
	for _, c := range []struct {
		fam     string
		targets []string
		want    map[string][]int64 // key -> shape, for layer 0
		conv    bool
	}{
		{"llama", []string{"q_proj", "v_proj"}, map[string][]int64{
			"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {4, 16},
			"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": {16, 4},
			"base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight": {8, 4}}, false},
		{"gpt2", nil, map[string][]int64{ // peft's default for gpt2: c_attn
			"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": {4, 16},
			"base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": {48, 4}}, true},
	} {
		t.Run(c.fam, func(t *testing.T) {
			baseDir := filepath.Join("testdata", "peft", c.fam, "base")
			m, err := Load(baseDir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			before := logitsOf(t, m, false)
			if err := m.AddLora(LoraConfig{R: 4, Alpha: 8, Dropout: 0.1, TargetModules: c.targets, BaseModel: baseDir}); err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(logitsOf(t, m, false), before); d != 0 {
				t.Errorf("fresh adapters change the logits by %.3g; peft's init leaves them unchanged", d)
			}
			// lora_A: U(-1/sqrt(in), 1/sqrt(in)), lora_B: zeros
			for _, p := range m.Trainable() {
				v := p.T.Float32s()
				lim := float32(1 / math.Sqrt(16))
				for _, x := range v {
					if strings.Contains(p.Name, "lora_B") && x != 0 || strings.Contains(p.Name, "lora_A") && (x < -lim || x > lim) {
						t.Fatalf("%s: value %g outside peft's init", p.Name, x)
					}
				}
			}
			// train-like change: B nonzero
			tensor.NoGrad(func() {
				for _, p := range m.Trainable() {
					if strings.Contains(p.Name, "lora_B") {
						p.T.Normal_(0, 0.3)
					}
				}
			})
			adapted := logitsOf(t, m, false)
			dir := t.TempDir()
			if err := m.SaveAdapter(dir); err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.ReadFile(filepath.Join(dir, AdapterWeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			for k, shape := range c.want {
				st, ok := f.Tensors[k]
				if !ok {
					t.Errorf("adapter lacks %s (has %v)", k, f.Names())
					continue
				}
				if !slices.Equal(st.Shape, shape) {
					t.Errorf("%s: shape %v, want %v", k, st.Shape, shape)
				}
			}
			var cfg map[string]any
			b, _ := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			for k, v := range map[string]any{"peft_type": "LORA", "r": 4.0, "lora_alpha": 8.0, "lora_dropout": 0.1, "fan_in_fan_out": c.conv,
				"task_type": "CAUSAL_LM", "bias": "none", "base_model_name_or_path": baseDir, "use_rslora": false} {
				if cfg[k] != v {
					t.Errorf("adapter_config.json %s = %v, want %v", k, cfg[k], v)
				}
			}
			back, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer back.Free()
			if d := maxRelDiff(logitsOf(t, back, false), adapted); d != 0 {
				t.Errorf("saved and loaded adapter: logits differ by %.3g", d)
			}
		})
	}
}

// TestLoraBadInputs: what rl cannot apply exactly is refused by name.
func TestLoraBadInputs(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", t.TempDir()) // a Hub id base: looked up in an empty cache, offline
	t.Setenv("HF_HUB_OFFLINE", "1")
	m, err := Load(filepath.Join("testdata", "peft", "llama", "base"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	for _, c := range []struct {
		cfg  LoraConfig
		want string
	}{
		{LoraConfig{R: 0, Alpha: 8}, "lora_r"},
		{LoraConfig{R: 4, Alpha: 8, TargetModules: []string{"c_attn"}}, "match no module"},
		{LoraConfig{R: 4, Alpha: 8, ModulesToSave: []string{"score"}}, "lora_modules_to_save"},
	} {
		if err := m.AddLora(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.want)
		}
	}
	src := filepath.Join("testdata", "peft", "llama", "adapter")
	for name, edit := range map[string]func(cfg map[string]any, f *safetensors.File){
		"use_dora":     func(cfg map[string]any, _ *safetensors.File) { cfg["use_dora"] = true },
		"peft_type":    func(cfg map[string]any, _ *safetensors.File) { cfg["peft_type"] = "IA3" },
		"rank_pattern": func(cfg map[string]any, _ *safetensors.File) { cfg["rank_pattern"] = map[string]any{"q_proj": 8} },
		"does not fit": func(_ map[string]any, f *safetensors.File) {
			f.Tensors["base_model.model.model.layers.0.self_attn.k2_proj.lora_A.weight"] = f.Tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
		},
		"only one of": func(_ map[string]any, f *safetensors.File) {
			delete(f.Tensors, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")
		},
		"rank":         func(cfg map[string]any, _ *safetensors.File) { cfg["r"] = 8 },
		"not a folder": func(cfg map[string]any, _ *safetensors.File) { cfg["base_model_name_or_path"] = "/org/not-here" },
		"base_model_name_or_path org/not-here: no such local folder, and as a Hub model id": func(cfg map[string]any, _ *safetensors.File) {
			cfg["base_model_name_or_path"] = "org/not-here" // a Hub id, not in the (empty) cache, offline
		},
		"no lora_A/lor": func(_ map[string]any, f *safetensors.File) { f.Tensors = map[string]safetensors.Tensor{} },
	} {
		dir := t.TempDir()
		var cfg map[string]any
		b, _ := os.ReadFile(filepath.Join(src, AdapterConfigFile))
		json.Unmarshal(b, &cfg)
		f, err := safetensors.ReadFile(filepath.Join(src, AdapterWeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		cfg["base_model_name_or_path"], _ = filepath.Abs(filepath.Join("testdata", "peft", "llama", "base"))
		edit(cfg, f)
		b, _ = json.Marshal(cfg)
		os.WriteFile(filepath.Join(dir, AdapterConfigFile), b, 0o644)
		if err := safetensors.WriteFile(filepath.Join(dir, AdapterWeightsFile), f); err != nil {
			t.Fatal(err)
		}
		_, err = Load(dir, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming it", name, err)
		}
	}
}

// TestLoadMerged: LoadOptions.Merged loads an adapter folder merged into
// its base: no adapters, peft's merged weights' logits.
func TestLoadMerged(t *testing.T) {
	root := filepath.Join("testdata", "peft", "llama")
	m, err := Load(filepath.Join(root, "adapter"), LoadOptions{BaseModel: filepath.Join(root, "base")}.Merged())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	want, err := Load(filepath.Join(root, "merged"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer want.Free()
	if m.HasAdapters() {
		t.Error("adapters left after a merged load")
	}
	if d := maxRelDiff(logitsOf(t, m, false), logitsOf(t, want, false)); d > 1e-5 {
		t.Errorf("merged load differs from peft's merge by %.3g", d)
	}
}

// TestDoraFixture: a DoRA adapter written the way peft writes it
// (tools/goldens/peft_adapter.py: lora_magnitude_vector [out] away from
// the row norms, use_dora true; GPT-2's fan_in_fan_out) gives the logits of
// peft's DoRA merge computed in PyTorch (merged/) within 1e-5; gradients
// reach A, B and the magnitude (the magnitude's equal to a central
// difference: the detached norm does not depend on it); saved and loaded
// back it is the same adapter; merged in rl it is peft's merge.
func TestDoraFixture(t *testing.T) {
	for _, fam := range []string{"llama_dora", "gpt2_dora"} {
		t.Run(fam, func(t *testing.T) {
			root := filepath.Join("testdata", "peft", fam)
			m, err := Load(filepath.Join(root, "adapter"), LoadOptions{BaseModel: filepath.Join(root, "base")})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			if c := m.LoraConfig(); c == nil || !c.UseDoRA {
				t.Fatal("adapter loaded without DoRA")
			}
			merged, err := Load(filepath.Join(root, "merged"), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer merged.Free()
			got, want := logitsOf(t, m, false), logitsOf(t, merged, false)
			if d := maxRelDiff(got, want); d > 1e-5 {
				t.Errorf("DoRA adapter logits differ from peft's merged weights by %.3g (want <= 1e-5)", d)
			}
			if d := maxRelDiff(got, logitsOf(t, m, true)); d < 1e-3 {
				t.Errorf("the adapter changes the logits by only %.3g: the fixture does not test anything", d)
			}

			m.NoDropout = true
			grads, loss := gradsOf(t, m)
			var kinds = map[string]int{}
			for _, p := range m.Trainable() {
				g := grads[p.Name]
				nz := 0
				for _, v := range g {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s: non-finite gradient", p.Name)
					}
					if v != 0 {
						nz++
					}
				}
				if nz == 0 {
					t.Errorf("%s: no gradient", p.Name)
				}
				for _, k := range []string{"lora_A", "lora_B", "lora_magnitude_vector"} {
					if strings.Contains(p.Name, k) {
						kinds[k]++
					}
				}
			}
			if len(kinds) != 3 {
				t.Errorf("trainable kinds %v, want lora_A, lora_B and lora_magnitude_vector", kinds)
			}
			var mag Param
			for _, p := range m.Trainable() {
				if strings.HasSuffix(p.Name, "lora_magnitude_vector") {
					mag = p
					break
				}
			}
			const h = 1e-2
			at := func(delta float64) float64 {
				tensor.NoGrad(func() {
					tensor.Tidy(func() {
						e := tensor.ZerosOn(mag.T.Shape(), mag.T.DType(), mag.T.Device())
						e.Narrow(0, 0, 1).AddScalar_(delta)
						mag.T.Copy_(mag.T.Add(e))
					})
				})
				_, l := gradsOf(t, m)
				return l
			}
			fd := (at(h) - at(-2*h)) / (2 * h)
			at(h)
			if g := float64(grads[mag.Name][0]); math.Abs(fd-g) > 1e-2*(1+math.Abs(g)) {
				t.Errorf("d loss / d %s[0] = %g, central difference %g (loss %g)", mag.Name, g, fd, loss)
			}

			dir := t.TempDir()
			if err := m.SaveAdapter(dir); err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			b, _ := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg["use_dora"] != true {
				t.Errorf("adapter_config.json use_dora = %v, want true", cfg["use_dora"])
			}
			f, err := safetensors.ReadFile(filepath.Join(dir, AdapterWeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			src, err := safetensors.ReadFile(filepath.Join(root, "adapter", AdapterWeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Names(), src.Names()) {
				t.Errorf("saved keys %v, peft's %v", f.Names(), src.Names())
			}
			back, err := Load(dir, LoadOptions{BaseModel: filepath.Join(root, "base")})
			if err != nil {
				t.Fatal(err)
			}
			defer back.Free()
			if d := maxRelDiff(logitsOf(t, back, false), got); d != 0 {
				t.Errorf("saved and loaded DoRA adapter: logits differ by %.3g", d)
			}
			if err := back.MergeAdapters(); err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(logitsOf(t, back, false), want); d > 1e-5 {
				t.Errorf("merged in rl: logits differ from peft's DoRA merge by %.3g", d)
			}
		})
	}
}

// TestDoraFresh: fresh DoRA adapters (magnitude = row norms of W, B = 0)
// leave the outputs unchanged, on a float and on a 4-bit base (whose norm
// is that of the dequantised weight), and a DoRA adapter on plain LoRA
// files (or a magnitude without use_dora) is refused by name.
func TestDoraFresh(t *testing.T) {
	for _, bits := range []int{0, 4} {
		m, err := Load(filepath.Join("testdata", "peft", "llama", "base"), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if bits > 0 {
			if err := m.Quantize(QuantConfig{Bits: bits, QuantType: "nf4"}); err != nil {
				t.Fatal(err)
			}
		}
		before := logitsOf(t, m, false)
		if err := m.AddLora(LoraConfig{R: 4, Alpha: 8, UseDoRA: true, TargetModules: []string{"all-linear"}}); err != nil {
			t.Fatal(err)
		}
		if d := maxRelDiff(logitsOf(t, m, false), before); d > 1e-6 {
			t.Errorf("bits %d: fresh DoRA adapters change the logits by %.3g", bits, d)
		}
		n := 0
		for _, p := range m.Trainable() {
			if strings.HasSuffix(p.Name, ".lora_magnitude_vector") {
				n++
			}
		}
		if n != 14 {
			t.Errorf("bits %d: %d magnitude vectors, want 14 (7 projections x 2 layers)", bits, n)
		}
		m.Free()
	}
	src := filepath.Join("testdata", "peft", "llama_dora", "adapter")
	dir := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(src, AdapterConfigFile))
	var cfg map[string]any
	json.Unmarshal(b, &cfg)
	cfg["use_dora"] = false
	b, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, AdapterConfigFile), b, 0o644)
	f, _ := os.ReadFile(filepath.Join(src, AdapterWeightsFile))
	os.WriteFile(filepath.Join(dir, AdapterWeightsFile), f, 0o644)
	if _, err := Load(dir, LoadOptions{BaseModel: filepath.Join("testdata", "peft", "llama_dora", "base")}); err == nil || !strings.Contains(err.Error(), "use_dora") {
		t.Errorf("a magnitude without use_dora: error %v, want one naming use_dora", err)
	}
}
