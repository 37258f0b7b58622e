package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/train"
)

// ---------------------------------------------------------------- shapes

// shape is one of torch_ref.py's CONFIGS: model dims and the SFT workload.
type shape struct {
	Preset string // rl's model.Preset name
	Layers int
	Heads  int
	Width  int
	Vocab  int
	SeqLen int // also the model's positions (torch_ref's wpe has seq_len rows)
	Batch  int
	// ConfigJSON, when set, is the model's config.json instead of Preset
	// (a Llama shape: no position embeddings, an untied head).
	ConfigJSON string
}

// tinyLlamaJSON is TinyLlama-1.1B's config.json (TinyLlama/TinyLlama-1.1B-Chat-v1.0):
// 22 layers, hidden 2048, SwiGLU 5632, 32 heads and 4 kv heads, vocab 32000, rope 10000, untied head.
const tinyLlamaJSON = `{"model_type":"llama","architectures":["LlamaForCausalLM"],"hidden_size":2048,` +
	`"num_hidden_layers":22,"num_attention_heads":32,"num_key_value_heads":4,"intermediate_size":5632,` +
	`"max_position_embeddings":2048,"rms_norm_eps":1e-5,"rope_theta":10000,"tie_word_embeddings":false,"vocab_size":32000}`

var shapes = map[string]shape{
	"tiny":  {Preset: "tiny", Layers: 4, Heads: 4, Width: 256, Vocab: 8192, SeqLen: 128, Batch: 8},
	"gpt2s": {Preset: "gpt2-small", Layers: 12, Heads: 12, Width: 768, Vocab: 50257, SeqLen: 128, Batch: 4},
	// The long shapes: tools/bench/torch_ref_ext.py's extra CONFIGS.
	"tiny-512":   {Preset: "tiny", Layers: 4, Heads: 4, Width: 256, Vocab: 8192, SeqLen: 512, Batch: 8},
	"tiny-1024":  {Preset: "tiny", Layers: 4, Heads: 4, Width: 256, Vocab: 8192, SeqLen: 1024, Batch: 8},
	"gpt2s-512":  {Preset: "gpt2-small", Layers: 12, Heads: 12, Width: 768, Vocab: 50257, SeqLen: 512, Batch: 8},
	"gpt2s-1024": {Preset: "gpt2-small", Layers: 12, Heads: 12, Width: 768, Vocab: 50257, SeqLen: 1024, Batch: 8},
	// TinyLlama's shape with random weights, bf16 SFT (--long; ~20 GB).
	"tinyllama-512": {Layers: 22, Heads: 32, Width: 2048, Vocab: 32000, SeqLen: 512, Batch: 1, ConfigJSON: tinyLlamaJSON},
}

// torch_ref.py's fixed workload settings.
const (
	dpoPrompt = 32  // --dpo-prompt
	dpoBeta   = 0.1 // dpo_step's beta
	genBatch  = 8   // --gen-batch
	genPrompt = 32  // --gen-prompt
	genNew    = 64  // --gen-new
	lr        = 3e-4
)

// newModel builds rl's GPT-2 for a shape with torch_ref's init (N(0, 0.02),
// residual c_proj scaled by 1/sqrt(2 n_layer), zero biases, unit LN weights:
// what model.New does) from libtorch's generator seeded with seed.
func newModel(s shape, seed int64) (*model.Model, error) {
	var cfg *model.Config
	var err error
	if s.ConfigJSON != "" {
		cfg, err = model.ParseConfig([]byte(s.ConfigJSON))
	} else {
		cfg, err = model.Preset(s.Preset, s.Vocab)
	}
	if err != nil {
		return nil, err
	}
	if s.ConfigJSON == "" {
		cfg.MaxPositions = s.SeqLen
	}
	if cfg.NumLayers != s.Layers || cfg.NumHeads != s.Heads || cfg.HiddenSize != s.Width {
		return nil, fmt.Errorf("preset %s is %d/%d/%d, torch_ref's shape is %d/%d/%d", s.Preset,
			cfg.NumLayers, cfg.NumHeads, cfg.HiddenSize, s.Layers, s.Heads, s.Width)
	}
	tensor.ManualSeed(seed)
	return model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
}

