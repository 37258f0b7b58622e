package ppo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/rollout/rollouttest"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/train"
)

func init() {
	tensor.SetNumThreads(0)
	rollouttest.Register("ppo") // builtin:ppo-test-good, the fraction of response words that are "good"
}

func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestKLEstimators(t *testing.T) {
	logp, ref := -1.2, -0.7
	// k1 = log p - log q; k3 = (q/p - 1) - log(q/p)
	if got, want := KL(logp, ref, "k1"), -1.2-(-0.7); !close(got, want, 1e-12) {
		t.Errorf("k1 = %g, want %g", got, want)
	}
	ratio := math.Exp(ref - logp)
	if got, want := KL(logp, ref, "k3"), (ratio-1)-math.Log(ratio); !close(got, want, 1e-12) {
		t.Errorf("k3 = %g, want %g", got, want)
	}
}

func TestGAE(t *testing.T) {
	r := []float64{0.1, -0.2, 1.0}
	v := []float64{0.5, 0.4, 0.3}
	g, l := 0.9, 0.8
	// by hand, backwards: V_3 = 0
	d2 := 1.0 + g*0 - 0.3
	a2 := d2
	d1 := -0.2 + g*0.3 - 0.4
	a1 := d1 + g*l*a2
	d0 := 0.1 + g*0.4 - 0.5
	a0 := d0 + g*l*a1
	adv, ret := GAE(r, v, g, l)
	for i, want := range []float64{a0, a1, a2} {
		if !close(adv[i], want, 1e-12) || !close(ret[i], want+v[i], 1e-12) {
			t.Errorf("t=%d: adv %g ret %g, want %g %g", i, adv[i], ret[i], want, want+v[i])
		}
	}
}

func TestMaskedWhiten(t *testing.T) {
	x := [][]float64{{1, 2, 100}, {3, 4, 100}}
	m := [][]bool{{true, true, false}, {true, true, false}}
	// masked values 1,2,3,4: mean 2.5, unbiased var = (2.25+0.25+0.25+2.25)/3 = 5/3
	sd := math.Sqrt(5.0/3 + 1e-8)
	w := MaskedWhiten(x, m, true)
	if !close(w[0][0], (1-2.5)/sd, 1e-12) || !close(w[1][1], (4-2.5)/sd, 1e-12) {
		t.Errorf("whitened %v", w)
	}
	nw := MaskedWhiten(x, m, false)
	if !close(nw[0][0], (1-2.5)/sd+2.5, 1e-12) {
		t.Errorf("shift_mean=false: %g, want %g", nw[0][0], (1-2.5)/sd+2.5)
	}
}

func TestClippedLosses(t *testing.T) {
	newLp := []float32{-1.0, -0.5, -2.0, -0.1}
	oldLp := []float32{-1.2, -0.1, -2.0, -3.0}
	adv := []float32{1.0, -0.5, 2.0, 0.7}
	mask := []float32{1, 1, 1, 0}
	eps := 0.2
	var want, clipped, n float64
	for i := range newLp {
		if mask[i] == 0 {
			continue
		}
		ratio := math.Exp(float64(newLp[i] - oldLp[i]))
		l1 := -float64(adv[i]) * ratio
		l2 := -float64(adv[i]) * math.Max(1-eps, math.Min(1+eps, ratio))
		want += math.Max(l1, l2)
		if l2 > l1 {
			clipped++
		}
		n++
	}
	want /= n
	vp := []float32{0.5, 1.5, -0.2, 9}
	vold := []float32{0.2, 1.0, 0.0, 0}
	ret := []float32{1.0, 1.0, 1.0, 1}
	var vwant, vclip float64
	for i := range vp {
		if mask[i] == 0 {
			continue
		}
		c := math.Max(float64(vold[i])-eps, math.Min(float64(vold[i])+eps, float64(vp[i])))
		a := math.Pow(float64(vp[i]-ret[i]), 2)
		b := math.Pow(c-float64(ret[i]), 2)
		vwant += math.Max(a, b)
		if b > a {
			vclip++
		}
	}
	vwant = 0.5 * vwant / n
	tensor.Tidy(func() {
		f := func(v []float32) *tensor.Tensor { return tensor.FromFloat32s(v, 1, 4).ToDType(tensor.Float64) }
		loss, cf, _, _ := PolicyLoss(f(newLp), f(oldLp), f(adv), f(mask), eps)
		if got := loss.ItemF64(); !close(got, want, 1e-6) || !close(cf, clipped/n, 1e-9) {
			t.Errorf("policy loss %g clipfrac %g, want %g %g", got, cf, want, clipped/n)
		}
		vl, vcf := ValueLoss(f(vp), f(vold), f(ret), f(mask), eps)
		if got := vl.ItemF64(); !close(got, vwant, 1e-6) || !close(vcf, vclip/n, 1e-9) {
			t.Errorf("value loss %g clipfrac %g, want %g %g", got, vcf, vwant, vclip/n)
		}
	})
}

