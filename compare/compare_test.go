package compare

import (
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rlsuite/rl/shared/metrics"
)

// writeRun makes a run directory under root with the given files.
func writeRun(t *testing.T, root, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fixtures writes five runs: sft, dpo and ppo with every file, one with
// only metrics.jsonl and one empty directory.
func fixtures(t *testing.T) []string {
	root := t.TempDir()
	sft := writeRun(t, root, "sft", map[string]string{
		"rl_config.yaml": "output_dir: out/sft\nlearning_rate: 5.0e-04\nmax_steps: 3\nnum_train_epochs: 3.0\npacking: false\nmax_length: 64\ninit: \"\"\n",
		"metrics.jsonl": `{"step":1,"loss":2.5,"learning_rate":0.0005,"num_tokens":1000}
{"step":2,"loss":1.5,"num_tokens":2000}
{"step":2,"eval_loss":1.7}

{"step":3,"loss":1.8,"num_tokens":3000}
{"step":3,"eval_loss":1.6}
`,
		"trainer_state.json": `{"global_step": 3, "max_steps": 3, "num_input_tokens_seen": 3000, "log_history": []}`,
		"gold.json":          `{"gold_mean": 0.3, "gold_std": 0.5, "n": 48, "samples": [{"prompt": "p", "completion": "c", "score": 1}]}`,
	})
	dpo := writeRun(t, root, "dpo", map[string]string{
		"rl_config.yaml": "learning_rate: 1.0e-05\nbeta: 0.1\nloss_type: [sigmoid, sft]\nmax_steps: -1\nnum_train_epochs: 1.0\n",
		"metrics.jsonl": `{"step":1,"loss":0.69,"learning_rate":1e-05,"rewards/accuracies":0.5,"rewards/chosen":0.01,"rewards/rejected":-0.01}
{"step":2,"loss":0.5,"rewards/accuracies":0.9,"rewards/chosen":0.05,"rewards/rejected":-0.03}
{"step":2,"train_runtime":125,"train_tokens_per_second":321.4}
`,
		"gold.json": `{"gold_mean": 0.62, "gold_std": 0.3, "n": 48}`,
	})
	ppo := writeRun(t, root, "ppo", map[string]string{
		"rl_config.yaml":     "learning_rate: 3.0e-06\nkl_coef: 0.05\nnum_ppo_epochs: 4\ntotal_episodes: 512\nreward_model_path: builtin:sentiment\nmax_steps: 8\n",
		"metrics.jsonl":      `{"step":4,"loss":0.2,"objective/kl":0.5,"objective/scores":0.1,"learning_rate":3e-06}` + "\n" + `{"step":8,"loss":0.1,"objective/kl":1.25,"objective/scores":0.8,"learning_rate":0}` + "\n",
		"trainer_state.json": `{"global_step": 8}`,
		"gold.json":          `{"gold_mean": -0.2, "gold_std": 0.9, "n": 48, "well_formed": 0.25, "kl_to_ref": 2.5}`,
	})
	bare := writeRun(t, root, "bare", map[string]string{
		"metrics.jsonl": `{"step":1,"loss":1.1,"log_odds_ratio":-0.7}` + "\n" + `{"step":2,"loss":0.9,"log_odds_ratio":-0.5}` + "\n",
	})
	empty := writeRun(t, root, "empty", nil)
	// The file times give sft a wall time of 90s (marked approximate).
	base := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(sft, "rl_config.yaml"), base, base); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(sft, "trainer_state.json"), base, base.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	return []string{sft, dpo, ppo, bare, empty}
}

// cells splits the table row of run name into cells keyed by header.
func cells(t *testing.T, md, name string) map[string]string {
	t.Helper()
	var header []string
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		f := strings.Split(strings.Trim(line, "|"), " | ")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if header == nil {
			header = f
			continue
		}
		if f[0] == name {
			if len(f) != len(header) {
				t.Fatalf("row %q has %d cells, header %d", name, len(f), len(header))
			}
			m := map[string]string{}
			for i, h := range header {
				m[h] = f[i]
			}
			return m
		}
	}
	t.Fatalf("no row for %q in\n%s", name, md)
	return nil
}