// sftRig is an SFT workload: a trainable model of a shape, its AdamW and
// one fixed (B, T) batch.
type sftRig struct {
	m    *model.Model
	opt  *train.AdamW
	x, y *tensor.Tensor
}

// newSFTRig builds an sftRig with torch_ref's init and a batch drawn from
// PCG(0, stream). Free it when done.
func newSFTRig(s shape, B, T int, stream uint64) (*sftRig, error) {
	m, err := newModel(s, 0)
	if err != nil {
		return nil, err
	}
	m.SetRequiresGrad(true)
	r := &sftRig{m: m, opt: newAdamW(m)}
	r.x, r.y = sftBatch(rand.New(rand.NewPCG(0, stream)), B, T, s.Vocab)
	return r, nil
}

func (r *sftRig) free() {
	r.x.Free()
	r.y.Free()
	r.opt.Free()
	r.m.Free()
}

// newAdamW is torch_ref's make_opt: AdamW(lr 3e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1).
func newAdamW(m *model.Model) *train.AdamW {
	a := train.DefaultArgs()
	a.LearningRate = lr
	a.AdamBeta1, a.AdamBeta2, a.AdamEpsilon, a.WeightDecay = 0.9, 0.95, 1e-8, 0.1
	return train.NewAdamW(m.Params(), &a)
}

// randomIDs is a (rows, cols) int64 tensor of ids uniform in [0, vocab),
// owned by the caller.
func randomIDs(rng *rand.Rand, rows, cols, vocab int) ([]int64, *tensor.Tensor) {
	v := make([]int64, rows*cols)
	for i := range v {
		v[i] = rng.Int64N(int64(vocab))
	}
	return v, tensor.FromInt64s(v, int64(rows), int64(cols)).Keep()
}

// sftBatch is torch_ref's data = randint(0, V, (B, T+1)); x = data[:, :-1]; y = data[:, 1:].
func sftBatch(rng *rand.Rand, B, T, V int) (x, y *tensor.Tensor) {
	data, _ := randomIDs(rng, B, T+1, V)
	xs := make([]int64, 0, B*T)
	ys := make([]int64, 0, B*T)
	for b := 0; b < B; b++ {
		row := data[b*(T+1) : (b+1)*(T+1)]
		xs = append(xs, row[:T]...)
		ys = append(ys, row[1:]...)
	}
	return tensor.FromInt64s(xs, int64(B), int64(T)).Keep(), tensor.FromInt64s(ys, int64(B), int64(T)).Keep()
}

// sftStep is torch_ref's sft_step (forward, cross-entropy over all
// positions, backward, AdamW step, loss.item()) in the order rl's trainer
// (shared/train) runs it: forward, loss and backward inside a tensor.Tidy,
// then the optimizer step and ZeroGrad outside it.
func sftStep(m *model.Model, opt *train.AdamW, x, y *tensor.Tensor) float64 {
	return sftStepX(m, opt, x, y, rlMode, nil)
}

// stepMode picks a variant of a training step.
type stepMode struct {
	Scoped   bool // the policy forward and loss in a nested Tidy keeping only the loss (rl's trainer)
	ScopeRef bool // DPO: the reference forward in a nested Tidy keeping only its log-probs (rl's dpo)
	BF16     bool // the forward under bfloat16 autocast (rl's --bf16)
}

var (
	// rlMode is what rl's trainers do.
	rlMode = stepMode{Scoped: true, ScopeRef: true}
	// unscopedMode frees the step's temporaries only at its end.
	unscopedMode = stepMode{}
)

// autocast runs fn under bfloat16 autocast when bf16 is set.
func autocast(bf16 bool, fn func()) {
	if bf16 {
		tensor.Autocast(tensor.BFloat16, fn)
		return
	}
	fn()
}

