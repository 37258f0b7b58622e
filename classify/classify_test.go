package classify

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// One intra-op thread: the test machine is shared, and libtorch's thread
// pool oversubscribed by other processes runs up to ten times slower.
func init() { tensor.SetNumThreads(1) }

var (
	filler   = strings.Fields("the movie was a plot with actors and story really quite very film scenes music ending it is this one of my")
	goodWord = []string{"good", "great", "fine"}
	badWord  = []string{"bad", "awful", "poor"}
)

// reviews returns n texts of filler words with one sentiment word at a
// random place, labelled "positive" or "negative".
func reviews(n int, seed uint64) []map[string]any {
	r := rand.New(rand.NewPCG(seed, 7))
	var out []map[string]any
	for range n {
		words := make([]string, 3+r.IntN(6))
		for i := range words {
			words[i] = filler[r.IntN(len(filler))]
		}
		label, w := "negative", badWord[r.IntN(len(badWord))]
		if r.IntN(2) == 1 {
			label, w = "positive", goodWord[r.IntN(len(goodWord))]
		}
		at := r.IntN(len(words) + 1)
		words = slices.Insert(words, at, w)
		out = append(out, map[string]any{"text": strings.Join(words, " "), "label": label})
	}
	return out
}

func writeJSONL(t testing.TB, path string, rows []map[string]any) {
	t.Helper()
	var b strings.Builder
	for _, r := range rows {
		j, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// trainTokenizer trains a byte-level BPE on texts and saves it to a temp dir.
func trainTokenizer(t testing.TB, texts []string, vocab int) string {
	t.Helper()
	tok, err := tokenizer.Train(slices.Values(texts), tokenizer.TrainOptions{VocabSize: vocab, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// smallConfig writes a GPT-2 config smaller than the tiny preset (width 64,
// 2 layers) for tests, and returns its path for Config.Init.
func smallConfig(t testing.TB, tokDir string, width, layers, positions int) string {
	t.Helper()
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	js := fmt.Sprintf(`{"model_type":"gpt2","architectures":["GPT2LMHeadModel"],"n_embd":%d,"n_layer":%d,"n_head":4,"n_positions":%d,"vocab_size":%d}`,
		width, layers, positions, (tok.VocabSize()+63)/64*64)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func texts(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["text"].(string))
	}
	return out
}

// TestClassifyEndToEnd trains a small model from scratch on generated
// reviews, picks the best checkpoint by MCC, and checks the saved
// classifier: accuracy, id2label, metrics over the whole eval set (eval
// batches of 3 would give other F1/MCC if batch values were averaged), and
// predict.
func TestClassifyEndToEnd(t *testing.T) {
	trainRows, evalRows := reviews(600, 1), reviews(120, 2)
	// Flip every 30th eval label so that F1 and MCC stay below 1: eval
	// batches of 3 averaged would then give other values than the whole set.
	for i := 0; i < len(evalRows); i += 30 {
		evalRows[i]["label"] = map[string]string{"positive": "negative", "negative": "positive"}[evalRows[i]["label"].(string)]
	}
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "train.jsonl"), trainRows)
	writeJSONL(t, filepath.Join(data, "validation.jsonl"), evalRows)
	tokDir := trainTokenizer(t, texts(trainRows), 300)
	out := t.TempDir()
	cfg := DefaultConfig()
	cfg.Init = smallConfig(t, tokDir, 64, 2, 64)
	cfg.Tokenizer = tokDir
	cfg.Dataset = data
	cfg.OutputDir = out
	cfg.MaxSteps = 75
	cfg.PerDeviceTrainBatchSize = 16
	cfg.PerDeviceEvalBatchSize = 3
	cfg.LearningRate = 3e-3
	cfg.WarmupSteps = 10
	cfg.LoggingSteps = 25
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = 25
	cfg.SaveStrategy = "steps"
	cfg.SaveSteps = 25
	cfg.LoadBestModelAtEnd = true
	cfg.MetricForBestModel = "matthews_correlation"
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("eval %+v baseline %+v", res.Eval, res.Baseline)
	if res.Eval.Accuracy <= 0.9 {
		t.Errorf("eval accuracy %.3f, want > 0.9", res.Eval.Accuracy)
	}
	if want := map[int]string{0: "negative", 1: "positive"}; !reflect.DeepEqual(res.ID2Label, want) {
		t.Errorf("id2label %v, want %v", res.ID2Label, want)
	}

	// The best checkpoint is the one with the highest eval MCC, and the
	// final model is that one.
	var st struct {
		BestMetric          *float64             `json:"best_metric"`
		BestModelCheckpoint *string              `json:"best_model_checkpoint"`
		LogHistory          []map[string]float64 `json:"log_history"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "trainer_state.json"))
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	best := math.Inf(-1)
	n := 0
	for _, h := range st.LogHistory {
		if v, ok := h["eval_matthews_correlation"]; ok {
			n++
			best = max(best, v)
			for _, k := range []string{"eval_accuracy", "eval_f1", "eval_f1_macro", "eval_loss"} {
				if _, ok := h[k]; !ok {
					t.Errorf("eval log at step %v lacks %s", h["step"], k)
				}
			}
		}
	}
	t.Logf("best eval MCC %g of %d evaluations", best, n)
	if n != 3 || st.BestMetric == nil || *st.BestMetric != best {
		t.Errorf("evaluations %d (want 3), best_metric %v, want the max eval MCC %g", n, st.BestMetric, best)
	}
	if res.Eval.MCC != best {
		t.Errorf("final model MCC %g, want the best checkpoint's %g", res.Eval.MCC, best)
	}

	// The output loads as a sequence classifier with the names.
	m, err := model.Load(out, model.LoadOptions{Head: model.ScoreHead})
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.NumLabels != 2 || m.Config.ID2Label[1] != "positive" || m.Config.PadTokenID == nil {
		t.Errorf("saved config: num_labels %d id2label %v pad %v", m.Config.NumLabels, m.Config.ID2Label, m.Config.PadTokenID)
	}
	m.Free()
	cj, _ := os.ReadFile(filepath.Join(out, "config.json"))
	for _, want := range []string{`"GPT2ForSequenceClassification"`, `"label2id"`, `"positive": 1`} {
		if !strings.Contains(string(cj), want) {
			t.Errorf("config.json lacks %s", want)
		}
	}

	// predict: the eval metrics equal the metrics of the saved model's
	// predictions over the whole eval set.
	clf, err := Load(out, tensor.CPU, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Free()
	var in []Input
	var labels []int
	for _, r := range evalRows {
		in = append(in, Input{Text: r["text"].(string)})
		labels = append(labels, slices.Index(clf.Labels, r["label"].(string)))
	}
	preds, err := clf.Predict(in, 7)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for i, p := range preds {
		ids = append(ids, p.ID)
		sum := 0.0
		for _, v := range p.Probabilities {
			sum += v
		}
		if !near(sum, 1, 1e-5) || p.Label != clf.Labels[p.ID] || p.Text != in[i].Text {
			t.Fatalf("prediction %d: %+v (probabilities sum to %g)", i, p, sum)
		}
	}
	got := Evaluate(ids, labels, 2)
	if !near(got.F1, res.Eval.F1, 1e-9) || !near(got.MCC, res.Eval.MCC, 1e-9) || !near(got.Accuracy, res.Eval.Accuracy, 1e-9) {
		t.Errorf("metrics of predict %+v differ from the trainer's eval %+v", got, res.Eval)
	}
	var er map[string]float64
	b, _ = os.ReadFile(filepath.Join(out, "eval_results.json"))
	if err := json.Unmarshal(b, &er); err != nil || er["eval_matthews_correlation"] != res.Eval.MCC || er["baseline_accuracy"] != res.Baseline.Accuracy {
		t.Errorf("eval_results.json = %v (%v)", er, err)
	}

	// ReadInputs: text lines and JSONL, as rl predict reads them.
	rd, err := ReadInputs(strings.NewReader("a good film\n\n{\"text\": \"an awful plot\"}\n"), "in.txt")
	if err != nil || len(rd) != 2 || rd[1].Text != "an awful plot" {
		t.Fatalf("ReadInputs: %+v, %v", rd, err)
	}
	pr, err := clf.Predict(rd, 32)
	if err != nil {
		t.Fatal(err)
	}
	if pr[0].Label != "positive" || pr[1].Label != "negative" {
		t.Errorf("predict: %+v", pr)
	}
}

// TestEncodePair: text, separator (eos), text_pair; longest-first truncation.
func TestEncodePair(t *testing.T) {
	tokDir := trainTokenizer(t, []string{"one two three four five six seven"}, 270)
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(tok, 64)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tok.Encode("one two three four five", true)
	b, _ := tok.Encode("six seven", false)
	got, err := enc.Encode("one two three four five", "six seven")
	if err != nil {
		t.Fatal(err)
	}
	want := toI32(append(append(slices.Clone(a), tok.EOS()), b...))
	if !slices.Equal(got, want) {
		t.Fatalf("pair ids %v, want %v", got, want)
	}
	// Truncate to len(b)+1+2: the longer text a loses tokens until it is
	// no longer than b, then they alternate.
	enc.MaxLength = len(b) + 1 + 2
	got, _ = enc.Encode("one two three four five", "six seven")
	la, lb := len(a), len(b)
	for over := la + lb + 1 - enc.MaxLength; over > 0; over-- {
		if la >= lb {
			la--
		} else {
			lb--
		}
	}
	want = toI32(append(append(slices.Clone(a[:la]), tok.EOS()), b[:lb]...))
	if !slices.Equal(got, want) || len(got) != enc.MaxLength {
		t.Errorf("truncated pair %v, want %v (max_length %d)", got, want, enc.MaxLength)
	}
	enc.MaxLength = 2
	if got, _ := enc.Encode("one two three four five", ""); !slices.Equal(got, toI32(a[:2])) {
		t.Errorf("truncated single %v, want %v", got, a[:2])
	}
}

func toI32(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// TestBadInput: data problems stop Run before training with an error that
// names the file and line (or the column).
func TestBadInput(t *testing.T) {
	tokDir := trainTokenizer(t, []string{"a good film", "a bad film"}, 270)
	base := func(dir string) Config {
		c := DefaultConfig()
		c.Init = "tiny"
		c.Tokenizer = tokDir
		c.Dataset = dir
		c.OutputDir = t.TempDir()
		c.MaxSteps = 1
		return c
	}
	write := func(files map[string]string) string {
		dir := t.TempDir()
		for name, s := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	cases := []struct {
		name   string
		files  map[string]string
		modify func(*Config)
		want   []string
	}{{
		name:  "label missing",
		files: map[string]string{"train.jsonl": `{"text": "a good film", "label": 1}` + "\n" + `{"text": "a bad film"}` + "\n"},
		want:  []string{"train.jsonl:2", `"label"`, "missing"},
	}, {
		name:   "label column missing",
		files:  map[string]string{"train.csv": "review,stars\na good film,1\n"},
		modify: func(c *Config) { c.TextColumn, c.LabelColumn = "review", "sentiment" },
		want:   []string{"train.csv", `"sentiment" not found`, "review, stars"},
	}, {
		name:  "empty text",
		files: map[string]string{"train.jsonl": `{"text": "a good film", "label": "pos"}` + "\n" + `{"text": "", "label": "neg"}` + "\n"},
		want:  []string{"train.jsonl:2", `"text"`, "empty"},
	}, {
		name: "eval label not in training",
		files: map[string]string{
			"train.jsonl":      `{"text": "a good film", "label": "pos"}` + "\n" + `{"text": "a bad film", "label": "neg"}` + "\n",
			"validation.jsonl": `{"text": "a film", "label": "neg"}` + "\n" + `{"text": "a so-so film", "label": "neutral"}` + "\n",
		},
		want: []string{"validation.jsonl:2", `"neutral"`, "does not occur in the training data"},
	}, {
		name:  "unlabeled training example",
		files: map[string]string{"train.jsonl": `{"text": "a good film", "label": 1}` + "\n" + `{"text": "a film", "label": -1}` + "\n"},
		want:  []string{"train.jsonl:2", "unlabeled"},
	}, {
		name:   "headerless TSV row short of a column",
		files:  map[string]string{"train.tsv": "src\t1\t\ta good film\nsrc\t0\ta bad film\n"},
		modify: func(c *Config) { c.NoHeader, c.ColumnNames = true, []string{"source", "label", "mark", "sentence"} },
		want:   []string{"train.tsv:2", "3 fields, want 4"},
	}, {
		name:   "label_names for string labels",
		files:  map[string]string{"train.jsonl": `{"text": "a good film", "label": "pos"}` + "\n"},
		modify: func(c *Config) { c.LabelNames = []string{"negative", "positive"} },
		want:   []string{"label_names is for integer labels", `"pos"`},
	}, {
		// without problem_type a float label means regression (run_glue.py's is_regression)
		name:   "non-integer number label for single_label_classification",
		files:  map[string]string{"train.jsonl": `{"text": "a good film", "label": 1.5}` + "\n"},
		modify: func(c *Config) { c.ProblemType = model.SingleLabel },
		want:   []string{"train.jsonl:1", "not an integer"},
	}}
	for _, c := range cases {
		cfg := base(write(c.files))
		if c.modify != nil {
			c.modify(&cfg)
		}
		_, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.name, err, w)
			}
		}
	}
}

// TestStringLabelsMapToNames: string labels become sorted class names; an
// eval split holding a subset of them maps to the same ids.
func TestStringLabelsMapToNames(t *testing.T) {
	tr := &datasets.Dataset{Name: "train"}
	ev := &datasets.Dataset{Name: "validation"}
	for i, l := range []string{"sports", "business", "world", "sports"} {
		tr.Records = append(tr.Records, datasets.Record{"text": fmt.Sprint("t", i), "label": l})
	}
	for i, l := range []string{"world", "sports"} {
		ev.Records = append(ev.Records, datasets.Record{"text": fmt.Sprint("e", i), "label": l})
	}
	trL, evL, err := Label(tr, ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"business", "sports", "world"}; !slices.Equal(trL.Names, want) || trL.NumLabels != 3 {
		t.Fatalf("names %v (%d labels), want %v", trL.Names, trL.NumLabels, want)
	}
	var got []int
	for _, e := range evL.Examples {
		got = append(got, e.Label)
	}
	if !slices.Equal(got, []int{2, 1}) {
		t.Errorf("eval ids %v, want [2 1] (world, sports in the training names)", got)
	}
}

// TestPolarityLatin1: a line that is not valid UTF-8 is decoded as
// Latin-1 and counted; lines are trimmed; labels are neg 0, pos 1.
func TestPolarityLatin1(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rt-polarity.pos"), []byte("caf\xe9 cr\xe8me is good . \nna\u00efve and fun \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rt-polarity.neg"), []byte("dull\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolarity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Latin1Lines != 1 {
		t.Errorf("Latin-1 lines %d, want 1 (the UTF-8 line with ï is not one)", p.Latin1Lines)
	}
	var got []string
	for _, e := range p.Train {
		got = append(got, fmt.Sprintf("%d:%s", e.Label, e.Text))
	}
	if want := []string{"1:café crème is good .", "1:naïve and fun", "0:dull"}; !slices.Equal(got, want) {
		t.Errorf("train %q, want %q", got, want)
	}
	if len(p.Validation)+len(p.Test) != 0 {
		t.Errorf("validation/test of a 3-line corpus: %d/%d, want 0/0", len(p.Validation), len(p.Test))
	}
	if err := os.WriteFile(filepath.Join(dir, "rt-polarity.neg"), []byte("dull\n \nslow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolarity(dir); err == nil || !strings.Contains(err.Error(), "rt-polarity.neg:2: empty line") {
		t.Errorf("blank line: got %v", err)
	}
}