func TestReport(t *testing.T) {
	dirs := fixtures(t)
	out := filepath.Join(t.TempDir(), "cmp")
	res, err := Report(dirs, Options{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	md := res.Markdown
	t.Logf("comparison.md:\n%s", md)
	if b, err := os.ReadFile(filepath.Join(out, MarkdownFile)); err != nil || string(b) != md {
		t.Errorf("comparison.md on disk differs from Result.Markdown (err %v)", err)
	}

	tests := []struct{ run, col, want string }{
		{"sft", "method", "sft"},
		{"sft", "settings", "learning_rate=0.0005, max_length=64, max_steps=3"},
		{"sft", "steps", "3"},
		{"sft", "train loss", "1.8 (1.5)"},
		{"sft", "eval_loss", "1.6 (1.6)"},
		{"sft", "accuracy", "-"},
		{"sft", "gold (mean ± std, n)", "0.3 ± 0.5 (n=48)"},
		{"sft", "KL to ref", "-"},
		{"sft", "wall time", "~1m30s"},
		{"sft", "tokens/s", "33"},

		{"dpo", "method", "dpo"},
		{"dpo", "settings", "learning_rate=1e-05, beta=0.1, loss_type=sigmoid,sft, num_train_epochs=1"},
		{"dpo", "steps", "2"},
		{"dpo", "train loss", "0.5 (0.5)"},
		{"dpo", "accuracy", "0.9 (0.9)"},
		{"dpo", "KL to ref", "≈0.1"}, // (0.05 - 0.03) / (2 * 0.1)
		{"dpo", "wall time", "2m05s"},
		{"dpo", "tokens/s", "321"},

		{"ppo", "method", "ppo"},
		{"ppo", "settings", "learning_rate=3e-06, kl_coef=0.05, num_ppo_epochs=4, total_episodes=512, reward_model_path=builtin:sentiment, max_steps=8"},
		{"ppo", "objective/scores", "0.8 (0.8)"},
		{"ppo", "well-formed", "0.25"},
		{"sft", "well-formed", "-"},
		{"ppo", "KL to ref", "2.5"}, // gold.json's kl_to_ref before objective/kl
		{"ppo", "gold (mean ± std, n)", "-0.2 ± 0.9 (n=48)"},

		{"bare", "method", "orpo"},
		{"bare", "settings", "-"},
		{"bare", "gold (mean ± std, n)", "-"},
		{"bare", "train loss", "0.9 (0.9)"},
		{"bare", "wall time", "-"},

		{"empty", "method", "-"},
		{"empty", "steps", "-"},
		{"empty", "train loss", "-"},
		{"empty", "tokens/s", "-"},
	}
	for _, tt := range tests {
		if got := cells(t, md, tt.run)[tt.col]; got != tt.want {
			t.Errorf("%s %q = %q, want %q", tt.run, tt.col, got, tt.want)
		}
	}
	if !strings.Contains(md, "Reading guide:") {
		t.Error("no reading guide")
	}

	// Plots: gold.png and the metrics logged by two or more runs.
	var names []string
	for _, f := range res.Files {
		names = append(names, filepath.Base(f))
	}
	for _, want := range []string{MarkdownFile, GoldPlotFile, "loss.png", "learning_rate.png"} {
		if !slices.Contains(names, want) {
			t.Errorf("files %v lack %s", names, want)
		}
	}
	for _, unwanted := range []string{"objective_kl.png", "eval_loss.png", "epoch.png"} {
		if slices.Contains(names, unwanted) {
			t.Errorf("files %v include %s, a metric of one run", names, unwanted)
		}
	}
	for _, f := range res.Files {
		if filepath.Ext(f) != ".png" {
			continue
		}
		if !strings.Contains(md, "("+filepath.Base(f)+")") {
			t.Errorf("comparison.md does not link %s", filepath.Base(f))
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
			t.Errorf("%s: %v, want a real image", f, b)
		}
	}

	// Missing files are reported, not fatal.
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "empty: no rl_config.yaml") }) {
		t.Errorf("warnings %q lack the empty run's missing config", res.Warnings)
	}
}