// lossBackward runs fwd (the forward pass and the loss; with scoped in a
// nested Tidy that keeps only the loss), then item and backward, timed.
func lossBackward(scoped bool, pt *phaseTimer, fwd func() *tensor.Tensor) float64 {
	var l *tensor.Tensor
	if scoped {
		tensor.Tidy(func() { l = fwd().Keep() })
		defer l.Free()
	} else {
		l = fwd()
	}
	loss := l.Item()
	pt.mark("item")
	l.Backward()
	pt.mark("backward")
	return loss
}

// optimizerStep is the end of a step in rl's trainer order (after the
// step's scope has freed its tensors): AdamW update, then zero_grad.
func optimizerStep(opt *train.AdamW, pt *phaseTimer) {
	pt.mark("free")
	opt.Update(lr)
	pt.mark("optimizer")
	opt.ZeroGrad()
	pt.mark("zero_grad")
	pt.end()
}

// sftStepX is sftStep; with scoped, the forward pass and the loss run in a
// nested Tidy that keeps only the loss, so that the activations are held by
// autograd alone, which frees each once backward has used it (PyTorch's
// lifetimes). pt (may be nil) times the phases.
func sftStepX(m *model.Model, opt *train.AdamW, x, y *tensor.Tensor, mode stepMode, pt *phaseTimer) (loss float64) {
	pt.start()
	tensor.Tidy(func() {
		var l *tensor.Tensor
		fwd := func() {
			autocast(mode.BF16, func() {
				h := m.Hidden(&model.Input{IDs: x}) // (B, T, H)
				pt.mark("hidden")
				logits := m.Logits(h) // (B, T, V)
				pt.mark("lm_head")
				l = logits.View(-1, logits.Size(-1)).CrossEntropy(y.View(-1), -100, tensor.ReduceMean)
				pt.mark("loss")
			})
		}
		loss = lossBackward(mode.Scoped, pt, func() *tensor.Tensor { fwd(); return l })
	})
	optimizerStep(opt, pt)
	return loss
}

// ---------------------------------------------------------------- sft

func rlSFT(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "sft_step "+config)
	s := shapes[config]
	hwmReset := resetHWM()
	rssBefore := rssKB()
	t0 := time.Now()
	rig, err := newSFTRig(s, s.Batch, s.SeqLen, 1)
	if err != nil {
		return nil, err
	}
	defer rig.free()
	buildMs := time.Since(t0).Seconds() * 1000
	m, opt, x, y := rig.m, rig.opt, rig.x, rig.y
	first := sftStep(m, opt, x, y)
	st := measure(func() { sftStep(m, opt, x, y) }, float64(s.Batch*s.SeqLen), p)
	last := sftStep(m, opt, x, y)
	peak := hwmKB()
	// The same step with --bf16 (autocast, float32 master weights), against
	// PyTorch's float32 figure: torch_ref.py has no bf16 mode.
	bf := stepMode{Scoped: true, BF16: true}
	sftStepX(m, opt, x, y, bf, nil)
	bst := measure(func() { sftStepX(m, opt, x, y, bf, nil) }, float64(s.Batch*s.SeqLen), p)
	bfLast := sftStepX(m, opt, x, y, bf, nil)
	tokFlops := trainFlopsPerToken(matmulParams(m.NumParams(), s), s)
	bfRes := &Result{Name: "sft_step_bf16", Config: config, Unit: "tokens/s", Better: higher, RL: bst.Value, RLStats: &bst,
		Target: "(vs PyTorch float32)", FlopsPerUnit: tokFlops, Precision: bf16, TorchPrecision: fp32, Extra: map[string]any{"loss_last": round4(bfLast),
			"note": "rl --bf16 (CPU autocast to bfloat16, float32 master weights) against torch_ref.py's float32 sft_step"},
		torchValue: e.cachedTorchValue("sft", config, "sft_step", p)}

	r := &Result{Name: "sft_step", Config: config, Unit: "tokens/s", Better: higher, RL: st.Value, RLStats: &st,
		Target: ">= 1.0x PyTorch", FlopsPerUnit: tokFlops, Precision: fp32, Extra: map[string]any{
			"params": m.NumParams(), "model_build_ms": round2(buildMs),
			"loss_first": round4(first), "loss_last": round4(last),
			"batch": s.Batch, "seq_len": s.SeqLen,
		}}
	mem := &Result{Name: "peak_rss_sft", Config: config, Unit: "MB", Better: lower, RL: round2(float64(peak) / 1024),
		Extra: map[string]any{"vm_hwm_kb": peak, "rss_before_kb": rssBefore, "hwm_reset": hwmReset,
			"note": "rl: VmHWM of this process over the SFT bench (reset before it when the kernel allows); " +
				"PyTorch: VmHWM of the torch_ref.py process (includes the Python interpreter and `import torch`; with --interleave the largest of its processes)"},
		torchValue: func(run *torchRun) (float64, torchRecord, error) {
			if run == nil || run.MaxRSSKB == 0 {
				return 0, nil, fmt.Errorf("no torch_ref.py process")
			}
			return round2(float64(run.MaxRSSKB) / 1024), nil, nil
		}}
	switch config { // issue #14's targets
	case "tiny":
		r.Target, r.minRatio = ">= 1.3x PyTorch", 1.3
	case "gpt2s":
		r.Target, r.minMFU = "MFU >= 50% fp32", 0.5
		bfRes.Target, bfRes.minRatio = ">= 2.5x PyTorch float32", 2.5
	}
	if !hwmReset {
		mem.Extra["note"] = "rl: VmHWM of the whole process so far (clear_refs refused): " + mem.Extra["note"].(string)
	}
	return []*Result{r, bfRes, mem}, nil
}

