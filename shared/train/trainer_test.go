package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

func init() { tensor.SetNumThreads(0) }

// lmBatch is a batch of equal-length token rows.
type lmBatch struct {
	ids  []int64
	B, T int
}

func (b lmBatch) NumTokens() int { return b.B * b.T }

type lmData struct{ rows [][]int64 }

func (d lmData) Len() int { return len(d.rows) }
func (d lmData) Batch(idx []int) (lmBatch, error) {
	b := lmBatch{B: len(idx), T: len(d.rows[0])}
	for _, i := range idx {
		b.ids = append(b.ids, d.rows[i]...)
	}
	return b, nil
}

type lmTask struct{ m *model.Model }

func (t lmTask) Loss(b lmBatch, acc *metrics.Accumulator, train bool) *tensor.Tensor {
	ids := tensor.FromInt64s(b.ids, int64(b.B), int64(b.T))
	logits := t.m.Forward(&model.Input{IDs: ids.Narrow(1, 0, int64(b.T-1))})
	V := logits.Size(-1)
	loss := logits.Reshape(-1, V).CrossEntropy(ids.Narrow(1, 1, int64(b.T-1)).Contiguous().Reshape(-1), -100, tensor.ReduceMean)
	acc.Add("perplexity", math.Exp(loss.Item()))
	return loss
}

func tinyLM(t *testing.T) *model.Model {
	tensor.ManualSeed(0)
	cfg, _ := model.Preset("tiny", 31)
	cfg.NumLayers, cfg.HiddenSize, cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.IntermediateSize, cfg.MaxPositions = 2, 32, 2, 2, 16, 64, 16
	m, err := model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func toyData() lmData {
	var d lmData
	for i := 0; i < 24; i++ { // counting sequences mod 31: learnable
		row := make([]int64, 9)
		for j := range row {
			row[j] = int64((i + j*(1+i%3)) % 31)
		}
		d.rows = append(d.rows, row)
	}
	return d
}

func newTrainer(t *testing.T, dir string, m *model.Model) *Trainer[lmBatch] {
	a := DefaultArgs()
	a.OutputDir = dir
	a.MaxSteps = 8
	a.PerDeviceTrainBatchSize = 4
	a.GradientAccumulationSteps = 2
	a.LearningRate = 3e-3
	a.WeightDecay = 0.1
	a.WarmupSteps = 2
	a.LoggingSteps = 1
	a.SaveSteps = 4
	a.EvalStrategy = "steps"
	a.EvalSteps = 4
	d := toyData()
	return &Trainer[lmBatch]{Args: a, Models: &Single{M: m}, Task: lmTask{m}, Train: d, Eval: lmData{d.rows[:8]}, Log: zerolog.Nop()}
}

func losses(t *testing.T, dir string) map[int]float64 {
	entries, err := metrics.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]float64{}
	for _, e := range entries {
		if v, ok := e.Values["loss"]; ok {
			out[e.Step] = v
		}
	}
	return out
}

// TestExactResume: a run resumed from checkpoint-4 gives the same losses
// for steps 5..8 as the uninterrupted run, and a half-written checkpoint
// (killed mid-save) is ignored in favour of the last complete one.
func TestExactResume(t *testing.T) { exactResume(t, false) }

// TestExactResumeBF16 is the same under bf16 autocast.
func TestExactResumeBF16(t *testing.T) { exactResume(t, true) }

func exactResume(t *testing.T, bf16 bool) {
	full := t.TempDir()
	m := tinyLM(t)
	tr := newTrainer(t, full, m)
	tr.Args.BF16 = bf16
	res, err := tr.Run(context.Background())
	m.Free()
	if err != nil {
		t.Fatal(err)
	}
	want := losses(t, full)
	if len(want) != 8 {
		t.Fatalf("logged %d losses, want 8", len(want))
	}
	if !(want[8] < want[1]) {
		t.Errorf("loss did not fall: step 1 %.4f, step 8 %.4f", want[1], want[8])
	}
	if res.LastMetrics["eval_loss"] == 0 {
		t.Error("no eval_loss logged")
	}

	// A second run that stops after step 4: copy checkpoint-4 and simulate
	// a crash while writing checkpoint-8 (a partial .tmp dir).
	part := t.TempDir()
	if err := os.CopyFS(filepath.Join(part, "checkpoint-4"), os.DirFS(filepath.Join(full, "checkpoint-4"))); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(part, "checkpoint-8.tmp"), 0o755)
	os.WriteFile(filepath.Join(part, "checkpoint-8.tmp", "model.safetensors"), []byte("partial"), 0o644)
	// The first run's metrics up to step 4 are there too.
	b, _ := os.ReadFile(filepath.Join(full, "metrics.jsonl"))
	os.WriteFile(filepath.Join(part, "metrics.jsonl"), b, 0o644)

	m2 := tinyLM(t)
	tensor.ManualSeed(99) // different init: resume must overwrite it
	tr2 := newTrainer(t, part, m2)
	tr2.Args.ResumeFromCheckpoint = "last"
	tr2.Args.BF16 = bf16
	if _, err := tr2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	m2.Free()
	got := losses(t, part)
	for step := 5; step <= 8; step++ {
		if math.Abs(got[step]-want[step]) > 1e-6 {
			t.Errorf("step %d: resumed loss %.9f, uninterrupted %.9f", step, got[step], want[step])
		}
	}
	for step := 1; step <= 4; step++ {
		if got[step] != want[step] {
			t.Errorf("step %d: history changed on resume", step)
		}
	}
}

func TestInterruptSavesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	m := tinyLM(t)
	defer m.Free()
	tr := newTrainer(t, dir, m)
	ctx, cancel := context.WithCancel(context.Background())
	tr.StepHook = func(step int) error {
		if step == 3 {
			cancel()
		}
		return nil
	}
	_, err := tr.Run(ctx)
	if err != ErrInterrupted {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	cks, _ := Checkpoints(dir)
	if len(cks) != 1 || filepath.Base(cks[0]) != "checkpoint-3" {
		t.Errorf("checkpoints = %v, want [checkpoint-3]", cks)
	}
}

func TestSchedules(t *testing.T) {
	a := DefaultArgs()
	a.LearningRate = 1
	a.WarmupSteps = 10
	cases := []struct {
		sched string
		step  int
		want  float64
	}{
		{"linear", 0, 0}, {"linear", 5, 0.5}, {"linear", 10, 1}, {"linear", 55, 0.5}, {"linear", 100, 0},
		{"cosine", 10, 1}, {"cosine", 55, 0.5}, {"cosine", 32, 0.5 * (1 + math.Cos(math.Pi*22/90))},
		{"constant", 0, 1}, {"constant_with_warmup", 3, 0.3}, {"constant_with_warmup", 90, 1},
	}
	for _, c := range cases {
		a.LRSchedulerType = c.sched
		if got := a.LR(c.step, 100); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s step %d: lr %g, want %g", c.sched, c.step, got, c.want)
		}
	}
	a.WarmupSteps, a.WarmupRatio = 0, 0.1
	a.LRSchedulerType = "linear"
	if got := a.LR(5, 100); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("warmup_ratio 0.1 of 100 steps: lr at 5 = %g, want 0.5", got)
	}
}

// TestAdamWMatchesFormula checks two AdamW steps against the update
// written out by hand in float64 (PyTorch's AdamW) for a 2-D weight (with
// weight decay) and a 1-D one (without): float32 weights take the fused
// loop (7 elements: one 4-wide SSE block and a scalar tail), float64 and
// bfloat16 ones libtorch's multi-tensor (foreach) AdamW, grouped by dtype
// and decay, the path CUDA parameters take.
func TestAdamWMatchesFormula(t *testing.T) {
	for _, tc := range []struct {
		dt  tensor.DType
		tol float64
	}{{tensor.Float64, 1e-9}, {tensor.Float32, 2e-6}, {tensor.BFloat16, 1e-2}} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			w0 := []float32{1.5, -2, 0.25, 3, -0.75, 0.5, -1}
			n := int64(len(w0))
			w := tensor.FromFloat32s(w0, 1, n).ToDType(tc.dt).Keep()
			defer w.Free()
			w.SetRequiresGrad(true)
			b := tensor.FromFloat32s(w0, n).ToDType(tc.dt).Keep() // 1-D: no decay
			defer b.Free()
			b.SetRequiresGrad(true)
			a := DefaultArgs()
			a.WeightDecay = 0.1
			o := NewAdamW([]model.Param{{Name: "w", T: w}, {Name: "b", T: b}}, &a)
			defer o.Free()
			grads := [][]float32{{0.3, -0.1, 0.05, -0.7, 0.2, 0, 1.1}, {-0.2, 0.4, -0.05, 0.1, 0.3, -0.6, 0.9}}
			want := map[string][]float64{}
			for _, name := range []string{"w", "b"} {
				ws := make([]float64, n)
				for i, x := range w0 {
					ws[i] = float64(x)
				}
				m, v := make([]float64, n), make([]float64, n)
				for step, g := range grads {
					k := float64(step + 1)
					for i := range ws {
						gi := float64(g[i])
						if name == "w" {
							ws[i] *= 1 - 0.01*0.1
						}
						m[i] = 0.9*m[i] + 0.1*gi
						v[i] = 0.999*v[i] + 0.001*gi*gi
						mh := m[i] / (1 - math.Pow(0.9, k))
						vh := math.Sqrt(v[i]) / math.Sqrt(1-math.Pow(0.999, k))
						ws[i] -= 0.01 * mh / (vh + 1e-8)
					}
				}
				want[name] = ws
			}
			for _, g := range grads {
				tensor.Tidy(func() {
					gt := tensor.FromFloat32s(g, 1, n).ToDType(tc.dt)
					w.Mul(gt).Sum().Add(b.Mul(gt.Reshape(n)).Sum()).Backward() // d/dw sum(w*g) = g
				})
				o.Update(0.01)
				o.ZeroGrad()
			}
			for name, p := range map[string]*tensor.Tensor{"w": w, "b": b} {
				got := p.ToDType(tensor.Float64).Float64s()
				for i, x := range want[name] {
					if math.Abs(got[i]-x) > tc.tol*math.Max(1, math.Abs(x)) {
						t.Errorf("%s[%d] = %.12f, want %.12f", name, i, got[i], x)
					}
				}
			}
		})
	}
}