// setup trains a tokenizer and a small SFT policy that writes random
// words (rollouttest.Setup).
func setup(t *testing.T) (sftDir, data string) {
	return rollouttest.Setup(t, func(init, tokDir, data, out string) error {
		sc := sft.DefaultConfig()
		sc.Init, sc.Tokenizer, sc.Dataset, sc.OutputDir = init, tokDir, data, out
		sc.MaxSteps, sc.PerDeviceTrainBatchSize, sc.LearningRate, sc.SaveStrategy = 60, 16, 3e-3, "no"
		_, err := sft.Run(context.Background(), sc, zerolog.Nop(), nil)
		return err
	})
}

func ppoConfig(sftDir, data, out string) Config {
	c := DefaultConfig()
	c.SFTModel, c.Reward, c.Dataset, c.OutputDir = sftDir, "builtin:ppo-test-good", data, out
	c.PerDeviceTrainBatchSize = 16
	c.GradientAccumulationSteps = 2 // rollouts of 32: one optimizer step of 2 x 16 per PPO epoch
	c.NumMiniBatches = 2
	c.NumPPOEpochs = 2
	c.ResponseLength = 6
	c.TotalEpisodes = 32 * 12
	c.LearningRate = 3e-4
	c.Temperature = 1.0
	c.KLCoef = 0.02
	c.LoggingSteps = 1
	c.SaveSteps = 6
	c.NumSampleGenerations = 2
	c.WarmupSteps = 0
	c.LRSchedulerType = "constant"
	return c
}

func scores(t *testing.T, dir string) []float64 {
	es, err := metrics.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var s []float64
	for _, e := range es {
		if v, ok := e.Values["objective/scores"]; ok {
			s = append(s, v)
		}
	}
	return s
}

