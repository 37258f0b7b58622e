package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/tokenizer/realtok"
)

// writeSplits writes dir/train.jsonl and dir/validation.jsonl with rows.
func writeSplits(t *testing.T, rows string) string {
	t.Helper()
	dir := t.TempDir()
	for _, split := range []string{"train", "validation"} {
		if err := os.WriteFile(filepath.Join(dir, split+".jsonl"), []byte(rows), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestClassifyProblemTypes: rl classify --problem-type regression (on
// tiny-deberta) and multi_label_classification (on tiny-bert) train two
// steps from scratch and log the problem type's eval metrics in
// metrics.jsonl and eval_results.json (regression: mse, rmse, mae,
// pearson, spearmanr; multi-label: f1_micro, f1_macro, accuracy; never the
// single-label matthews_correlation); config.json records the problem type
// and the family's architecture, and rl predict reads the result (a score,
// a label set). A bad --problem-type is refused naming the flag and the
// values it takes.
func TestClassifyProblemTypes(t *testing.T) {
	tok := realtok.Dir("bert-base-uncased")
	for _, tc := range []struct {
		problem, preset, arch, rows string
		want                        []string
	}{
		{"regression", "tiny-deberta", "DebertaV2ForSequenceClassification",
			`{"text":"a fine film","label":0.75}` + "\n" + `{"text":"awful","label":-1.5}` + "\n" + `{"text":"good good","label":1.0}` + "\n" + `{"text":"bad","label":-1.0}` + "\n",
			[]string{"eval_loss", "eval_mse", "eval_rmse", "eval_mae", "eval_pearson", "eval_spearmanr"}},
		{"multi_label_classification", "tiny-bert", "BertForSequenceClassification",
			`{"text":"a fine funny film","label":["good","funny"]}` + "\n" + `{"text":"awful","label":["bad"]}` + "\n" + `{"text":"good good","label":["good"]}` + "\n" + `{"text":"bad and funny","label":["bad","funny"]}` + "\n",
			[]string{"eval_loss", "eval_f1_micro", "eval_f1_macro", "eval_accuracy"}},
	} {
		out := filepath.Join(t.TempDir(), "out")
		_, err := runApp(t, "classify", "--init", tc.preset, "--tokenizer", tok, "--dataset", writeSplits(t, tc.rows),
			"--problem-type", tc.problem, "--output-dir", out, "--max-steps", "2", "--per-device-train-batch-size", "2",
			"--logging-steps", "1", "--eval-strategy", "steps", "--eval-steps", "2", "--save-strategy", "no")
		if err != nil {
			t.Fatalf("%s: %v", tc.problem, err)
		}
		b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var eval map[string]any
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%s: metrics.jsonl line %q: %v", tc.problem, line, err)
			}
			if _, ok := m["eval_loss"]; ok {
				eval = m
			}
		}
		var results map[string]any
		b, _ = os.ReadFile(filepath.Join(out, "eval_results.json"))
		if err := json.Unmarshal(b, &results); err != nil {
			t.Fatalf("%s: eval_results.json: %v", tc.problem, err)
		}
		for name, got := range map[string]map[string]any{"metrics.jsonl": eval, "eval_results.json": results} {
			for _, k := range tc.want {
				if _, ok := got[k].(float64); !ok {
					t.Errorf("%s: %s has no %s: %v", tc.problem, name, k, got)
				}
			}
			for _, k := range []string{"eval_matthews_correlation", "eval_f1"} {
				if _, ok := got[k]; ok {
					t.Errorf("%s: %s has the single-label %s", tc.problem, name, k)
				}
			}
		}
		var cfg struct {
			ProblemType   string   `json:"problem_type"`
			Architectures []string `json:"architectures"`
		}
		b, _ = os.ReadFile(filepath.Join(out, "config.json"))
		if err := json.Unmarshal(b, &cfg); err != nil || cfg.ProblemType != tc.problem || !slices.Equal(cfg.Architectures, []string{tc.arch}) {
			t.Errorf("%s: config.json problem_type %q architectures %v (%v)", tc.problem, cfg.ProblemType, cfg.Architectures, err)
		}
		// rl predict on the result: a score (regression) or a label set
		texts := filepath.Join(t.TempDir(), "texts.txt")
		os.WriteFile(texts, []byte("a fine film\nawful\n"), 0o644)
		pred, err := runApp(t, "predict", "--model", out, "--file", texts)
		field := map[string]string{"regression": `"score":`, "multi_label_classification": `"labels":`}[tc.problem]
		if lines := strings.Split(strings.TrimSpace(pred), "\n"); err != nil || len(lines) != 2 || !strings.Contains(lines[0], field) {
			t.Errorf("%s: rl predict: %v\n%s\nwant 2 lines with %s", tc.problem, err, pred, field)
		}
	}
	_, err := runApp(t, "classify", "--init", "tiny-bert", "--tokenizer", tok, "--dataset", writeSplits(t, `{"text":"a","label":1}`+"\n"),
		"--problem-type", "ranking", "--output-dir", filepath.Join(t.TempDir(), "out"))
	if err == nil || !strings.Contains(err.Error(), `--problem-type) "ranking"`) || !strings.Contains(err.Error(), "regression") {
		t.Errorf("--problem-type ranking: %v, want an error naming the flag and its values", err)
	}
}
