package kto

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// rowData writes train.jsonl, 200 alternating desirable (the sum) and
// undesirable (the sum plus 1 or 2) rows, and test.jsonl, 20 prompts each
// with a desirable row and an undesirable one whose answer is the sum
// plus 3 or 4 (never seen in training), into a new dir.
func rowData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var train, test []int
	for i := range 200 {
		train = append(train, (i*37)%100)
	}
	for i := range 20 {
		k := (i*13 + 5) % 100
		test = append(test, k, k)
	}
	preftest.ArithmeticRows(t, filepath.Join(dir, "train.jsonl"), train, 1)
	preftest.ArithmeticRows(t, filepath.Join(dir, "test.jsonl"), test, 3)
	return dir
}

func baseConfig(t *testing.T, sftDir, data string) Config {
	cfg := DefaultConfig()
	cfg.Model = sftDir
	cfg.Dataset = data
	cfg.OutputDir = t.TempDir()
	cfg.PerDeviceTrainBatchSize = 16
	cfg.PerDeviceEvalBatchSize = 20
	cfg.LearningRate = 5e-4
	cfg.LRSchedulerType = "constant"
	cfg.SaveStrategy = "no"
	cfg.MaxLength = 32
	return cfg
}

func meanOf(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// TestKTOEndToEnd: KTO from the SFT model on rows labelled by whether the
// answer is the sum lowers the loss and raises the reward margin, on the
// training batches and on held-out rows, and the output loads as a
// causal LM.
func TestKTOEndToEnd(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	for _, lossType := range LossTypes() {
		t.Run(lossType, func(t *testing.T) {
			cfg := baseConfig(t, sftDir, rowData(t))
			cfg.LossType = lossType
			cfg.MaxSteps = 24
			cfg.LoggingSteps = 1
			cfg.EvalStrategy = "steps"
			cfg.EvalSteps = 24
			cfg.EvalOnStart = true
			res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.TrainRows != 200 || res.Desirable != 100 || res.Undesirable != 100 || res.EvalRows != 40 {
				t.Errorf("rows: %+v", res)
			}
			h := preftest.LogHistory(t, cfg.OutputDir)
			loss, margin := preftest.Series(h, "loss"), preftest.Series(h, "rewards/margins")
			kl := preftest.Series(h, "kl")
			el, em := preftest.Series(h, "eval_loss"), preftest.Series(h, "eval_rewards/margins")
			t.Logf("loss %.4f -> %.4f, rewards/margins %.4f -> %.4f, kl %v; eval_loss %v, eval_rewards/margins %v",
				meanOf(loss[:4]), meanOf(loss[len(loss)-4:]), meanOf(margin[:4]), meanOf(margin[len(margin)-4:]), kl[len(kl)-1], el, em)
			if len(loss) != 24 || len(margin) != 24 || len(el) != 2 {
				t.Fatalf("%d losses, %d margins, %d eval losses logged", len(loss), len(margin), len(el))
			}
			if !(meanOf(loss[len(loss)-4:]) < meanOf(loss[:4])-0.02) {
				t.Errorf("training loss did not fall: %v", loss)
			}
			if !(meanOf(margin[len(margin)-4:]) > meanOf(margin[:4])+0.05) {
				t.Errorf("rewards/margins did not rise: %v", margin)
			}
			if !(el[1] < el[0]) || !(em[1] > em[0]+0.05) {
				t.Errorf("held out: eval_loss %v, eval_rewards/margins %v", el, em)
			}
			for _, k := range []string{"rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "entropy", "kl", "num_tokens"} {
				if v := preftest.Series(h, k); len(v) == 0 || math.IsNaN(v[len(v)-1]) {
					t.Errorf("metric %s: %v", k, v)
				}
			}
			if lossType == "apo_zero_unpaired" && kl[len(kl)-1] != 0 {
				t.Errorf("apo_zero_unpaired logs kl %v, want 0 (no KL term)", kl)
			}
			m, _, err := checkpoint.Load(cfg.OutputDir, model.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			m.Free()
		})
	}
}

// TestPrecomputedRefMatchesLive: the first step's loss and metrics are the
// same with the reference model live and with its log-probs precomputed
// (in batches of another size, so other padding).
func TestPrecomputedRefMatchesLive(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	data := rowData(t)
	first := map[bool]map[string]float64{}
	for _, pre := range []bool{false, true} {
		cfg := baseConfig(t, sftDir, data)
		cfg.RefModel = filepath.Join(sftDir, "checkpoint-10")
		cfg.MaxSteps = 1
		cfg.LoggingSteps = 1
		cfg.PrecomputeRefLogProbs = pre
		cfg.PrecomputeRefBatchSize = 7
		if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
			t.Fatal(err)
		}
		first[pre] = preftest.LogHistory(t, cfg.OutputDir)[0]
	}
	t.Logf("live %v\nprecomputed %v", first[false], first[true])
	if r, z := first[false]["rewards/chosen"], first[false]["kl"]; math.Abs(r) < 1e-2 || !(z > 0) {
		t.Fatalf("first rewards/chosen %g, kl %g: the reference is (nearly) the policy, the test shows nothing", r, z)
	}
	for _, k := range []string{"loss", "kl", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen"} {
		if a, b := first[false][k], first[true][k]; math.Abs(a-b) > 1e-5*math.Max(1, math.Abs(a)) {
			t.Errorf("%s: live %g, precomputed %g", k, a, b)
		}
	}
}

// TestBadInput: one-class data and bad flags are errors that say what is
// wrong and name the flag or file.
func TestBadInput(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	dir := t.TempDir()
	one := writeFile(t, dir, "one.jsonl", `{"prompt": "1+1=", "completion": "2", "label": true}
{"prompt": "2+2=", "completion": "4", "label": true}
`)
	cfg := baseConfig(t, sftDir, one)
	cfg.MaxSteps = 1
	_, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err == nil || !strings.Contains(err.Error(), "one.jsonl") || !strings.Contains(err.Error(), "all 2 training rows are desirable") {
		t.Errorf("one-class data: %v", err)
	}
	flags := []struct {
		name string
		set  func(c *Config)
		want string
	}{
		{"loss_type", func(c *Config) { c.LossType = "sigmoid" }, `loss_type (--loss-type) "sigmoid": want one of apo_zero_unpaired, kto`},
		{"beta", func(c *Config) { c.Beta = 0 }, "beta"},
		{"desirable_weight", func(c *Config) { c.DesirableWeight = -1 }, "desirable_weight"},
		{"both weights 0", func(c *Config) { c.DesirableWeight, c.UndesirableWeight = 0, 0 }, "both 0"},
		{"batch size 1", func(c *Config) { c.PerDeviceTrainBatchSize = 1 }, "per_device_train_batch_size (--per-device-train-batch-size) must be > 1"},
		{"random sampling", func(c *Config) { c.TrainSamplingStrategy = Random }, "needs train_sampling_strategy (--train-sampling-strategy) sequential"},
		{"sampling", func(c *Config) { c.TrainSamplingStrategy = "group_by_length" }, `train_sampling_strategy (--train-sampling-strategy) "group_by_length"`},
		{"max_length", func(c *Config) { c.MaxLength = 1 }, "max_length"},
		{"sync with precompute", func(c *Config) { c.SyncRefModel, c.PrecomputeRefLogProbs = true, true }, "sync_ref_model"},
		{"no model", func(c *Config) { c.Model = "" }, "model_name_or_path must be set"},
	}
	for _, f := range flags {
		c := baseConfig(t, sftDir, one)
		f.set(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), f.want) {
			t.Errorf("%s: %v, want an error with %q", f.name, err, f.want)
		}
	}
	// apo_zero_unpaired has no KL rows: random sampling and batch size 1 are fine.
	c := baseConfig(t, sftDir, one)
	c.LossType, c.TrainSamplingStrategy, c.PerDeviceTrainBatchSize = "apo_zero_unpaired", Random, 1
	if err := c.Validate(); err != nil {
		t.Errorf("apo_zero_unpaired with random sampling, batch 1: %v", err)
	}
}

