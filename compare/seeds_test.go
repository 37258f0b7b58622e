package compare

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// fakeTrainer stands in for `rl METHOD --config PATH`: it records the call
// and writes a finished run (the config as rl_config.yaml, trainer_state.json,
// a complete checkpoint, a metrics line) into the config's output_dir.
type fakeTrainer struct {
	t     *testing.T
	calls []string // "seed-S/NAME method"
	cfg   map[string]map[string]any
}

func (f *fakeTrainer) run(_ context.Context, method, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return err
	}
	out := m["output_dir"].(string)
	key := filepath.Base(filepath.Dir(out)) + "/" + filepath.Base(out)
	f.calls = append(f.calls, key+" "+method)
	f.cfg[key] = m
	writeRun(f.t, filepath.Dir(out), filepath.Base(out), map[string]string{
		ConfigFile:      string(b),
		StateFile:       `{"global_step": 2}`,
		"metrics.jsonl": `{"step":2,"loss":0.5}` + "\n",
	})
	writeRun(f.t, out, "checkpoint-2", map[string]string{"rl_state.json": "{}"})
	return nil
}

// TestSweep: each configuration runs once per seed, DPO and ORPO start from
// the SFT run of their own seed (and run after it, though listed before),
// a second sweep runs nothing, and a sweep after one SFT run was lost
// reruns that SFT and what starts from it, in that seed only.
func TestSweep(t *testing.T) {
	root := t.TempDir()
	cfgDir := filepath.Join(root, "cfg")
	writeRun(t, root, "cfg", map[string]string{
		"dpo.yaml":  "model_name_or_path: runs/sft\nbeta: 0.1\nloss_type: [sigmoid]\noutput_dir: runs/dpo\n",
		"orpo.yaml": "method: orpo\nmodel_name_or_path: runs/sft/\nbeta: 0.5\n",
		"sft.yaml":  "model_name_or_path: base/\npacking: false\noutput_dir: runs/sft\n",
	})
	configs := []string{filepath.Join(cfgDir, "dpo.yaml"), filepath.Join(cfgDir, "orpo.yaml"), filepath.Join(cfgDir, "sft.yaml")}
	out := filepath.Join(root, "sweep")
	f := &fakeTrainer{t: t, cfg: map[string]map[string]any{}}
	o := SweepOptions{Configs: configs, Seeds: 2, Seed: 7, OutputDir: out, Run: f.run}
	dirs, err := Sweep(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"seed-7/sft sft", "seed-7/dpo dpo", "seed-7/orpo orpo", "seed-8/sft sft", "seed-8/dpo dpo", "seed-8/orpo orpo"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("runs %v, want %v", f.calls, want)
	}
	if len(dirs) != 6 {
		t.Errorf("dirs %v", dirs)
	}
	for _, k := range []string{"seed-8/dpo", "seed-8/orpo"} {
		if got := f.cfg[k]["model_name_or_path"]; got != filepath.Join(out, "seed-8", "sft") {
			t.Errorf("%s starts from %v, want seed 8's sft", k, got)
		}
	}
	if s := f.cfg["seed-8/dpo"]["seed"]; s != 8 {
		t.Errorf("seed-8/dpo has seed %v", s)
	}
	if _, ok := f.cfg["seed-7/orpo"]["method"]; ok {
		t.Error("the method key reached the trainer")
	}
	if got := f.cfg["seed-7/sft"]["model_name_or_path"]; got != "base/" {
		t.Errorf("sft's own model rewritten to %v", got)
	}

	// Resumed: nothing left to run.
	f.calls = nil
	if _, err := Sweep(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 0 {
		t.Errorf("a finished sweep ran %v again", f.calls)
	}
	// Seed 8's SFT lost its complete marker: it and what starts from it rerun.
	os.Remove(filepath.Join(out, "seed-8", "sft", "checkpoint-2", "rl_state.json"))
	if _, err := Sweep(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if want := []string{"seed-8/sft sft", "seed-8/dpo dpo", "seed-8/orpo orpo"}; !slices.Equal(f.calls, want) {
		t.Errorf("after losing seed 8's sft: ran %v, want %v", f.calls, want)
	}

	// The report groups the sweep's runs by configuration, n = 2 each.
	res, err := Report(dirs, Options{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 3 || len(res.Groups[0].Runs) != 2 {
		t.Errorf("groups %v", groupNames(res.Groups))
	}
	if !strings.Contains(res.Markdown, "| dpo | dpo | train loss (final) | 2 | 0.5 | 0 | [0.5, 0.5] |") {
		t.Errorf("comparison.md lacks dpo's loss over 2 seeds:\n%s", res.Markdown)
	}
}

func TestSweepErrors(t *testing.T) {
	root := t.TempDir()
	writeRun(t, root, "cfg", map[string]string{
		"a.yaml": "learning_rate: 1.0e-04\n",
		"b.yaml": "method: dpo\nmodel_name_or_path: out/c\noutput_dir: out/b\n",
		"c.yaml": "method: dpo\nmodel_name_or_path: out/b\noutput_dir: out/c\n",
	})
	run := func(context.Context, string, string) error { return nil }
	for _, c := range []struct {
		name    string
		configs []string
		seeds   int
		want    string
	}{
		{"no trainer", []string{"a.yaml"}, 1, "method: dpo"},
		{"cycle", []string{"b.yaml", "c.yaml"}, 1, "cycle"},
		{"no seeds", []string{"b.yaml"}, 0, "--seeds 0"},
		{"missing file", []string{"nosuch.yaml"}, 1, "nosuch.yaml"},
	} {
		var paths []string
		for _, p := range c.configs {
			paths = append(paths, filepath.Join(root, "cfg", p))
		}
		_, err := Sweep(context.Background(), SweepOptions{Configs: paths, Seeds: c.seeds, OutputDir: filepath.Join(root, "out"), Run: run})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
}
