package dpo

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// pairData writes train.jsonl, pairs whose rejected answer is the sum
// plus 1 or 2, and test.jsonl, held-out pairs whose rejected answer is the
// sum plus 3 or 4 (never seen in training), into a new dir.
func pairData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var train, test []int
	for i := range 200 {
		train = append(train, (i*37)%100)
	}
	for i := range 20 {
		test = append(test, (i*13+5)%100)
	}
	preftest.ArithmeticPairs(t, filepath.Join(dir, "train.jsonl"), train, 1)
	preftest.ArithmeticPairs(t, filepath.Join(dir, "test.jsonl"), test, 3)
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

// TestDPOEndToEnd: DPO from the SFT model on pairs whose chosen answer is
// the right sum raises held-out reward accuracy above chance and lowers
// eval loss, and the output loads as a causal LM.
func TestDPOEndToEnd(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	cfg := baseConfig(t, sftDir, pairData(t))
	cfg.MaxSteps = 24
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = 12
	cfg.EvalOnStart = true
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := preftest.LogHistory(t, cfg.OutputDir)
	losses, accs := preftest.Series(h, "eval_loss"), preftest.Series(h, "eval_rewards/accuracies")
	t.Logf("eval_loss %v, eval_rewards/accuracies %v", losses, accs)
	if len(losses) != 3 {
		t.Fatalf("eval_loss logged %d times, want 3", len(losses))
	}
	if math.Abs(losses[0]-math.Ln2) > 1e-5 {
		t.Errorf("eval_loss before training = %g, want ln 2 (the policy is the reference)", losses[0])
	}
	if !(losses[2] < losses[0]) {
		t.Errorf("eval_loss went %v: it did not fall", losses)
	}
	if acc := accs[len(accs)-1]; !(acc > 0.5) {
		t.Errorf("eval rewards/accuracies = %g after training, want > 0.5", acc)
	}
	for _, k := range []string{"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "entropy", "mean_token_accuracy",
		"eval_rewards/margins", "eval_logps/chosen", "eval_logits/rejected"} {
		if _, ok := res.LastMetrics[k]; !ok {
			t.Errorf("metric %s not logged", k)
		}
	}
	m, _, err := checkpoint.Load(cfg.OutputDir, model.LoadOptions{})
	if err != nil {
		t.Fatalf("load DPO output: %v", err)
	}
	defer m.Free()
	if m.Head != model.LMHead {
		t.Errorf("DPO output loads with head %v, want a causal LM", m.Head)
	}
}

