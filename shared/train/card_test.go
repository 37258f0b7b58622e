package train

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestReportToTensorBoardAndCard: report_to tensorboard leaves an event
// file under output_dir/runs/<time>_<host>/ with a record per logged step;
// the output gets README.md whose front matter is TRL's (parsed as YAML),
// with the command and the final metrics.
func TestReportToTensorBoardAndCard(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny-dpo")
	m := tinyLM(t)
	defer m.Free()
	tr := newTrainer(t, dir, m)
	tr.Args.ReportTo = []string{"tensorboard"}
	tr.Args.MaxSteps, tr.Args.SaveStrategy, tr.Args.EvalStrategy = 3, "no", "no"
	tr.Name = "dpo"
	tr.Config = []byte("beta: 0.1\n")
	tr.Inputs = []Input{{Flag: "model", Path: "org/tiny@v1"}, {Flag: "dataset", Path: "trl-lib/ultrafeedback_binarized:default"}}
	CardCommand = []string{"/usr/bin/rl", "dpo", "--model", "org/tiny@v1", "--output-dir", dir, "--beta", "0.1 it's"}
	defer func() { CardCommand = os.Args }()
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "runs", "*", "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("event files %q, want one under runs/*/", files)
	}
	b, _ := os.ReadFile(files[0])
	records := 0
	for rest := b; len(rest) >= 16; records++ {
		n := binary.LittleEndian.Uint64(rest[:8])
		rest = rest[16+n:]
	}
	// file_version, args text, 3 logged steps, the final train_* line.
	if records != 6 || !bytes.Contains(b, []byte("brain.Event:2")) || !bytes.Contains(b, []byte("train/loss")) || !bytes.Contains(b, []byte("train/train_runtime")) || !bytes.Contains(b, []byte("beta: 0.1")) {
		t.Errorf("event file: %d records (want 6), or the version, train/loss, train/train_runtime or the config text missing", records)
	}

	card, err := os.ReadFile(filepath.Join(dir, CardFile))
	if err != nil {
		t.Fatal(err)
	}
	s := string(card)
	front, body, ok := strings.Cut(strings.TrimPrefix(s, "---\n"), "\n---\n")
	if !strings.HasPrefix(s, "---\n") || !ok {
		t.Fatalf("no front matter:\n%s", s)
	}
	var meta map[string]any
	if err := yaml.Unmarshal([]byte(front), &meta); err != nil {
		t.Fatalf("front matter is not YAML: %v\n%s", err, front)
	}
	want := map[string]any{"base_model": "org/tiny", "datasets": "trl-lib/ultrafeedback_binarized", "library_name": "transformers", "model_name": "tiny-dpo", "licence": "license",
		"tags": []any{"generated_from_trainer", "dpo", "trl", "rl"}}
	if !strings.Contains(front, "\ntags:\n- generated_from_trainer\n- dpo\n") {
		t.Errorf("tags not written as PyYAML writes them:\n%s", front)
	}
	for k, v := range want {
		if got, _ := yaml.Marshal(meta[k]); string(got) != string(must(yaml.Marshal(v))) {
			t.Errorf("front matter %s = %v, want %v", k, meta[k], v)
		}
	}
	for _, w := range []string{"# Model Card for tiny-dpo", "[org/tiny](https://huggingface.co/org/tiny)", "https://huggingface.co/papers/2305.18290",
		"rl dpo --model org/tiny@v1 --output-dir " + dir + ` --beta '0.1 it'\''s'`, "| train_runtime |", "| loss |"} {
		if !strings.Contains(body, w) {
			t.Errorf("card body lacks %q:\n%s", w, body)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestCardLocalBase: a local base model is not named as base_model (as in
// TRL), but the license of its own card is carried over.
func TestCardLocalBase(t *testing.T) {
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, CardFile), []byte("---\nlicense: apache-2.0\ntags: [x]\n---\n# base\n"), 0o644)
	CardCommand = []string{"rl", "sft", "--model", "it's: #1"}
	defer func() { CardCommand = os.Args }()
	a := DefaultArgs()
	a.OutputDir = filepath.Join(base, "out: #1")
	tr := &Trainer[lmBatch]{Args: a, Name: "sft", Inputs: []Input{{Flag: "model", Path: base}, {Flag: "dataset", Path: filepath.Join(base, "data.jsonl")}}}
	b, err := tr.modelCard(map[string]float64{"train_loss": 1.5})
	if err != nil {
		t.Fatal(err)
	}
	front, _, _ := strings.Cut(strings.TrimPrefix(string(b), "---\n"), "\n---\n")
	var meta map[string]any
	if err := yaml.Unmarshal([]byte(front), &meta); err != nil {
		t.Fatal(err)
	}
	if _, ok := meta["base_model"]; ok {
		t.Errorf("base_model %v for a local folder", meta["base_model"])
	}
	if _, ok := meta["datasets"]; ok {
		t.Errorf("datasets %v for a local file", meta["datasets"])
	}
	if meta["model_name"] != "out: #1" {
		t.Errorf("model_name = %q, want %q (quoted in YAML)", meta["model_name"], "out: #1")
	}
	if meta["license"] != "apache-2.0" {
		t.Errorf("license = %v, want the base card's apache-2.0", meta["license"])
	}
}

func TestReportToValidate(t *testing.T) {
	for _, tc := range []struct {
		report []string
		ok     bool
	}{{nil, true}, {[]string{"none"}, true}, {[]string{"all"}, true}, {[]string{"tensorboard"}, true}, {[]string{"wandb"}, false}, {[]string{"none", "tensorboard"}, false}} {
		a := DefaultArgs()
		a.ReportTo = tc.report
		a.MaxSteps = 1
		if err := a.Validate(); (err == nil) != tc.ok {
			t.Errorf("report_to %v: err = %v, want ok=%v", tc.report, err, tc.ok)
		}
	}
}