func TestBadMetricsLine(t *testing.T) {
	dir := writeRun(t, t.TempDir(), "broken", map[string]string{
		"metrics.jsonl": `{"step":1,"loss":1}` + "\n" + `{"step":2,"loss":oops}` + "\n",
	})
	_, err := Report([]string{dir}, Options{OutputDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "metrics.jsonl")+":2") {
		t.Errorf("err = %v, want one naming metrics.jsonl:2", err)
	}
}

func TestBadFiles(t *testing.T) {
	for file, content := range map[string]string{
		"rl_config.yaml":     "learning_rate: [1\n",
		"trainer_state.json": "{",
		"gold.json":          `{"gold_mean": "high"}`,
	} {
		dir := writeRun(t, t.TempDir(), "run", map[string]string{file: content})
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("Load with a bad %s: err = %v, want one naming it", file, err)
		}
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(f); !errors.Is(err, ErrNotRun) {
		t.Errorf("Load(a file) = %v, want ErrNotRun", err)
	}
	if _, err := Report(nil, Options{}); err == nil {
		t.Error("Report with no runs: no error")
	}
}

func TestInferMethod(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		keys   []string
		want   string
	}{
		{"run", map[string]any{"method": "GRPO", "beta": 0.1}, nil, "grpo"},
		{"run", map[string]any{"beta": 0.1, "loss_type": "sigmoid"}, nil, "dpo"},
		{"run", map[string]any{"beta": 0.1}, nil, "orpo"},
		{"run", map[string]any{"kl_coef": 0.05}, nil, "ppo"},
		{"run", map[string]any{"center_rewards_coefficient": nil}, nil, "reward"},
		{"run", map[string]any{"packing": false}, nil, "sft"},
		{"run", nil, []string{"objective/kl"}, "ppo"},
		{"run", nil, []string{"eval_accuracy"}, "reward"},
		{"run", nil, []string{"rewards/margins"}, "dpo"},
		{"out-dpo-beta0.5", map[string]any{"learning_rate": 1e-5}, nil, "dpo"},
		{"run", nil, []string{"loss"}, ""},
		// rl's SFT config has loss_type (chunked_nll) too: rl_run.json's
		// trainer decides ("trainer:" names below set it).
		{"trainer:sft", map[string]any{"loss_type": "chunked_nll", "learning_rate": 2e-3}, nil, "sft"},
	}
	for _, tt := range tests {
		r := &Run{Name: tt.name, Config: tt.config}
		if tr, ok := strings.CutPrefix(tt.name, "trainer:"); ok {
			r.Trainer = tr
		}
		if tt.keys != nil {
			vals := map[string]float64{}
			for _, k := range tt.keys {
				vals[k] = 1
			}
			r.Entries = append(r.Entries, metrics.Entry{Step: 1, Values: vals})
		}
		if got := inferMethod(r); got != tt.want {
			t.Errorf("inferMethod(%s, %v, %v) = %q, want %q", tt.name, tt.config, tt.keys, got, tt.want)
		}
	}
}

func TestUniqueNames(t *testing.T) {
	runs := []*Run{{Dir: "a/dpo", Name: "dpo"}, {Dir: "b/dpo", Name: "dpo"}, {Dir: "a/dpo/", Name: "dpo"}, {Dir: "sft", Name: "sft"}}
	uniqueNames(runs)
	var got []string
	for _, r := range runs {
		got = append(got, r.Name)
	}
	if want := []string{"a/dpo", "b/dpo", "a/dpo#2", "sft"}; !slices.Equal(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
}

// TestReportRefusesNonRuns: folders none of which is a run are refused
// (an empty one among runs is reported with a warning, as above).
func TestReportRefusesNonRuns(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := Report([]string{a, b}, Options{OutputDir: t.TempDir()}); !errors.Is(err, ErrNotRun) || !strings.Contains(err.Error(), "metrics.jsonl") {
		t.Errorf("Report(two empty dirs) = %v, want ErrNotRun naming the files looked for", err)
	}
}
