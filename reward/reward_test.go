package reward

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

func init() { tensor.SetNumThreads(0) }

// logSigmoid is log(1/(1+exp(-x))), computed stably, independently of libtorch.
func logSigmoid(x float64) float64 {
	if x >= 0 {
		return -math.Log1p(math.Exp(-x))
	}
	return x - math.Log1p(math.Exp(x))
}

// wantLoss is the RewardTrainer loss written out in Go.
func wantLoss(chosen, rejected, margins []float64, center *float64) float64 {
	var l, c2 float64
	for i := range chosen {
		m := 0.0
		if margins != nil {
			m = margins[i]
		}
		l -= logSigmoid(chosen[i] - rejected[i] - m)
		c2 += (chosen[i] + rejected[i]) * (chosen[i] + rejected[i])
	}
	l /= float64(len(chosen))
	if center != nil {
		l += *center * c2 / float64(len(chosen))
	}
	return l
}

func ptr(v float64) *float64 { return &v }

func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestPairwiseLossMatchesFormula compares the loss and metrics on
// hand-made rewards with the formula evaluated in Go and with metrics
// worked out by hand.
func TestPairwiseLossMatchesFormula(t *testing.T) {
	chosen := []float64{1.5, -0.2, 0.3, 2.0}
	rejected := []float64{0.5, 0.4, 0.3, -1.25}
	// By hand: chosen > rejected in pairs 0 and 3 (pair 2 is a tie);
	// margin = (1 - 0.6 + 0 + 3.25) / 4; rewards range over [-1.25, 2];
	// mean = (3.6 + -0.05) / 8.
	wantStats := map[string]float64{"accuracy": 0.5, "margin": 3.65 / 4, "min_reward": -1.25, "mean_reward": 3.55 / 8, "max_reward": 2}
	cases := []struct {
		name    string
		margins []float64
		center  *float64
	}{
		{"plain", nil, nil},
		{"margin", []float64{0.5, 0, 1.0, -0.3}, nil},
		{"center", nil, ptr(0.01)},
		{"margin+center", []float64{0.5, 0, 1.0, -0.3}, ptr(0.25)},
	}
	for _, tc := range cases {
		tensor.Tidy(func() {
			got := PairwiseLoss(float64s(chosen), float64s(rejected), tc.margins, tc.center).ItemF64()
			want := wantLoss(chosen, rejected, tc.margins, tc.center)
			if !close(got, want, 1e-6) {
				t.Errorf("%s: loss = %.9f, want %.9f", tc.name, got, want)
			}
		})
	}
	// float32 rewards (as a model gives them) go through the same path.
	tensor.Tidy(func() {
		c32 := tensor.FromFloat32s([]float32{1.5, -0.25}, 2)
		r32 := tensor.FromFloat32s([]float32{0.5, 0.5}, 2)
		got := PairwiseLoss(c32, r32, []float64{0.1, 0.2}, ptr(0.1)).ItemF64()
		want := wantLoss([]float64{1.5, -0.25}, []float64{0.5, 0.5}, []float64{0.1, 0.2}, ptr(0.1))
		if !close(got, want, 1e-6) {
			t.Errorf("float32 rewards: loss = %.9f, want %.9f", got, want)
		}
	})
	stats := Stats(chosen, rejected)
	for k, want := range wantStats {
		if got, ok := stats[k]; !ok || !close(got, want, 1e-12) {
			t.Errorf("%s = %g, want %g", k, got, want)
		}
	}
}