// tinyModel is a randomly initialised 2-layer GPT-2 with vocabulary vocab.
func tinyModel(t *testing.T, vocab int, seed int64) *model.Model {
	t.Helper()
	cfg, err := model.Preset("tiny", vocab)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NumLayers = 2
	tensor.ManualSeed(seed)
	m, err := model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSyncRefMixesPolicyIn: TR-DPO's hook leaves the reference alone
// between syncs and sets ref = alpha*policy + (1-alpha)*old_ref at a sync.
func TestSyncRefMixesPolicyIn(t *testing.T) {
	const alpha, every = 0.6, 4
	policy, ref := tinyModel(t, 64, 1), tinyModel(t, 64, 2)
	defer policy.Free()
	defer ref.Free()
	ref.SetRequiresGrad(false)
	task := &Task{Policy: policy, Ref: ref}
	hook := task.syncHook(every, alpha)
	old, pol := preftest.ParamValues(ref), preftest.ParamValues(policy)
	if err := hook(every - 1); err != nil {
		t.Fatal(err)
	}
	for name, v := range preftest.ParamValues(ref) {
		if !slices.Equal(v, old[name]) {
			t.Fatalf("step %d is not a sync step, yet %s changed", every-1, name)
		}
	}
	if err := hook(2 * every); err != nil {
		t.Fatal(err)
	}
	for name, v := range preftest.ParamValues(ref) {
		for i := range v {
			want := alpha*float64(pol[name][i]) + (1-alpha)*float64(old[name][i])
			if math.Abs(float64(v[i])-want) > 1e-6 {
				t.Fatalf("%s[%d] = %g after sync, want alpha*policy + (1-alpha)*ref = %g", name, i, v[i], want)
			}
		}
	}
	if !slices.Equal(preftest.ParamValues(policy)["lm_head.weight"], pol["lm_head.weight"]) {
		t.Error("the sync changed the policy")
	}
}

// TestSyncRefInTraining: with sync_ref_model and ref_model_sync_steps = 2,
// a 2-step run ends with ref = alpha*final policy + (1-alpha)*SFT model,
// saved under ref_model/.
func TestSyncRefInTraining(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	cfg := baseConfig(t, sftDir, pairData(t))
	cfg.MaxSteps = 2
	cfg.SyncRefModel = true
	cfg.RefModelSyncSteps = 2
	cfg.RefModelMixupAlpha = 0.3
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	preftest.CheckRefMixup(t, sftDir, cfg.OutputDir, cfg.RefModelMixupAlpha)
}

// TestPrecomputedRefMatchesLive: the first step's loss and rewards are the
// same with precomputed reference log-probs as with a live reference. The
// reference is an earlier SFT checkpoint, so the log-ratios are not zero.
func TestPrecomputedRefMatchesLive(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	// Rejected completions of other lengths than the chosen, so that
	// ld_alpha has a tail to weigh.
	data := t.TempDir()
	var rows []map[string]any
	for i := range 64 {
		p, c := preftest.Sum((i * 37) % 100)
		rows = append(rows, map[string]any{"prompt": p, "chosen": fmt.Sprint(c), "rejected": strings.Repeat(fmt.Sprint(c+1)+" ", 1+i%3)})
	}
	preftest.WriteJSONL(t, filepath.Join(data, "train.jsonl"), rows)
	preftest.WriteJSONL(t, filepath.Join(data, "test.jsonl"), rows[:8])
	half := 0.5
	var plainReward float64
	for _, ld := range []*float64{nil, &half} {
		name := "none"
		if ld != nil {
			name = fmt.Sprint(*ld)
		}
		first := map[bool]map[string]float64{}
		for _, pre := range []bool{false, true} {
			cfg := baseConfig(t, sftDir, data)
			cfg.RefModel = filepath.Join(sftDir, "checkpoint-10")
			cfg.MaxSteps = 1
			cfg.PrecomputeRefLogProbs = pre
			cfg.PrecomputeRefBatchSize = 7 // other padding than the training batches
			if ld != nil {                 // LD-DPO weighs the reference's log-probs too; with WPO and DiscoPOP
				cfg.LdAlpha, cfg.UseWeighting, cfg.LossType = ld, true, []string{"discopop", "sigmoid"}
			}
			if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
				t.Fatal(err)
			}
			first[pre] = preftest.LogHistory(t, cfg.OutputDir)[0]
		}
		t.Logf("ld_alpha %s: live %v\nprecomputed %v", name, first[false], first[true])
		if r := first[false]["rewards/chosen"]; math.Abs(r) < 1e-2 {
			t.Fatalf("first rewards/chosen %g: the reference is (nearly) the policy, the test shows nothing", r)
		}
		for _, k := range []string{"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen"} {
			if a, b := first[false][k], first[true][k]; math.Abs(a-b) > 1e-5*math.Max(1, math.Abs(a)) {
				t.Errorf("ld_alpha %s: %s: live %g, precomputed %g", name, k, a, b)
			}
		}
		if ld == nil {
			plainReward = first[false]["rewards/rejected"]
		} else if r := first[false]["rewards/rejected"]; r == plainReward {
			t.Errorf("ld_alpha 0.5: rewards/rejected %g, the same as without it", r)
		}
	}
}

// TestBadPairsNameFileAndLine: an empty or missing completion is an error
// that names the file and line.
func TestBadPairsNameFileAndLine(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	cases := []struct {
		name, line2, want string
	}{
		{"empty chosen", `{"prompt": "1+1=", "chosen": "", "rejected": "3"}`, "chosen"},
		{"missing rejected", `{"prompt": "1+1=", "chosen": "2"}`, "rejected"},
		{"empty rejected", `{"prompt": "1+1=", "chosen": "2", "rejected": ""}`, "rejected"},
	}
	for _, tc := range cases {
		dir := t.TempDir()
		path := filepath.Join(dir, "pairs.jsonl")
		body := `{"prompt": "2+2=", "chosen": "4", "rejected": "5"}` + "\n" + tc.line2 + "\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(t, sftDir, path)
		cfg.MaxSteps = 1
		_, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if msg := err.Error(); !strings.Contains(msg, "pairs.jsonl:2") || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q does not name pairs.jsonl:2 and %s", tc.name, msg, tc.want)
		}
	}
}