// ---------------------------------------------------------------- dpo

// seqLogps is torch_ref's seq_logps: sum over masked positions of log p(tgt).
func seqLogps(logits, tgt, mask *tensor.Tensor) *tensor.Tensor {
	lp := logits.LogSoftmax(-1).Gather(-1, tgt.Unsqueeze(-1)).Squeeze(-1)
	return lp.Mul(mask).SumDim(-1, false)
}

// dpoStep is torch_ref's dpo_step: one concatenated (2B, T) forward of the
// reference under no-grad and of the policy, sigmoid DPO loss on summed
// masked log-probs, backward, AdamW; in rl's trainer order (see sftStep).
func dpoStep(policy, ref *model.Model, opt *train.AdamW, chosen, rejected, mask *tensor.Tensor) float64 {
	return dpoStepX(policy, ref, opt, chosen, rejected, mask, rlMode, nil)
}

// dpoStepX is dpoStep; scopeRef runs the reference forward in a nested Tidy
// that keeps only its log-probs, scopePolicy the policy forward and the loss
// in one that keeps only the loss (see sftStepX).
func dpoStepX(policy, ref *model.Model, opt *train.AdamW, chosen, rejected, mask *tensor.Tensor, mode stepMode, pt *phaseTimer) (loss float64) {
	pt.start()
	tensor.Tidy(func() {
		B := chosen.Size(0)
		seqs := tensor.Cat([]*tensor.Tensor{chosen, rejected}, 0) // (2B, T+1)
		T := seqs.Size(1) - 1
		inp, tgt := seqs.Narrow(1, 0, T), seqs.Narrow(1, 1, T)
		var refLp, l *tensor.Tensor
		tensor.NoGrad(func() {
			autocast(mode.BF16, func() {
				if mode.ScopeRef {
					tensor.Tidy(func() { refLp = seqLogps(ref.Forward(&model.Input{IDs: inp}), tgt, mask).Keep() })
				} else {
					refLp = seqLogps(ref.Forward(&model.Input{IDs: inp}), tgt, mask)
				}
			})
		})
		if mode.ScopeRef {
			defer refLp.Free()
		}
		pt.mark("ref_forward")
		fwd := func() {
			autocast(mode.BF16, func() {
				polLp := seqLogps(policy.Forward(&model.Input{IDs: inp}), tgt, mask)
				pt.mark("policy_forward")
				chosenR := polLp.Narrow(0, 0, B).Sub(refLp.Narrow(0, 0, B))
				rejectedR := polLp.Narrow(0, B, B).Sub(refLp.Narrow(0, B, B))
				l = chosenR.Sub(rejectedR).MulScalar(dpoBeta).LogSigmoid().Mean().Neg()
				pt.mark("loss")
			})
		}
		loss = lossBackward(mode.Scoped, pt, func() *tensor.Tensor { fwd(); return l })
	})
	optimizerStep(opt, pt)
	return loss
}

