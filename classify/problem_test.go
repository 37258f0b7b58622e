package classify

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/model"
)

func near6(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestRegressionMetrics: values computed by hand. pred 1,2,3,4 against
// 1,3,2,5: errors 0,-1,1,-1 (mse 0.75, mae 0.75); pearson 5.5/sqrt(5*8.75);
// spearman 1 - 6*2/(4*15) = 0.8; tied values share their mean rank.
func TestRegressionMetrics(t *testing.T) {
	m := RegressionMetrics([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 5}, "eval_")
	want := map[string]float64{"eval_mse": 0.75, "eval_rmse": math.Sqrt(0.75), "eval_mae": 0.75, "eval_pearson": 5.5 / math.Sqrt(43.75), "eval_spearmanr": 0.8}
	for k, v := range want {
		if !near6(m[k], v) {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if r := ranks([]float64{2, 1, 1, 5}); !slices.Equal(r, []float64{3, 1.5, 1.5, 4}) {
		t.Errorf("ranks %v, want [3 1.5 1.5 4]", r)
	}
	if p := Pearson([]float64{1, 1, 1}, []float64{1, 2, 3}); p != 0 {
		t.Errorf("pearson with a constant side %v, want 0", p)
	}
	if len(RegressionMetrics(nil, nil, "")) != 0 {
		t.Error("empty input gives metrics")
	}
}

// TestMultiLabelMetrics: predictions {0,2} and {1} against {0} and {1}:
// TP 2, FP 1, FN 0 -> micro F1 4/5; per label F1 1, 1, 0 -> macro 2/3;
// one of two rows exact.
func TestMultiLabelMetrics(t *testing.T) {
	pred := []bool{true, false, true, false, true, false}
	label := []bool{true, false, false, false, true, false}
	m := MultiLabelMetrics(pred, label, 3, "eval_")
	want := map[string]float64{"eval_f1_micro": 0.8, "eval_f1_macro": 2.0 / 3, "eval_accuracy": 0.5}
	for k, v := range want {
		if !near6(m[k], v) {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func dataset(name string, labels ...any) *datasets.Dataset {
	d := &datasets.Dataset{Name: name}
	for i, l := range labels {
		d.Records = append(d.Records, datasets.Record{"text": fmt.Sprint(name, i), "label": l})
	}
	return d
}

// TestLabelTargets: problem types inferred as transformers does, label
// names become sorted multi-hot classes, 0/1 vectors and floats are kept,
// and bad labels are errors naming the record.
func TestLabelTargets(t *testing.T) {
	names := dataset("train", []any{"sports", "world"}, []any{}, []any{"business"})
	cfg := DefaultConfig()
	for _, c := range []struct {
		d    *datasets.Dataset
		want string
	}{
		{names, model.MultiLabel},
		{dataset("train", 0.5, 1.0, 4.2), model.Regression},
		{dataset("train", 0.0, 1.0, 2.0), model.SingleLabel},
		{dataset("train", "pos", "neg"), model.SingleLabel},
		{dataset("train", []any{1.0, 0.0}), model.MultiLabel},
	} {
		if p, _ := cfg.problemType(c.d); p != c.want {
			t.Errorf("labels %v: problem type %s, want %s", c.d.Records, p, c.want)
		}
	}
	tr, ev, err := LabelTargets(model.MultiLabel, names, dataset("validation", []any{"world"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tr.Names, []string{"business", "sports", "world"}) || tr.NumLabels != 3 {
		t.Fatalf("names %v (%d)", tr.Names, tr.NumLabels)
	}
	if !slices.Equal(tr.Targets[0], []float32{0, 1, 1}) || !slices.Equal(tr.Targets[1], []float32{0, 0, 0}) || !slices.Equal(ev.Targets[0], []float32{0, 0, 1}) {
		t.Errorf("targets %v eval %v", tr.Targets, ev.Targets)
	}
	tr, _, err = LabelTargets(model.MultiLabel, dataset("train", []any{1.0, 0.0}, []any{true, true}), nil)
	if err != nil || tr.NumLabels != 2 || !slices.Equal(tr.Targets[1], []float32{1, 1}) {
		t.Errorf("0/1 vectors: %v %v", tr, err)
	}
	tr, _, err = LabelTargets(model.Regression, dataset("train", 0.25, "3.5"), nil)
	if err != nil || tr.NumLabels != 1 || tr.Targets[0][0] != 0.25 || tr.Targets[1][0] != 3.5 {
		t.Errorf("regression: %v %v", tr, err)
	}
	for _, c := range []struct {
		tr, ev *datasets.Dataset
		want   string
		p      string
	}{
		{names, dataset("validation", []any{"weather"}), `"weather" does not occur`, model.MultiLabel},
		{dataset("train", []any{1.0, 0.0}, []any{1.0}), nil, "has 1 values", model.MultiLabel},
		{dataset("train", []any{1.0, 2.0}), nil, "not 0 or 1", model.MultiLabel},
		{dataset("train", []any{"a", 1.0}), nil, "not both", model.MultiLabel},
		{dataset("train", []any{0.5}), nil, "one number", model.Regression},
		{dataset("train", map[string]any{"x": 1}), nil, "want a number", model.Regression},
	} {
		_, _, err := LabelTargets(c.p, c.tr, c.ev)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.tr.Records, err, c.want)
		}
	}
	bad := DefaultConfig()
	bad.Model, bad.ProblemType = "m", "ranking"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `problem_type (--problem-type) "ranking"`) {
		t.Errorf("bad problem_type: %v", err)
	}
}

// valued returns n generated reviews labelled for regression (the number
// of sentiment words, plus 0.5) or multi-label (good: a good word;
// bad: a bad word; a text may have both or none).
func valued(n int, seed uint64, multi bool) []map[string]any {
	r := rand.New(rand.NewPCG(seed, 9))
	var out []map[string]any
	for range n {
		words := make([]string, 3+r.IntN(5))
		for i := range words {
			words[i] = filler[r.IntN(len(filler))]
		}
		good, bad := r.IntN(3), r.IntN(2)
		for range good {
			words = slices.Insert(words, r.IntN(len(words)+1), goodWord[r.IntN(3)])
		}
		for range bad {
			words = slices.Insert(words, r.IntN(len(words)+1), badWord[r.IntN(3)])
		}
		var label any = float64(good+bad) + 0.5
		if multi {
			l := []string{}
			if good > 0 {
				l = append(l, "good")
			}
			if bad > 0 {
				l = append(l, "bad")
			}
			label = l
		}
		out = append(out, map[string]any{"text": strings.Join(words, " "), "label": label})
	}
	return out
}

// TestRegressionAndMultiLabelEndToEnd trains a small model from scratch
// for each problem type (inferred from the labels), checks that it beats
// a constant predictor, that config.json records the problem type and
// eval_results.json the metrics, and that the saved model predicts scores
// or label sets.
func TestRegressionAndMultiLabelEndToEnd(t *testing.T) {
	for _, multi := range []bool{false, true} {
		trainRows, evalRows := valued(400, 1, multi), valued(80, 2, multi)
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
		cfg.MaxSteps = 200
		cfg.PerDeviceTrainBatchSize = 16
		cfg.LearningRate = 3e-3
		cfg.WarmupSteps = 10
		cfg.LoggingSteps = 50
		cfg.EvalStrategy = "no"
		cfg.SaveStrategy = "no"
		res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("multi=%v %s %v", multi, res.ProblemType, res.EvalMetrics)
		var saved map[string]any
		b, err := os.ReadFile(filepath.Join(out, "eval_results.json"))
		if err != nil || json.Unmarshal(b, &saved) != nil {
			t.Fatalf("eval_results.json: %v", err)
		}
		cb, _ := os.ReadFile(filepath.Join(out, "config.json"))
		inputs := []Input{{Text: "the movie good great fine"}, {Text: "the movie"}, {Text: "awful film"}}
		clf, err := Load(out, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		preds, err := clf.Predict(inputs, 2)
		clf.Free()
		if err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(preds[0])
		if !multi {
			// a constant predictor's mse is the eval labels' variance
			var ys []float64
			for _, r := range evalRows {
				ys = append(ys, r["label"].(float64))
			}
			mean := 0.0
			for _, y := range ys {
				mean += y / float64(len(ys))
			}
			vr := 0.0
			for _, y := range ys {
				vr += (y - mean) * (y - mean) / float64(len(ys))
			}
			if res.ProblemType != model.Regression || !strings.Contains(string(cb), `"problem_type": "regression"`) {
				t.Errorf("problem type %s, config %s", res.ProblemType, cb)
			}
			if m := res.EvalMetrics["eval_mse"]; m >= vr/2 || res.EvalMetrics["eval_pearson"] < 0.7 || saved["eval_spearmanr"] == nil {
				t.Errorf("mse %.3f (constant predictor %.3f), pearson %.3f, saved %v", m, vr, res.EvalMetrics["eval_pearson"], saved)
			}
			if preds[0].Score == nil || preds[1].Score == nil || *preds[0].Score <= *preds[1].Score || !strings.Contains(string(line), `"score":`) || strings.Contains(string(line), `"label"`) {
				t.Errorf("predictions %s / %v", line, preds[1].Score)
			}
			continue
		}
		if res.ProblemType != model.MultiLabel || !strings.Contains(string(cb), `"problem_type": "multi_label_classification"`) || res.NumLabels != 2 {
			t.Errorf("problem type %s (%d labels), config %s", res.ProblemType, res.NumLabels, cb)
		}
		if res.EvalMetrics["eval_f1_micro"] < 0.9 || res.EvalMetrics["eval_accuracy"] < 0.8 || saved["eval_f1_macro"] == nil {
			t.Errorf("metrics %v, saved %v", res.EvalMetrics, saved)
		}
		if !slices.Equal(preds[0].Labels, []string{"good"}) || len(preds[1].Labels) != 0 || !slices.Equal(preds[2].Labels, []string{"bad"}) || !strings.Contains(string(line), `"labels":["good"]`) {
			t.Errorf("predicted label sets %v %v %v (%s)", preds[0].Labels, preds[1].Labels, preds[2].Labels, line)
		}
		if l, _ := json.Marshal(preds[1]); !strings.Contains(string(l), `"labels":[]`) {
			t.Errorf("an empty label set is not printed: %s", l)
		}
	}
}
