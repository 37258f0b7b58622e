package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/model"
)

// TestTrainFlopsTiny checks the FLOPs per token of the tiny shape against
// the count by hand: per layer 12d²+13d weights (c_attn 3d²+3d, c_proj
// d²+d, c_fc 4d²+4d, mlp c_proj 4d²+d, two LNs 4d), the tied wte V·d once,
// ln_f 2d, no wpe; 6N + 12·L·T·d.
func TestTrainFlopsTiny(t *testing.T) {
	s := shapes["tiny"]
	cfg, err := model.Preset(s.Preset, s.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxPositions = s.SeqLen
	params := int64(model.NumParamsFor(cfg, model.LMHead))
	d, L, V, T := 256.0, 4.0, 8192.0, 128.0
	n := L*(12*d*d+13*d) + V*d + 2*d
	want := 6*n + 12*L*T*d
	if got := trainFlopsPerToken(matmulParams(params, s), s); got != want {
		t.Fatalf("trainFlopsPerToken(tiny) = %g, want %g (N %d vs %g)", got, want, matmulParams(params, s), n)
	}
	if got, want := forwardFlopsPerToken(matmulParams(params, s), s), 2*n+4*L*T*d; got != want {
		t.Fatalf("forwardFlopsPerToken(tiny) = %g, want %g", got, want)
	}
}

// TestFillMFU checks MFU = throughput x FLOPs per unit / the peak of the
// row's precision, PyTorch's against its own precision, and the MFU target.
func TestFillMFU(t *testing.T) {
	torch := 50.0
	rep := &report{Results: []*Result{
		{Name: "gemm_peak_fp32", RL: 100}, // GFLOP/s
		{Name: "gemm_peak_bf16", RL: 400}, // GFLOP/s
		{Name: "a", RL: 80, Torch: &torch, FlopsPerUnit: 1e9, Precision: fp32, minMFU: 0.5}, // 80%
		{Name: "b", RL: 100, Torch: &torch, FlopsPerUnit: 1e9, Precision: bf16, TorchPrecision: fp32, minMFU: 0.5},
		{Name: "c", RL: 3},
	}}
	fillMFU(&env{opts: &options{}}, rep)
	a, b, c := rep.Results[2], rep.Results[3], rep.Results[4]
	check := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 1e-9 {
			t.Errorf("%s = %v, want %g", name, got, want)
		}
	}
	check("a MFU", a.MFU, 0.8)
	check("a PyTorch MFU", a.TorchMFU, 0.5)
	check("b MFU (bf16 peak)", b.MFU, 0.25)
	check("b PyTorch MFU (fp32 peak)", b.TorchMFU, 0.5)
	if a.Pass == nil || !*a.Pass || b.Pass == nil || *b.Pass {
		t.Errorf("MFU targets: a pass %v (want true), b pass %v (want false)", a.Pass, b.Pass)
	}
	if c.MFU != nil {
		t.Errorf("a row without FLOPs has MFU %v", *c.MFU)
	}
	if got := mfuCell(b); got != "25% bf16 / 50% fp32" {
		t.Errorf("mfuCell = %q", got)
	}
}

// TestMarkdown renders a results file and checks the table, the date and
// machine line and the peaks; a missing file is an error naming the flag.
func TestMarkdown(t *testing.T) {
	torch, ratio, mfu := 100.0, 1.5, 0.42
	rep := report{
		Meta: map[string]any{"date": "2026-12-02T03:00:00Z", "cpu": "Test CPU", "num_cpu": 2, "threads": 2, "cpu_isa": "avx512f"},
		Results: []*Result{
			{Name: "gemm_peak_fp32", Config: "2048x2048x2048", Unit: "GFLOP/s", RL: 300},
			{Name: "sft_step", Config: "tiny", Unit: "tokens/s", RL: 150, Torch: &torch, Ratio: &ratio,
				MFU: &mfu, Precision: fp32, Target: ">= 1.3x PyTorch"},
		},
	}
	b, _ := json.Marshal(rep)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeMarkdown(&out, path); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"## Benchmarks", "One run on 2026-12-02: Test CPU, 2 CPUs (avx512f)",
		"| sft_step, tokens/s", "| 150 |", " 1.50 |", "42% fp32", "fp32 300 GFLOP/s", "How results vary across CPUs"} {
		if !strings.Contains(s, want) {
			t.Errorf("markdown lacks %q:\n%s", want, s)
		}
	}
	if err := writeMarkdown(&out, filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "--json") {
		t.Errorf("missing file: err %v, want one naming --json", err)
	}
}

// TestTinyLlamaShape checks the TinyLlama shape against TinyLlama-1.1B's
// published parameter count (1,100,048,384) and that its N leaves out only
// the input embeddings (32000 x 2048; the untied head is a matmul).
func TestTinyLlamaShape(t *testing.T) {
	s := shapes["tinyllama-512"]
	cfg, err := model.ParseConfig([]byte(s.ConfigJSON))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NumLayers != s.Layers || cfg.NumHeads != s.Heads || cfg.HiddenSize != s.Width || cfg.VocabSize != s.Vocab {
		t.Fatalf("config %d/%d/%d/%d, shape %+v", cfg.NumLayers, cfg.NumHeads, cfg.HiddenSize, cfg.VocabSize, s)
	}
	params := int64(model.NumParamsFor(cfg, model.LMHead))
	if params != 1_100_048_384 {
		t.Fatalf("TinyLlama shape has %d parameters, want 1,100,048,384", params)
	}
	if got, want := matmulParams(params, s), int64(1_100_048_384-32000*2048); got != want {
		t.Fatalf("matmulParams = %d, want %d", got, want)
	}
}

// TestLongShapes checks that each shape with a '-' is in torch_ref_ext.py's
// CONFIGS (a long shape tools/bench runs must exist on the PyTorch side),
// and that --config selects a family's long shapes.
func TestLongShapes(t *testing.T) {
	src, err := os.ReadFile("torch_ref_ext.py")
	if err != nil {
		t.Fatal(err)
	}
	for name := range shapes {
		if strings.Contains(name, "-") && !strings.Contains(string(src), `"`+name+`"`) {
			t.Errorf("shape %s is not in torch_ref_ext.py", name)
		}
	}
	o := &options{}
	if err := parseSelection(o, "sft", "tiny"); err != nil {
		t.Fatal(err)
	}
	if !o.configs[family("tiny-1024")] || o.configs[family("gpt2s-512")] {
		t.Errorf("--config tiny selects %v", o.configs)
	}
	o = &options{}
	if err := parseSelection(o, "sft", "gpt2s-1024"); err != nil || !o.configs["gpt2s-1024"] || !o.long || o.configs["gpt2s"] {
		t.Errorf("--config gpt2s-1024: err %v, configs %v, long %v", err, o.configs, o.long)
	}
	if err := parseSelection(&options{}, "sft", "gpt2s-2048"); err == nil || !strings.Contains(err.Error(), "tiny-512") {
		t.Errorf("--config gpt2s-2048: err %v, want one listing the shapes", err)
	}
}