func rlDPO(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "dpo_step "+config)
	s := shapes[config]
	policy, err := newModel(s, 0)
	if err != nil {
		return nil, err
	}
	defer policy.Free()
	ref, err := newModel(s, 0) // the same seed: a frozen copy of the policy
	if err != nil {
		return nil, err
	}
	defer ref.Free()
	policy.SetRequiresGrad(true)
	ref.SetRequiresGrad(false)
	opt := newAdamW(policy)
	defer opt.Free()

	B, T := s.Batch, s.SeqLen
	chosen, rejected, mask := dpoBatch(s)
	defer chosen.Free()
	defer rejected.Free()
	defer mask.Free()

	first := dpoStep(policy, ref, opt, chosen, rejected, mask)
	st := measure(func() { dpoStep(policy, ref, opt, chosen, rejected, mask) }, float64(B), p)
	last := dpoStep(policy, ref, opt, chosen, rejected, mask)
	bf := rlMode
	bf.BF16 = true
	dpoStepX(policy, ref, opt, chosen, rejected, mask, bf, nil)
	bst := measure(func() { dpoStepX(policy, ref, opt, chosen, rejected, mask, bf, nil) }, float64(B), p)
	// A pair is 2T policy tokens trained and 2T reference tokens forwarded.
	n := matmulParams(policy.NumParams(), s)
	pairFlops := 2 * float64(T) * (trainFlopsPerToken(n, s) + forwardFlopsPerToken(n, s))
	return []*Result{{Name: "dpo_step", Config: config, Unit: "pairs/s", Better: higher, RL: st.Value, RLStats: &st,
		Target: ">= 1.0x PyTorch", FlopsPerUnit: pairFlops, Precision: fp32, Extra: map[string]any{
			"pairs_per_step": B, "policy_tokens_per_s": round2(st.Value * 2 * float64(T)), "prompt_len": dpoPrompt,
			"beta": dpoBeta, "loss_first": round4(first), "loss_last": round4(last),
		}}, {Name: "dpo_step_bf16", Config: config, Unit: "pairs/s", Better: higher, RL: bst.Value, RLStats: &bst,
		Target: "(vs PyTorch float32)", FlopsPerUnit: pairFlops, Precision: bf16, TorchPrecision: fp32, Extra: map[string]any{
			"note": "rl --bf16 (policy and reference forwards under bfloat16 autocast) against torch_ref.py's float32 dpo_step"},
		torchValue: e.cachedTorchValue("dpo", config, "dpo_step", p)}}, nil
}

// ---------------------------------------------------------------- sampling