// TestSyncRefInTraining: with sync_ref_model and ref_model_sync_steps 2,
// a 2-step run ends with ref = alpha*final policy + (1-alpha)*SFT model,
// saved under ref_model/.
func TestSyncRefInTraining(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	cfg := baseConfig(t, sftDir, rowData(t))
	cfg.MaxSteps = 2
	cfg.SyncRefModel = true
	cfg.RefModelSyncSteps = 2
	cfg.RefModelMixupAlpha = 0.3
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	preftest.CheckRefMixup(t, sftDir, cfg.OutputDir, cfg.RefModelMixupAlpha)
}

// rowLogp is the summed log-probability, in float64, of tokens
// ids[start:] given the ones before them, from m's logits of ids alone
// (unpadded, batch of one).
func rowLogp(t *testing.T, m *model.Model, ids []int32, start int) float64 {
	t.Helper()
	var out float64
	tensor.Tidy(func() {
		tensor.NoGrad(func() {
			v := make([]int64, len(ids))
			for i, x := range ids {
				v[i] = int64(x)
			}
			logits := m.Forward(&model.Input{IDs: tensor.FromInt64s(v, 1, int64(len(v)))}).ToDType(tensor.Float64)
			V := int(logits.Size(-1))
			l := logits.Float64s()
			for pos := max(start, 1); pos < len(ids); pos++ {
				row := l[(pos-1)*V : pos*V]
				mx := row[0]
				for _, x := range row {
					mx = math.Max(mx, x)
				}
				var s float64
				for _, x := range row {
					s += math.Exp(x - mx)
				}
				out += row[ids[pos]] - mx - math.Log(s)
			}
		})
	})
	return out
}