// tinyConfig writes a small GPT-2 config.json for a vocabulary of vocab tokens.
func tinyConfig(t *testing.T, vocab, layers, width, positions int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	cfg := fmt.Sprintf(`{"model_type":"gpt2","n_embd":%d,"n_layer":%d,"n_head":4,"n_positions":%d,"vocab_size":%d}`, width, layers, positions, (vocab+63)/64*64)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tinyScoreModel is a 2-layer tiny GPT-2 with a one-label score head
// (vocabulary 64), initialised from seed.
func tinyScoreModel(t *testing.T, seed int64) *model.Model {
	t.Helper()
	tensor.ManualSeed(seed)
	cfg, err := model.Preset("tiny", 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NumLayers, cfg.NumLabels = 2, 1
	m, err := model.New(cfg, model.ScoreHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTaskLossUsesLastToken runs Task.Loss on a padded batch and checks it
// against each row scored alone at its last token, with the formula in Go.
func TestTaskLossUsesLastToken(t *testing.T) {
	m := tinyScoreModel(t, 3)
	defer m.Free()
	m1, m2 := 0.5, -0.25
	pairs := []preference.Pair{
		{Chosen: []int32{1, 2, 3, 4, 5, 6, 7}, ChosenStart: 3, Rejected: []int32{1, 2, 3, 8}, RejectedStart: 3, Margin: &m1},
		{Chosen: []int32{9, 10}, ChosenStart: 1, Rejected: []int32{9, 11, 12, 13, 14, 15, 16}, RejectedStart: 1, Margin: &m2},
		{Chosen: []int32{17, 18, 19, 20}, ChosenStart: 2, Rejected: []int32{17, 18, 21, 22}, RejectedStart: 2},
	}
	b := preference.Collate(pairs, 63)
	m.NoDropout = true // disable_dropout, RewardConfig's default: training and scoring alone agree
	task := &Task{M: m, CenterRewardsCoefficient: ptr(0.1)}
	var acc metrics.Accumulator
	var got float64
	var rows [][]int64
	for _, side := range []int{0, 1} {
		for _, p := range pairs {
			row := []int64{}
			comp := p.Chosen
			if side == 1 {
				comp = p.Rejected
			}
			for _, id := range comp {
				row = append(row, int64(id))
			}
			rows = append(rows, row)
		}
	}
	alone := make([]float64, len(rows))
	tensor.Tidy(func() {
		got = task.Loss(b, &acc, true).ItemF64()
		for i, row := range rows {
			s := m.Forward(&model.Input{IDs: tensor.FromInt64s(row, 1, int64(len(row)))}).Float64s() // (1, n, 1)
			alone[i] = s[len(row)-1]
		}
	})
	B := len(pairs)
	want := wantLoss(alone[:B], alone[B:], []float64{0.5, -0.25, 0}, ptr(0.1))
	if !close(got, want, 1e-5) {
		t.Errorf("loss = %.7f, want %.7f (rows scored alone: %v)", got, want, alone)
	}
	wantStats := Stats(alone[:B], alone[B:])
	for k, v := range acc.Means() {
		if !close(v, wantStats[k], 1e-5) {
			t.Errorf("%s = %g, want %g", k, v, wantStats[k])
		}
	}
	if len(acc.Means()) != 5 {
		t.Errorf("metrics %v, want accuracy, margin, min/mean/max_reward", acc.Means())
	}
}

// ---------------------------------------------------------------- data

func writeJSONL(t *testing.T, path string, rows []map[string]any) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	filler    = strings.Fields("the cat dog sat on a mat red blue tree house runs fast slow big small green old new box")
	goodWords = strings.Fields("good great nice fine")
	badWords  = strings.Fields("bad awful poor ugly")
)

// goodBad makes n pairs whose chosen completion contains a good word
// ("good", "great", ...) and whose rejected one a bad word, surrounded by
// the same random filler words.
func goodBad(n int, seed uint64) []map[string]any {
	r := rand.New(rand.NewPCG(seed, 7))
	words := func(k int) string {
		w := make([]string, k)
		for i := range w {
			w[i] = filler[r.IntN(len(filler))]
		}
		return strings.Join(w, " ")
	}
	var out []map[string]any
	for i := 0; i < n; i++ {
		pre, post := words(1+r.IntN(4)), words(r.IntN(4))
		out = append(out, map[string]any{
			"prompt":   "say " + words(2) + ":",
			"chosen":   " " + pre + " " + goodWords[r.IntN(4)] + " " + post,
			"rejected": " " + pre + " " + badWords[r.IntN(4)] + " " + post,
		})
	}
	return out
}

func testTokenizer(t *testing.T) (*tokenizer.Tokenizer, string) {
	t.Helper()
	var corpus []string
	for _, r := range goodBad(200, 99) {
		corpus = append(corpus, r["prompt"].(string)+r["chosen"].(string), r["prompt"].(string)+r["rejected"].(string))
	}
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 320, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return tok, dir
}

// causalLM writes a freshly initialised small causal LM with the tokenizer
// in tokDir: the kind of checkpoint SFT produces.
func causalLM(t *testing.T, tokDir string, layers, width, positions int) string {
	t.Helper()
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	m, tok, err := checkpoint.New(tinyConfig(t, tok.VocabSize(), layers, width, positions), tokDir, model.LMHead, tensor.Float32, tensor.CPU, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	dir := t.TempDir()
	if err := checkpoint.Save(dir, m, tok); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBadRecordsNameFileLine: an empty or missing chosen/rejected is an
// error naming file:line and field; with skip_bad_records such records are
// skipped and counted.
func TestBadRecordsNameFileLine(t *testing.T) {
	tok, _ := testTokenizer(t)
	cases := []struct {
		name  string
		bad   map[string]any
		field string
	}{
		{"missing rejected", map[string]any{"prompt": "say:", "chosen": " good"}, `"rejected": missing`},
		{"empty chosen", map[string]any{"prompt": "say:", "chosen": "", "rejected": " bad"}, `"chosen": empty string`},
		{"empty rejected, implicit prompt", map[string]any{"chosen": "\n\nHuman: hi\n\nAssistant: good", "rejected": ""}, `"rejected": empty string`},
	}
	for _, tc := range cases {
		dir := t.TempDir()
		path := filepath.Join(dir, "train.jsonl")
		good := goodBad(3, 1)
		writeJSONL(t, path, []map[string]any{good[0], tc.bad, good[1], tc.bad, good[2]})
		cfg := DefaultConfig()
		cfg.Dataset = path
		_, err := loadData(&cfg, tok, tok.EOS(), zerolog.Nop())
		if err == nil || !strings.Contains(err.Error(), "train.jsonl:2") || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v, want one naming train.jsonl:2 and %s", tc.name, err, tc.field)
		}
		cfg.SkipBadRecords = true
		d, err := loadData(&cfg, tok, tok.EOS(), zerolog.Nop())
		if err != nil {
			t.Fatalf("%s: skip_bad_records: %v", tc.name, err)
		}
		if d.skipped != 2 || len(d.train) != 3 {
			t.Errorf("%s: skip_bad_records kept %d and skipped %d, want 3 and 2", tc.name, len(d.train), d.skipped)
		}
	}
	// Unparseable lines are counted too.
	path := filepath.Join(t.TempDir(), "train.jsonl")
	writeJSONL(t, path, goodBad(2, 1))
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("{not json\n")
	f.Close()
	cfg := DefaultConfig()
	cfg.Dataset, cfg.SkipBadRecords = path, true
	d, err := loadData(&cfg, tok, tok.EOS(), zerolog.Nop())
	if err != nil || d.skipped != 1 || len(d.train) != 2 {
		t.Errorf("unparseable line: err %v, skipped %d, kept %d; want nil, 1, 2", err, d.skipped, len(d.train))
	}
	// ... once, also when the eval set is held out of the same file ...
	cfg.EvalRatio, cfg.EvalStrategy = 0.5, "steps"
	if d, err = loadData(&cfg, tok, tok.EOS(), zerolog.Nop()); err != nil || d.skipped != 1 || len(d.train)+len(d.eval) != 2 {
		t.Errorf("unparseable line, eval_ratio 0.5: err %v, skipped %d, kept %d+%d; want nil, 1, 2 in all", err, d.skipped, len(d.train), len(d.eval))
	}
	// ... and per file with a separate test split.
	dir := filepath.Dir(path)
	b, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(dir, "test.jsonl"), b, 0o644)
	cfg.Dataset = dir
	if d, err = loadData(&cfg, tok, tok.EOS(), zerolog.Nop()); err != nil || d.skipped != 2 || len(d.train) != 2 || len(d.eval) != 2 {
		t.Errorf("unparseable lines in train.jsonl and test.jsonl: err %v, skipped %d, kept %d+%d; want nil, 2, 2+2", err, d.skipped, len(d.train), len(d.eval))
	}
}

// TestOverlongPairsDropped: pairs with prompt+chosen or prompt+rejected
// over max_length are dropped and counted, as TRL filters them; when none
// is left Run says why.
func TestOverlongPairsDropped(t *testing.T) {
	tok, tokDir := testTokenizer(t)
	long := strings.Repeat(" the cat sat on the mat", 20) // far over 32 tokens
	rows := goodBad(5, 2)
	rows[1]["chosen"] = long
	rows[3]["rejected"] = long
	dir := t.TempDir()
	path := filepath.Join(dir, "train.jsonl")
	writeJSONL(t, path, rows)
	cfg := DefaultConfig()
	cfg.Dataset = path
	cfg.MaxLength = 32
	d, err := loadData(&cfg, tok, tok.EOS(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if d.dropped != 2 || len(d.train) != 3 {
		t.Errorf("dropped %d, kept %d; want 2 and 3", d.dropped, len(d.train))
	}
	for _, p := range d.train {
		if n := max(len(p.Chosen), len(p.Rejected)); n > cfg.MaxLength {
			t.Errorf("kept a pair of %d tokens > max_length %d", n, cfg.MaxLength)
		}
		if p.Chosen[len(p.Chosen)-1] != int32(tok.EOS()) {
			t.Errorf("completion does not end with eos: %v", p.Chosen)
		}
	}
	// Nothing left: a clear error from Run.
	writeJSONL(t, path, []map[string]any{{"prompt": "say:", "chosen": long, "rejected": " bad"}})
	cfg.Model = causalLM(t, tokDir, 1, 32, 64)
	cfg.OutputDir = t.TempDir()
	_, err = Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err == nil || !strings.Contains(err.Error(), "1 longer than max_length 32 dropped") {
		t.Errorf("Run with every pair too long: %v", err)
	}
}

// ---------------------------------------------------------------- end to end

// TestRewardLearnsPreference trains a reward model from a causal-LM
// checkpoint on pairs where the chosen side says "good" (or a synonym) and
// the rejected "bad", checks that eval accuracy rises well above chance,
// and that the output
// is a sequence-classification checkpoint that rl score reads.
func TestRewardLearnsPreference(t *testing.T) {
	_, tokDir := testTokenizer(t)
	lm := causalLM(t, tokDir, 2, 64, 64)
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "train.jsonl"), goodBad(320, 3))
	evalRows := goodBad(64, 4)
	writeJSONL(t, filepath.Join(data, "test.jsonl"), evalRows)
	out := t.TempDir()
	cfg := DefaultConfig()
	cfg.Model = lm
	cfg.Dataset = data
	cfg.OutputDir = out
	cfg.MaxSteps = 60
	cfg.PerDeviceTrainBatchSize = 16
	cfg.PerDeviceEvalBatchSize = 32
	cfg.LearningRate = 1e-3
	cfg.WarmupSteps = 5
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = 20
	cfg.EvalOnStart = true
	cfg.SaveStrategy = "no"
	cfg.CenterRewardsCoefficient = ptr(0.01)
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.TrainPairs != 320 || res.EvalPairs != 64 || res.Dropped != 0 {
		t.Errorf("pairs: train %d eval %d dropped %d, want 320, 64, 0", res.TrainPairs, res.EvalPairs, res.Dropped)
	}
	h := preftest.LogHistory(t, out)
	accs := preftest.Series(h, "eval_accuracy")
	t.Logf("eval_accuracy: %v; eval_loss: %v", accs, preftest.Series(h, "eval_loss"))
	if len(accs) != 4 {
		t.Fatalf("eval_accuracy logged %d times, want 4 (start + 3)", len(accs))
	}
	losses := preftest.Series(h, "eval_loss")
	if !close(losses[0], math.Ln2, 0.05) || losses[len(losses)-1] > 0.2 || accs[len(accs)-1] < 0.95 {
		t.Errorf("eval_loss went %v and eval_accuracy %v; want the loss from about ln 2 (a fresh score head) below 0.2 and accuracy to >= 0.95", losses, accs)
	}
	for _, k := range []string{"loss", "accuracy", "margin", "min_reward", "mean_reward", "max_reward", "num_tokens", "eval_loss", "eval_margin", "eval_min_reward", "eval_mean_reward", "eval_max_reward"} {
		if _, ok := res.LastMetrics[k]; !ok {
			t.Errorf("metric %s not logged (have %v)", k, res.LastMetrics)
		}
	}
	// The output: …ForSequenceClassification with num_labels 1 and a pad id.
	var cj map[string]any
	b, _ := os.ReadFile(filepath.Join(out, "config.json"))
	json.Unmarshal(b, &cj)
	if a, _ := cj["architectures"].([]any); len(a) != 1 || a[0] != "GPT2ForSequenceClassification" {
		t.Errorf("architectures %v, want [GPT2ForSequenceClassification]", cj["architectures"])
	}
	// transformers derives num_labels from id2label.
	if id2, _ := cj["id2label"].(map[string]any); len(id2) != 1 || cj["pad_token_id"] == nil {
		t.Errorf("config id2label %v pad_token_id %v, want one label and a pad id", cj["id2label"], cj["pad_token_id"])
	}
	m, _, err := checkpoint.Load(out, model.LoadOptions{Head: model.ScoreHead})
	if err != nil {
		t.Fatal(err)
	}
	if m.Head != model.ScoreHead || m.Config.NumLabels != 1 {
		t.Errorf("loaded head %v num_labels %d, want ScoreHead and 1", m.Head, m.Config.NumLabels)
	}
	m.Free()
	// rl score ranks the eval pairs the way eval_accuracy says.
	s, err := LoadScorer(out, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	var in strings.Builder
	for _, r := range evalRows {
		b, _ := json.Marshal(r)
		in.Write(append(b, '\n'))
	}
	reqs, err := ReadRequests(strings.NewReader(in.String()), "eval.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	scores, err := s.ScoreRequests(reqs)
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for _, sc := range scores {
		if sc[0] > sc[1] {
			correct++
		}
	}
	if got := float64(correct) / float64(len(scores)); !close(got, accs[len(accs)-1], 1e-9) {
		t.Errorf("rl score accuracy %g, eval_accuracy %g: want the same", got, accs[len(accs)-1])
	}
	// An SFT/causal-LM checkpoint is not a reward model.
	if _, err := LoadScorer(lm, tensor.CPU); err == nil || !strings.Contains(err.Error(), "not a reward model") {
		t.Errorf("LoadScorer(causal LM) = %v, want a not-a-reward-model error", err)
	}
}

// TestReadRequests: good lines parse (with implicit prompts), bad ones name
// file:line.
func TestReadRequests(t *testing.T) {
	in := `{"prompt": "Q:", "completion": " yes"}

{"chosen": "Q: a good one", "rejected": "Q: a bad one"}
{"prompt": "Q:", "chosen": " x", "rejected": " y"}
`
	reqs, err := ReadRequests(strings.NewReader(in), "in.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	want := []Request{
		{Prompt: "Q:", Completion: " yes"},
		{Prompt: "Q: a", Chosen: " good one", Rejected: " bad one", Pair: true},
		{Prompt: "Q:", Chosen: " x", Rejected: " y", Pair: true},
	}
	wantLines := []int{1, 3, 4}
	if len(reqs) != len(want) {
		t.Fatalf("got %d requests, want %d", len(reqs), len(want))
	}
	for i := range want {
		got := reqs[i]
		if got.Src.Line != wantLines[i] || got.Src.File != "in.jsonl" {
			t.Errorf("request %d: source %s, want in.jsonl:%d", i, got.Src, wantLines[i])
		}
		got.Src = want[i].Src
		if got != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got, want[i])
		}
	}
	bad := []struct{ line, msg string }{
		{`{"prompt": "Q:"}`, `want "completion"`},
		{`{"prompt": "Q:", "completion": ""}`, `"completion": empty string`},
		{`{"chosen": "a"}`, `"rejected": missing`},
		{`{"prompt": "Q:", "chosen": "", "rejected": "b"}`, `"chosen": empty string`},
		{`{"prompt": [{"role": "user", "content": "hi"}], "completion": "x"}`, `"prompt": want a string`},
		{`{"completion": "x", "chosen": "a", "rejected": "b"}`, "both"},
		{`not json`, "not a JSON object"},
		{"{\"prompt\": \"Q\xff\", \"completion\": \"x\"}", "invalid UTF-8"},
		{`{"prompt": "Q", "completion": "x\u0000"}`, `"completion": contains a NUL byte`},
	}
	for _, tc := range bad {
		_, err := ReadRequests(strings.NewReader(`{"completion": "ok"}`+"\n"+tc.line+"\n"), "in.jsonl")
		if err == nil || !strings.Contains(err.Error(), "in.jsonl:2") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want in.jsonl:2 and %q", tc.line, err, tc.msg)
		}
	}
}

// ---------------------------------------------------------------- real data

const hhPairs = "../../shared/data/hh-rlhf-harmless-base/pairs.jsonl"

var (
	long   = flag.Bool("long", false, "TestHHReward: the long run (bigger SFT and reward training, minutes)")
	hhSeed = flag.Int64("hh.seed", 42, "TestHHReward: seed of the train/test split, initialisation and data order")
)

// TestHHReward trains a reward model on Anthropic HH harmless-base pairs
// (80% train, 20% held out) and checks held-out pairwise accuracy. The
// pipeline is the real one at small scale: a tokenizer trained on the
// training dialogues, a small GPT-2 SFT'd on them (language modelling),
// then Run from that checkpoint, dropping pairs longer than max_length as
// TRL does. Measured (go test ./reward/ -run HHReward -v [-hh.seed N]):
// 0.610 on 205 held-out pairs with the default seed 42 (0.583 with seed
// 7, 0.558 with seed 1), about 50 s of CPU. With -long (4 layers, width
// 128, max_length 512, 300 SFT steps, 140 reward steps; about 12 CPU
// minutes): 0.586 on 285 pairs, with eval_loss rising in the second epoch.
func TestHHReward(t *testing.T) {
	if _, err := os.Stat(hhPairs); err != nil {
		t.Skip("../shared/data not present")
	}
	if testing.Short() {
		t.Skip("about a minute of CPU; skipped with -short")
	}
	type setup struct {
		layers, width, maxLen     int
		sftSteps, sftBatch, steps int
		sftLR, lr, minAcc         float64
	}
	s := setup{layers: 2, width: 64, maxLen: 256, sftSteps: 60, sftBatch: 16, steps: 60, sftLR: 3e-3, lr: 1e-3, minAcc: 0.55}
	if *long {
		s = setup{layers: 4, width: 128, maxLen: 512, sftSteps: 300, sftBatch: 8, steps: 140, sftLR: 2e-3, lr: 3e-4, minAcc: 0.55}
	}
	began := time.Now()
	seed := *hhSeed
	b, err := os.ReadFile(hhPairs)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, line := range strings.Split(string(b), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil {
			rows = append(rows, r)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	nTest := len(rows) / 5
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "test.jsonl"), rows[:nTest])
	writeJSONL(t, filepath.Join(data, "train.jsonl"), rows[nTest:])

	// Tokenizer and SFT on the training dialogues only.
	var corpus []string
	var texts []map[string]any
	for _, r := range rows[nTest:] {
		for _, k := range []string{"chosen", "rejected"} {
			corpus = append(corpus, r[k].(string))
			texts = append(texts, map[string]any{"text": r[k]})
		}
	}
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 4096, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	tokDir := t.TempDir()
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	lmData := t.TempDir()
	writeJSONL(t, filepath.Join(lmData, "train.jsonl"), texts)
	sc := sft.DefaultConfig()
	sc.Model = causalLM(t, tokDir, s.layers, s.width, s.maxLen)
	sc.Dataset = lmData
	sc.OutputDir = t.TempDir()
	sc.MaxSteps = s.sftSteps
	sc.Packing = true
	sc.MaxLength = s.maxLen
	sc.PerDeviceTrainBatchSize = s.sftBatch
	sc.LearningRate = s.sftLR
	sc.WarmupSteps = 5
	sc.SaveStrategy = "no"
	sc.NoCache = true
	sc.Seed = seed
	sr, err := sft.Run(context.Background(), sc, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sftTime := time.Since(began)

	cfg := DefaultConfig()
	cfg.Model = sc.OutputDir
	cfg.Dataset = data
	cfg.OutputDir = t.TempDir()
	cfg.MaxLength = s.maxLen
	cfg.MaxSteps = s.steps
	cfg.PerDeviceTrainBatchSize = 16
	cfg.PerDeviceEvalBatchSize = 32
	cfg.LearningRate = s.lr
	cfg.WeightDecay = 0.1
	cfg.WarmupSteps = 5
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = s.steps / 2
	cfg.SaveStrategy = "no"
	cfg.Seed = seed
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := preftest.LogHistory(t, cfg.OutputDir)
	accs := preftest.Series(h, "eval_accuracy")
	acc := accs[len(accs)-1]
	t.Logf("HH harmless-base: SFT %d steps (loss %.3f, %s), reward %d steps on %d pairs (%d dropped as longer than %d tokens): held-out pairwise accuracy %.3f on %d pairs (eval_accuracy %v, eval_loss %v), %s in all",
		s.sftSteps, sr.LastMetrics["loss"], sftTime.Round(time.Second), s.steps, res.TrainPairs, res.Dropped, cfg.MaxLength, acc, res.EvalPairs, accs, preftest.Series(h, "eval_loss"), time.Since(began).Round(time.Second))
	if acc < s.minAcc {
		t.Errorf("held-out accuracy %.3f, want >= %.2f", acc, s.minAcc)
	}
}

// TestScoreReadBeforeTrailingPad: with pad_token_id == eos (GPT-2 style),
// a row ending in eos is scored at the token before it, as transformers'
// sequence-classification models and TRL read it; without a pad_token_id
// the eos itself is read.
func TestScoreReadBeforeTrailingPad(t *testing.T) {
	m := tinyScoreModel(t, 4)
	defer m.Free()
	const eos = 63
	score := func(row []int64) float64 {
		var v float64
		tensor.Tidy(func() {
			v = LastScores(m, row, []int64{int64(len(row) - 1)}, 1, int64(len(row))).Float64s()[0]
		})
		return v
	}
	pad := eos
	m.Config.PadTokenID = &pad
	withEOS, without := score([]int64{5, 6, 7, eos}), score([]int64{5, 6, 7})
	if math.Abs(withEOS-without) > 1e-6 {
		t.Errorf("pad == eos: score of [5 6 7 eos] = %g, of [5 6 7] = %g; want equal (read at 7)", withEOS, without)
	}
	m.Config.PadTokenID = nil
	if atEOS := score([]int64{5, 6, 7, eos}); math.Abs(atEOS-without) < 1e-6 {
		t.Errorf("no pad_token_id: [5 6 7 eos] scored %g like [5 6 7]; want the eos read", atEOS)
	}
}