func rlSample(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "sample "+config)
	s := shapes[config]
	m, err := newModel(s, 0)
	if err != nil {
		return nil, err
	}
	defer m.Free()
	rng := rand.New(rand.NewPCG(0, 3))
	prompts := make([][]int, genBatch)
	for b := range prompts {
		for i := 0; i < genPrompt; i++ {
			prompts[b] = append(prompts[b], rng.IntN(s.Vocab))
		}
	}
	gcfg := func(n int, noCache bool, seed uint64) generate.Config {
		return generate.Config{DoSample: true, Temperature: 1, TopP: 1, MaxNewTokens: n, NoCache: noCache, Seed: seed}
	}
	var genErr error
	gen := func(c generate.Config) []generate.Result {
		out, err := generate.Generate(m, prompts, c)
		if err != nil && genErr == nil {
			genErr = err
		}
		return out
	}
	for _, noCache := range []bool{true, false} { // torch_ref's order: no cache, then cache
		name := "sample_kvcache"
		if noCache {
			name = "sample_nocache"
		}
		c := gcfg(genNew, noCache, 1)
		out := gen(c)
		if genErr != nil {
			return res, genErr
		}
		for b, r := range out {
			if len(r.Tokens) != genNew {
				return res, fmt.Errorf("%s: row %d generated %d tokens, want %d", name, b, len(r.Tokens), genNew)
			}
		}
		st := measure(func() { gen(c) }, float64(genBatch*genNew), p)
		if genErr != nil {
			return res, genErr
		}
		res = append(res, &Result{Name: name, Config: config, Unit: "new_tokens/s", Better: higher, RL: st.Value, RLStats: &st,
			Target: ">= 1.0x PyTorch", Extra: map[string]any{
				"gen_batch": genBatch, "prompt_len": genPrompt, "new_tokens": genNew,
				"sampling": "multinomial T=1.0, no top-k (rl: in Go, generate.Generate)",
				"note":     "value = B*new_tokens / wall s per Generate call (prefill included)",
			}})
	}
	// With the same seed both paths must give the same tokens.
	a := gen(gcfg(16, false, 7))
	b := gen(gcfg(16, true, 7))
	if genErr != nil {
		return res, genErr
	}
	same, total := 0, 0
	for i := range a {
		for j := range a[i].Tokens {
			total++
			if j < len(b[i].Tokens) && a[i].Tokens[j] == b[i].Tokens[j] {
				same++
			}
		}
	}
	res = append(res, &Result{Name: "check_kvcache_equivalence", Config: config, Unit: "fraction_tokens_equal",
		RL: float64(same) / float64(max(total, 1)), Target: "1.0", pass: func(v float64) bool { return v == 1 }})
	return res, nil
}

// ---------------------------------------------------------------- per-op overhead

func rlOps(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "op overhead")
	n := e.opts.ops
	x := tensor.Ones([]int64{8, 256}, tensor.Float32, tensor.CPU).Keep()
	y := tensor.Ones([]int64{8, 256}, tensor.Float32, tensor.CPU).Keep()
	defer x.Free()
	defer y.Free()
	// Warm up until the Go heap has reached its steady size (each op
	// allocates a small Go handle, collected by the GC): a few GC cycles.
	// Otherwise the first GC cycles' heap growth (~5 MB of Go pages touched
	// once) reads as RSS growth of the ops.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gc0 := ms.NumGC
	warm := 0
	for ; warm < 2_000_000; warm += 10000 {
		for i := 0; i < 10000; i++ {
			x.Add(y).Free()
		}
		runtime.ReadMemStats(&ms)
		if ms.NumGC >= gc0+3 && warm >= 100000 {
			break
		}
	}
	before := rssKB()
	start := time.Now()
	for i := 0; i < n; i++ {
		x.Add(y).Free()
	}
	el := time.Since(start)
	growth := rssKB() - before
	usOp := float64(el.Nanoseconds()) / float64(n) / 1000
	res = append(res,
		&Result{Name: "op_add_free", Config: "8x256 f32", Unit: "us/op", Better: lower, RL: round3(usOp),
			Target: "< 2 us", pass: func(v float64) bool { return v < 2 },
			Extra: map[string]any{"ops": n, "wall_s": round2(el.Seconds()), "threads": tensor.NumThreads()}},
		&Result{Name: "op_rss_growth", Config: fmt.Sprintf("%d ops", n), Unit: "MB", Better: lower, RL: round3(float64(growth) / 1024),
			Target: "< 1 MB", pass: func(v float64) bool { return v < 1 },
			Extra: map[string]any{"rss_before_kb": before, "rss_after_kb": before + growth, "warmup_ops": warm,
				"note": "VmRSS after minus before the timed ops, after warming up until the Go heap is at its steady size"}},
	)
	return res, nil
}

// ---------------------------------------------------------------- memory over a long run