// TestPPORaisesKnownReward: with a programmatic reward (share of the word
// "good"), PPO raises the policy's mean score over the SFT start while the
// KL to the reference stays bounded; a run resumed from a checkpoint logs
// the same values as the uninterrupted one.
func TestPPORaisesKnownReward(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	res, err := Run(context.Background(), ppoConfig(sftDir, data, out), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := scores(t, out)
	if len(s) != res.Updates {
		t.Fatalf("%d score logs for %d updates", len(s), res.Updates)
	}
	// steps count updates, as TRL's global_step: one log row per update,
	// numbered 1..updates, and trainer_state.json's global_step/max_steps
	es, _ := metrics.ReadFile(filepath.Join(out, "metrics.jsonl"))
	var steps []int
	for _, e := range es {
		if _, ok := e.Values["objective/scores"]; ok {
			steps = append(steps, e.Step)
		}
	}
	for i, st := range steps {
		if st != i+1 {
			t.Fatalf("logged steps %v, want 1..%d", steps, res.Updates)
		}
	}
	var state struct {
		GlobalStep int `json:"global_step"`
		MaxSteps   int `json:"max_steps"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "trainer_state.json"))
	if err := json.Unmarshal(b, &state); err != nil || state.GlobalStep != res.Updates || state.MaxSteps != res.Updates {
		t.Errorf("trainer_state.json global_step %d max_steps %d (%v), want %d updates", state.GlobalStep, state.MaxSteps, err, res.Updates)
	}
	first := (s[0] + s[1]) / 2
	last := (s[len(s)-1] + s[len(s)-2]) / 2
	t.Logf("objective/scores per update: %.3f", s)
	if !(last > first+0.15) {
		t.Errorf("mean score went from %.3f to %.3f; want a rise of at least 0.15", first, last)
	}
	if kl := res.LastMetrics["objective/kl"]; !(kl < 10) {
		t.Errorf("objective/kl = %g, want bounded (< 10)", kl)
	}
	for _, k := range []string{"objective/entropy", "objective/non_score_reward", "objective/rlhf_reward", "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg", "loss/value_avg", "val/clipfrac_avg", "policy/entropy_avg", "val/ratio", "val/ratio_var", "val/num_eos_tokens", "lr", "episode", "eps"} {
		if _, ok := res.LastMetrics[k]; !ok {
			t.Errorf("metric %s not logged", k)
		}
	}
	for _, f := range []string{"model.safetensors", "value_model/model.safetensors", "value_model/config.json", "samples/update-1.jsonl", "checkpoint-6/optimizer.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output lacks %s", f)
		}
	}

	// Resume from the checkpoint after update 6 (checkpoint-N counts
	// updates, as TRL; 2 optimizer steps each).
	part := t.TempDir()
	ck := filepath.Join(out, "checkpoint-6")
	if _, err := os.Stat(ck); err != nil {
		t.Fatalf("no %s: %v", ck, err)
	}
	if err := os.CopyFS(filepath.Join(part, "checkpoint-6"), os.DirFS(ck)); err != nil {
		t.Fatal(err)
	}
	cfg := ppoConfig(sftDir, data, part)
	cfg.ResumeFromCheckpoint = "last"
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	got := scores(t, part)
	if len(got) != len(s)-6 {
		t.Fatalf("resumed run logged %d updates, want %d", len(got), len(s)-6)
	}
	for i := 6; i < len(s); i++ {
		if j := i - 6; j < len(got) && !close(got[j], s[i], 1e-6) {
			t.Errorf("update %d: resumed score %.6f, uninterrupted %.6f", i+1, got[j], s[i])
		}
	}
}

// TestPPOBF16 runs PPO with bf16 (rollouts and updates under autocast):
// the known reward still rises, the metrics are finite, and the saved
// policy is float32.
func TestPPOBF16(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	cfg := ppoConfig(sftDir, data, out)
	cfg.BF16 = true
	cfg.SaveStrategy = "no"
	// 16 updates, not 12: bfloat16 rounding makes the early updates noisier,
	// and over 12 the rise sat at 0.14-0.16 depending on the CPU's BLAS
	// kernels (0.212 -> 0.356 with OpenBLAS's SkylakeX ones)
	cfg.TotalEpisodes = 32 * 16
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := scores(t, out)
	first := (s[0] + s[1]) / 2
	last := (s[len(s)-1] + s[len(s)-2]) / 2
	t.Logf("bf16 objective/scores per update: %.3f", s)
	if !(last > first+0.15) {
		t.Errorf("mean score went from %.3f to %.3f; want a rise of at least 0.15", first, last)
	}
	for _, k := range []string{"objective/kl", "loss/policy_avg", "loss/value_avg"} {
		if v, ok := res.LastMetrics[k]; !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s = %v (logged %v)", k, v, ok)
		}
	}
	f, err := safetensors.ReadModelDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range f.Tensors {
		if st.DType != safetensors.F32 {
			t.Errorf("saved %s is %s, want F32 (master weights)", name, st.DType)
			break
		}
	}
}

// TestPostprocessAsTRL: the response processing of TRL's PPO rollout, by
// hand: without a stop token responses are not cut; with one, everything
// after it is padding; sequence_length ends before the first pad, so with
// pad == eos the eos itself is not part of the response.
func TestPostprocessAsTRL(t *testing.T) {
	const eos, other = 9, 5
	cases := []struct {
		name     string
		pad      int
		stop     []int
		gen      []int
		resp     []int
		seqLen   int
		hasEOS   bool
		rawCount int
	}{
		{"no stop token: eos is just a token", 0, nil, []int{3, eos, 4, 4}, []int{3, eos, 4, 4}, 3, true, 1},
		{"stop at eos, pad != eos", 0, []int{eos}, []int{3, eos, 4, 4}, []int{3, eos, 0, 0}, 1, true, 1},
		{"stop at eos, pad == eos: the eos is padding", eos, []int{eos}, []int{3, eos, 4, 4}, []int{3, eos, eos, eos}, 0, true, 1},
		{"short generation is padded", 0, []int{eos}, []int{3, 4}, []int{3, 4, 0, 0}, 1, false, 0},
		{"stop_token_id", 0, []int{other}, []int{3, other, 4, eos}, []int{3, other, 0, 0}, 1, false, 1},
	}
	for _, c := range cases {
		r := &Rollout{cfg: &Config{ResponseLength: 4}, pad: c.pad, eos: eos, stopIDs: c.stop}
		resp, seqLen, hasEOS, raw := r.postprocess(c.gen)
		if !slices.Equal(resp, c.resp) || seqLen != c.seqLen || hasEOS != c.hasEOS || raw != c.rawCount {
			t.Errorf("%s: got %v seqLen %d eos %v raw %d; want %v %d %v %d", c.name, resp, seqLen, hasEOS, raw, c.resp, c.seqLen, c.hasEOS, c.rawCount)
		}
	}
}

// TestObjectiveEntropyAsTRL: objective/entropy is (-logprobs).sum(1).mean()
// over every position, the padding's INVALID_LOGPROB (1) included.
func TestObjectiveEntropyAsTRL(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ResponseLength = 3
	r := &Rollout{cfg: &cfg}
	r.buf = []*sample{
		{resp: []int{1, 2, 0}, seqLen: 1, logp: []float64{-1, -2, -7}, ref: []float64{-1, -2, -7}, values: make([]float64, 3)},
		{resp: []int{1, 2, 3}, seqLen: 2, logp: []float64{-0.5, -0.5, -0.5}, ref: []float64{-0.5, -0.5, -0.5}, values: make([]float64, 3)},
	}
	r.advantages()
	want := ((1 + 2 - 1) + 1.5) / 2.0 // the pad's log-prob becomes 1
	if got := r.stats["objective/entropy"]; math.Abs(got-want) > 1e-12 {
		t.Errorf("objective/entropy %g, want %g", got, want)
	}
}

// TestPPOInterruptMidUpdateResumes (issue 11, item 6): a Ctrl-C in the
// middle of an update (here during the first rollout's sample table, so
// the trainer sees it at step 1) checkpoints at the end of that update,
// and the checkpoint resumes.
func TestPPOInterruptMidUpdateResumes(t *testing.T) {
	sftDir, data := setup(t)
	out := t.TempDir()
	cfg := ppoConfig(sftDir, data, out)
	cfg.TotalEpisodes = 32 * 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := zerolog.New(io.Discard).Hook(zerolog.HookFunc(func(e *zerolog.Event, l zerolog.Level, msg string) {
		if msg == "sample" {
			cancel()
		}
	}))
	if _, err := Run(ctx, cfg, log, nil); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	cks, _ := train.Checkpoints(out)
	if len(cks) != 1 || filepath.Base(cks[0]) != "checkpoint-1" {
		t.Fatalf("checkpoints = %v, want [checkpoint-1] (the end of update 1)", cks)
	}
	cfg.ResumeFromCheckpoint = "last"
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if res.Steps != 6 || res.Updates != 3 {
		t.Errorf("resumed run ended at optimizer step %d, update %d; want 6 and 3", res.Steps, res.Updates)
	}
}

// TestPPOMidUpdateStateIsAnError: a checkpoint inside an update (as an
// older rl saved on Ctrl-C) is refused, and a step without a rollout is an
// error rather than an index panic.
func TestPPOMidUpdateStateIsAnError(t *testing.T) {
	task := &Task{R: &Rollout{}, stepsPerUpdate: 4}
	if err := task.ResumableAt(8); err != nil {
		t.Errorf("ResumableAt(8) = %v", err)
	}
	if err := task.ResumableAt(11); err == nil || !strings.Contains(err.Error(), "inside PPO update 3") {
		t.Errorf("ResumableAt(11) = %v, want inside PPO update 3", err)
	}
	if err := task.BeginStep(11); err == nil {
		t.Error("BeginStep(11) without a rollout: no error")
	}
	cfg := DefaultConfig()
	task.R.cfg = &cfg
	if _, err := (&rolloutData{r: task.R}).Batch([]int{6}); err == nil {
		t.Error("Batch of an empty rollout: no error")
	}
}

// TestPPOOutputIsInputRefused (item 3): --output-dir equal to the reward
// model (or containing the policy) is refused before anything is loaded.
func TestPPOOutputIsInputRefused(t *testing.T) {
	root := t.TempDir()
	policy, rm, data := filepath.Join(root, "ck", "sft"), filepath.Join(root, "ck", "rm"), filepath.Join(root, "p.jsonl")
	os.MkdirAll(policy, 0o755)
	os.MkdirAll(rm, 0o755)
	os.WriteFile(data, []byte(`{"prompt": "a"}`), 0o644)
	for _, c := range []struct{ out, want string }{{rm, "is the input --reward"}, {filepath.Join(root, "ck"), "contains the input --model"}} {
		cfg := ppoConfig(policy, data, c.out)
		cfg.Reward = rm
		if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("output %s: err = %v, want %q", c.out, err, c.want)
		}
	}
}

// TestLoggedLRAsTRL: PPO's lr is the rate of the update just done (TRL
// reads get_last_lr() before stepping the scheduler), linear over updates.
func TestLoggedLRAsTRL(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LearningRate, cfg.LRSchedulerType, cfg.WarmupSteps = 1e-3, "linear", 0
	task := &Task{R: &Rollout{cfg: &cfg, stats: map[string]float64{}}, stepsPerUpdate: 4, updates: 5}
	for u := 1; u <= 5; u++ {
		vals := map[string]float64{}
		task.DecorateLog(4*u, vals)
		if want := 1e-3 * float64(5-(u-1)) / 5; math.Abs(vals["lr"]-want) > 1e-15 {
			t.Errorf("update %d: lr %g, want %g", u, vals["lr"], want)
		}
	}
}