// TestTaskLossMatchesManual: the task's loss, kl and rewards on a padded
// batch with KL rows equal a float64 computation from each row forwarded
// alone (prompt + completion cut to max_length; KL rows: the prompt with
// the neighbour's completion) through the policy and the reference.
func TestTaskLossMatchesManual(t *testing.T) {
	sftDir, tokDir := preftest.SFTModel(t)
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	final, err := model.Load(sftDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer final.Free()
	early, err := model.Load(filepath.Join(sftDir, "checkpoint-10"), model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer early.Free()
	rows := []datasets.UnpairedPreference{
		{Prompt: "3+4=", Completion: "7", Label: true},
		{Prompt: "12+9=", Completion: "22", Label: false},
		{Prompt: "the quick brown fox 5+5=", Completion: "10", Label: true},
		{Prompt: "8+8=", Completion: "17 the quick brown fox jumps over the lazy dog", Label: false},
	}
	long, err := tok.Encode(rows[2].Prompt, true)
	if err != nil {
		t.Fatal(err)
	}
	M := len(long) + 2 // cuts the long rows
	ex, _, err := Encode(newEncoder(tok), rows, M, zerolog.Nop(), "test")
	if err != nil || len(ex) != 4 {
		t.Fatalf("%d examples: %v", len(ex), err)
	}
	AddKL(ex, 4)
	b := Collate(ex, M, max(tok.PAD(), 0))
	const beta, wd, wu = 0.3, 1.2, 0.9
	// Both ways round: the KL estimate clamped at 0, and positive.
	for _, models := range [][2]*model.Model{{final, early}, {early, final}} {
		taskMatchesManual(t, models[0], models[1], ex, b, M, beta, wd, wu)
	}
}

func taskMatchesManual(t *testing.T, policy, ref *model.Model, ex []Example, b *Batch, M int, beta, wd, wu float64) {
	task := &Task{Policy: policy, Ref: ref, LossType: "kto", Params: Params{Beta: beta, DesirableWeight: wd, UndesirableWeight: wu}}
	var acc metrics.Accumulator
	var got float64
	tensor.Tidy(func() {
		tensor.NoGrad(func() { got = task.Loss(b, &acc, false).ItemF64() })
	})
	cut := func(p, c []int32) []int32 {
		r := append(append([]int32{}, p...), c...)
		return r[:min(len(r), M)]
	}
	var zsum, loss float64
	var rew [2]float64
	var n [2]int
	r := make([]float64, len(ex))
	for i, e := range ex {
		kl := cut(e.Prompt, e.KL)
		zsum += rowLogp(t, policy, kl, len(e.Prompt)) - rowLogp(t, ref, kl, len(e.Prompt))
		row := cut(e.Prompt, e.Completion)
		r[i] = rowLogp(t, policy, row, len(e.Prompt)) - rowLogp(t, ref, row, len(e.Prompt))
	}
	z := math.Max(0, zsum/float64(len(ex)))
	for i, e := range ex {
		k := 1
		if e.Label {
			k = 0
			loss += wd * (1 - sigmoid(beta*(r[i]-z)))
		} else {
			loss += wu * (1 - sigmoid(beta*(z-r[i])))
		}
		rew[k] += beta * r[i]
		n[k]++
	}
	loss /= float64(len(ex))
	m := acc.Means()
	t.Logf("loss %.7f (manual %.7f), kl %.7f (manual %.7f, before the clamp %.7f)", got, loss, m["kl"], z, zsum/float64(len(ex)))
	if math.Abs(zsum) < 1e-2 {
		t.Fatalf("z %g: the reference is (nearly) the policy, the test shows little", z)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"loss", got, loss}, {"kl", m["kl"], z},
		{"rewards/chosen", m["rewards/chosen"], rew[0] / float64(n[0])},
		{"rewards/rejected", m["rewards/rejected"], rew[1] / float64(n[1])},
		{"rewards/margins", m["rewards/margins"], rew[0]/float64(n[0]) - rew[1]/float64(n[1])},
	} {
		if math.Abs(c.got-c.want) > 1e-5 {
			t.Errorf("%s = %.9g, manual %.9g", c.name, c.got, c.want)
		}
	}
}

// TestPEFT: with use_peft the reference is the policy with its adapters
// disabled: at the first step (LoRA's B starts at zero) every log-ratio,
// reward and kl is 0 and the loss 0.5; training moves the rewards, and
// the output is a peft adapter.
func TestPEFT(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	cfg := baseConfig(t, sftDir, rowData(t))
	cfg.UsePEFT = true
	cfg.MaxSteps = 4
	cfg.LoggingSteps = 1
	cfg.LearningRate = 5e-3
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	h := preftest.LogHistory(t, cfg.OutputDir)
	first, last := h[0], h[len(h)-2] // the last entry is the run summary
	t.Logf("first %v\nlast %v", first, last)
	for _, k := range []string{"rewards/chosen", "rewards/rejected", "kl"} {
		if first[k] != 0 {
			t.Errorf("step 1 %s = %g, want 0 (policy = reference)", k, first[k])
		}
	}
	if math.Abs(first["loss"]-0.5) > 1e-6 {
		t.Errorf("step 1 loss %g, want 0.5", first["loss"])
	}
	if last["rewards/margins"] == 0 || last["rewards/chosen"] == 0 {
		t.Errorf("step %v: rewards did not move: %v", last["step"], last)
	}
	if _, err := os.Stat(filepath.Join(cfg.OutputDir, model.AdapterWeightsFile)); err != nil {
		t.Errorf("no adapter in the output: %v", err)
	}
}

// TestWeightWarningLogged: Run logs TRL's warning for unbalanced classes
// (3 desirable rows to 1) with the default weights, and not once a
// recommended desirable_weight is set.
func TestWeightWarningLogged(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	var rows []map[string]any
	for k := range 40 {
		p, c := preftest.Sum(k)
		if k%4 == 3 {
			rows = append(rows, map[string]any{"prompt": p, "completion": fmt.Sprint(c + 1), "label": false})
		} else {
			rows = append(rows, map[string]any{"prompt": p, "completion": fmt.Sprint(c), "label": true})
		}
	}
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	preftest.WriteJSONL(t, path, rows)
	for _, wd := range []float64{1, 0.4} { // recommended: [10/30, 1.33*10/30] = [0.33, 0.44]
		cfg := baseConfig(t, sftDir, path)
		cfg.MaxSteps = 1
		cfg.DesirableWeight = wd
		var buf bytes.Buffer
		if _, err := Run(context.Background(), cfg, zerolog.New(&buf), nil); err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(buf.String(), "we recommend EITHER desirable_weight in [0.33, 0.44] or undesirable_weight in [2.26, 3.0]")
		if warned != (wd == 1) {
			t.Errorf("desirable_weight %g: warned %v; log:\n%s", wd, warned, buf.String())
		}
	}
}