func rlMemory(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "memory")
	const B, T = 2, 32
	s := shapes["tiny"]
	steps := e.opts.memSteps
	base := 100
	if steps < 2*base {
		base = max(1, steps/10)
	}
	rig, err := newSFTRig(s, B, T, 4)
	if err != nil {
		return nil, err
	}
	defer rig.free()
	m, opt, x, y := rig.m, rig.opt, rig.x, rig.y
	var rssBase int64
	curve := map[int]int64{}
	start := time.Now()
	for i := 1; i <= steps; i++ {
		sftStep(m, opt, x, y)
		if i == base {
			rssBase = rssKB()
		}
		if i%100 == 0 || i == base || i == steps {
			curve[i] = rssKB()
		}
	}
	el := time.Since(start)
	end := rssKB()
	pct := 100 * float64(end-rssBase) / float64(max(rssBase, 1))
	return []*Result{{Name: "train_rss_growth", Config: fmt.Sprintf("tiny B%d T%d, step %d->%d", B, T, base, steps),
		Unit: "%", Better: lower, RL: round2(pct), Target: "< 5%", pass: func(v float64) bool { return v < 5 },
		Extra: map[string]any{"steps": steps, "base_step": base, "rss_base_kb": rssBase, "rss_end_kb": end,
			"rss_kb_by_step": curve, "step_ms_mean": round2(el.Seconds() * 1000 / float64(steps))}}}, nil
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
func round4(v float64) float64 { return math.Round(v*10000) / 10000 }

// ---------------------------------------------------------------- a Llama-1B shape in bf16

// llamaMemKB is what the TinyLlama shape's bf16 SFT step needs free: float32
// weights, gradients and two AdamW moments of 1.1B parameters (17.6 GB),
// autocast's bfloat16 weight copies and the activations.
const llamaMemKB = 22 << 20

// rlSFTLlama is torch_ref_ext.py's bench_sft_llama: one SFT step of
// TinyLlama's shape (random weights) with rl's --bf16, against PyTorch's
// own bf16 autocast step, plus both peak RSS.
func rlSFTLlama(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "sft_step_bf16 "+config)
	s := shapes[config]
	if avail := statusKB("/proc/meminfo", "MemAvailable"); avail < llamaMemKB {
		return nil, fmt.Errorf("needs about %.0f GB of free memory, %.1f GB available: run it on a machine with more", float64(llamaMemKB)/(1<<20), float64(avail)/(1<<20))
	}
	hwmReset := resetHWM()
	rig, err := newSFTRig(s, s.Batch, s.SeqLen, 1)
	if err != nil {
		return nil, err
	}
	defer rig.free()
	m, opt, x, y := rig.m, rig.opt, rig.x, rig.y
	bf := stepMode{Scoped: true, BF16: true}
	first := sftStepX(m, opt, x, y, bf, nil)
	st := measure(func() { sftStepX(m, opt, x, y, bf, nil) }, float64(s.Batch*s.SeqLen), p)
	last := sftStepX(m, opt, x, y, bf, nil)
	peak := hwmKB()
	r := &Result{Name: "sft_step_bf16", Config: config, Unit: "tokens/s", Better: higher, RL: st.Value, RLStats: &st,
		Target: ">= 1.0x PyTorch bf16", FlopsPerUnit: trainFlopsPerToken(matmulParams(m.NumParams(), s), s), Precision: bf16,
		Extra: map[string]any{"params": m.NumParams(), "loss_first": round4(first), "loss_last": round4(last),
			"batch": s.Batch, "seq_len": s.SeqLen,
			"note": "TinyLlama-1.1B's shape, random weights: rl --bf16 against torch.autocast(cpu, bfloat16), both float32 AdamW"}}
	mem := &Result{Name: "peak_rss_sft_bf16", Config: config, Unit: "MB", Better: lower, RL: round2(float64(peak) / 1024),
		Extra: map[string]any{"vm_hwm_kb": peak, "hwm_reset": hwmReset},
		torchValue: func(run *torchRun) (float64, torchRecord, error) {
			if run == nil || run.MaxRSSKB == 0 {
				return 0, nil, fmt.Errorf("no torch_ref_ext.py process")
			}
			return round2(float64(run.MaxRSSKB) / 1024), nil, nil
		}}
	return []*Result{r, mem}, nil
}