// TestTruncation follows TRL's DataCollatorForPreference: keep_end keeps
// the last max_length tokens of each row (the long prompt loses its start,
// the long completion row loses prompt tokens first), keep_start keeps the
// first max_length tokens of each row and drops pairs whose prompt fills
// max_length; the batches go through the loss.
func TestTruncation(t *testing.T) {
	_, tokDir := preftest.SFTModel(t)
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(s string) []int32 {
		v, err := tok.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int32, len(v))
		for i, x := range v {
			out[i] = int32(x)
		}
		return out
	}
	long := strings.Repeat("1+2=3 4+5=9 ", 6) + "7+1="
	eos, _ := tok.IDToToken(tok.EOS())
	const maxLen = 12
	if n := len(ids(long)); n <= maxLen {
		t.Fatalf("the prompt has %d tokens, want more than %d", n, maxLen)
	}
	prefs := []datasets.Preference{
		{Prompt: long, Chosen: "8", Rejected: "9", Src: datasets.Source{File: "x.jsonl", Line: 1}},
		{Prompt: "1+1=", Chosen: "2 the quick brown fox jumps", Rejected: "3", Src: datasets.Source{File: "x.jsonl", Line: 2}},
	}
	m := tinyModel(t, tok.VocabSize(), 3)
	defer m.Free()
	for _, mode := range []string{preference.KeepEnd, preference.KeepStart} {
		enc := &preference.Encoder{Tok: tok, Style: preference.StyleDPO, MaxLength: maxLen, TruncationMode: mode, EOS: tok.EOS()}
		pairs, err := EncodePairs(enc, prefs, zerolog.Nop(), "test")
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		fullLong := ids(long + "8" + eos)
		fullShort := ids("1+1=2 the quick brown fox jumps" + eos)
		shortPrompt := len(ids("1+1="))
		var short preference.Pair
		switch mode {
		case preference.KeepEnd:
			if len(pairs) != 2 {
				t.Fatalf("keep_end kept %d pairs, want 2", len(pairs))
			}
			p := pairs[0]
			if want := fullLong[len(fullLong)-maxLen:]; !slices.Equal(p.Chosen, want) {
				t.Errorf("keep_end: chosen row %v, want the last %d tokens %v", p.Chosen, maxLen, want)
			}
			if n := len(p.ChosenIDs()); n != 2 {
				t.Errorf("keep_end: chosen completion has %d tokens, want 2 (8, eos)", n)
			}
			short = pairs[1]
			cut := len(fullShort) - maxLen
			if !slices.Equal(short.Chosen, fullShort[cut:]) || short.ChosenStart != max(0, shortPrompt-cut) {
				t.Errorf("keep_end: short chosen row %v start %d, want %v start %d", short.Chosen, short.ChosenStart, fullShort[cut:], max(0, shortPrompt-cut))
			}
		case preference.KeepStart:
			if len(pairs) != 1 {
				t.Fatalf("keep_start kept %d pairs, want 1 (the long prompt leaves no room)", len(pairs))
			}
			short = pairs[0]
			if !slices.Equal(short.Chosen, fullShort[:maxLen]) || short.ChosenStart != shortPrompt {
				t.Errorf("keep_start: chosen row %v start %d, want %v start %d", short.Chosen, short.ChosenStart, fullShort[:maxLen], shortPrompt)
			}
		}
		for _, p := range pairs {
			if n := max(len(p.Chosen), len(p.Rejected)); n > maxLen {
				t.Errorf("%s: %d tokens, more than max_length %d", mode, n, maxLen)
			}
		}
		// The truncated pairs go through the model and the loss.
		data := &Data{Pairs: pairs, Pad: 0}
		b, _ := data.Batch(seq(len(pairs)))
		task := &Task{Policy: m, Ref: m, Types: []string{"sigmoid"}, Weights: []float64{1}, Params: Params{Beta: 0.1}}
		err = tensor.TidyErr(func() (err error) {
			defer tensor.Recover(&err, "loss")
			var acc metrics.Accumulator
			if l := task.Loss(b, &acc, false).ItemF64(); math.Abs(l-math.Ln2) > 1e-5 {
				t.Errorf("%s: loss %g with policy = reference, want ln 2", mode, l)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", mode, err)
		}
	}
}

// TestTaskLDAndWPO: through Task.Loss with policy = reference (log-ratios
// 0, so the sigmoid loss is ln 2 per pair): use_weighting scales it by the
// mean WPO pair weight (p(y_t)/sum_v p(v)^2 may exceed 1); ld_alpha 0 drops the longer
// completion's tail from logps/*, and the sft loss ignores ld_alpha.
func TestTaskLDAndWPO(t *testing.T) {
	m := tinyModel(t, 40, 5)
	defer m.Free()
	pairs := []preference.Pair{
		{Chosen: []int32{1, 2, 3, 4}, Rejected: []int32{1, 2, 5, 6, 7, 8}, ChosenStart: 2, RejectedStart: 2},
		{Chosen: []int32{9, 3, 3, 3, 3}, Rejected: []int32{9, 3, 4}, ChosenStart: 1, RejectedStart: 1},
	}
	b, _ := (&Data{Pairs: pairs}).Batch([]int{0, 1})
	run := func(task *Task) (loss float64, means map[string]float64) {
		err := tensor.TidyErr(func() (err error) {
			defer tensor.Recover(&err, "loss")
			var acc metrics.Accumulator
			loss = task.Loss(b, &acc, false).ItemF64()
			means = acc.Means()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return loss, means
	}
	base := Task{Policy: m, Ref: m, Types: []string{"sigmoid"}, Weights: []float64{1}, Params: Params{Beta: 0.1}}
	plain, pm := run(&base)
	if !near(plain, math.Ln2, 1e-6) {
		t.Fatalf("sigmoid loss %g with policy = reference, want ln 2", plain)
	}
	wpo := base
	wpo.UseWeighting = true
	weighted, _ := run(&wpo)
	var wantW float64
	tensor.Tidy(func() {
		tensor.NoGrad(func() {
			logits := m.Forward(b.Inputs(m.Device))
			w := WPOWeights(logits, preference.CompletionLogps(logits, b.Batch).PerToken, b.Batch).Float64s()
			for i := range 2 {
				if !(w[i] > 0 && w[i+2] > 0) {
					t.Errorf("pair %d: WPO weights %g, %g, want each > 0", i, w[i], w[i+2])
				}
				wantW += w[i] * w[i+2] / 2
			}
		})
	})
	if !near(weighted, math.Ln2*wantW, 1e-6) {
		t.Errorf("use_weighting: loss %g, want ln 2 * mean(w_c w_r) = %g", weighted, math.Ln2*wantW)
	}
	ld := base
	zero := 0.0
	ld.LdAlpha = &zero
	ld.Types = []string{"sigmoid", "sft"}
	ld.Weights = []float64{1, 1}
	ldLoss, lm := run(&ld)
	nll := base
	nll.Types, nll.Weights = []string{"sigmoid", "sft"}, []float64{1, 1}
	nllLoss, _ := run(&nll)
	if !near(ldLoss, nllLoss, 1e-6) {
		t.Errorf("ld_alpha 0: sigmoid + sft = %g, want %g (ratios 0 either way; sft unweighted)", ldLoss, nllLoss)
	}
	// Pair 0's rejected row and pair 1's chosen row lose their tails: less negative.
	if !(lm["logps/chosen"] > pm["logps/chosen"] && lm["logps/rejected"] > pm["logps/rejected"]) {
		t.Errorf("ld_alpha 0: logps/chosen %g, logps/rejected %g, want above the plain %g, %g", lm["logps/chosen"], lm["logps/rejected"], pm["logps/chosen"], pm["logps/rejected"])
	}
}