func TestArgsValidate(t *testing.T) {
	a := DefaultArgs()
	a.LRSchedulerType = "warp"
	a.PerDeviceTrainBatchSize = 0
	a.EvalStrategy = "sometimes"
	err := a.Validate()
	for _, s := range []string{"lr_scheduler_type", "per_device_train_batch_size", "eval_strategy"} {
		if err == nil || !contains(err.Error(), s) {
			t.Errorf("Validate error %v does not mention %s", err, s)
		}
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}
func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestArgsValidateNumbers: NaN, Inf and out-of-range numbers are refused,
// each error naming the flag, the value and the range (issue 11, item 14).
func TestArgsValidateNumbers(t *testing.T) {
	a := DefaultArgs()
	a.LearningRate = math.NaN()
	a.NumTrainEpochs = math.Inf(1)
	a.WarmupSteps = -1
	a.WeightDecay = -0.1
	a.AdamEpsilon = -1e-8
	a.MaxGradNorm = -1
	a.PerDeviceEvalBatchSize = -2
	err := a.Validate()
	for _, s := range []string{
		"learning_rate (--learning-rate) = NaN: want a finite number >= 0",
		"num_train_epochs (--num-train-epochs) = +Inf",
		"warmup_steps (--warmup-steps) = -1: want an integer >= 0",
		"weight_decay (--weight-decay) = -0.1",
		"adam_epsilon (--adam-epsilon) = -1e-08: want a value > 0",
		"max_grad_norm (--max-grad-norm) = -1",
		"per_device_eval_batch_size (--per-device-eval-batch-size) = -2: want an integer >= 1",
	} {
		if err == nil || !contains(err.Error(), s) {
			t.Errorf("Validate error %v does not contain %q", err, s)
		}
	}
	d := DefaultArgs()
	if err := d.Validate(); err != nil {
		t.Errorf("default args: %v", err)
	}
}

// recData records the example indices of each batch it serves.
type recData struct {
	lmData
	seen *[][]int
}

func (d recData) Batch(idx []int) (lmBatch, error) {
	*d.seen = append(*d.seen, slices.Clone(idx))
	return d.lmData.Batch(idx)
}

// TestSequentialOrder: with Sequential the batches are the dataset in
// order, every epoch (TRL's train_sampling_strategy "sequential");
// without it the order is shuffled.
func TestSequentialOrder(t *testing.T) {
	for _, seq := range []bool{true, false} {
		var seen [][]int
		m := tinyLM(t)
		tr := newTrainer(t, t.TempDir(), m)
		tr.Args.MaxSteps, tr.Args.GradientAccumulationSteps, tr.Args.PerDeviceTrainBatchSize = 7, 1, 5
		tr.Args.EvalStrategy, tr.Args.SaveStrategy = "no", "no"
		tr.Eval = nil
		tr.Train = recData{toyData(), &seen}
		tr.Sequential = seq
		if _, err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		m.Free()
		// 24 rows in batches of 5: 5 batches an epoch, the last of 4
		want := [][]int{{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}, {10, 11, 12, 13, 14}, {15, 16, 17, 18, 19}, {20, 21, 22, 23}, {0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}}
		same := slices.EqualFunc(seen, want, slices.Equal[[]int])
		if seq && !same {
			t.Errorf("sequential batches %v, want %v", seen, want)
		}
		if !seq && (same || len(seen) != 7) {
			t.Errorf("shuffled batches %v", seen)
		}
	}
}
