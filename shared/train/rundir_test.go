package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/safetensors"
)

// run trains a fresh tiny model with tr's settings (after edit) into dir.
func run(t *testing.T, dir string, edit func(tr *Trainer[lmBatch])) (*Result, error) {
	t.Helper()
	m := tinyLM(t)
	defer m.Free()
	tr := newTrainer(t, dir, m)
	tr.Name = "sft"
	if edit != nil {
		edit(tr)
	}
	return tr.Run(context.Background())
}

func mustRun(t *testing.T, dir string, edit func(tr *Trainer[lmBatch])) *Result {
	t.Helper()
	res, err := run(t, dir, edit)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func names(t *testing.T, paths []string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Base(p))
	}
	return out
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// foreignCheckpoint puts a complete checkpoint of another run (rl dpo)
// into dir as checkpoint-60.
func foreignCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	other := t.TempDir()
	mustRun(t, other, func(tr *Trainer[lmBatch]) { tr.Name = "dpo"; tr.Args.MaxSteps, tr.Args.SaveSteps = 2, 1 })
	ck := filepath.Join(dir, "checkpoint-60")
	if err := os.CopyFS(ck, os.DirFS(filepath.Join(other, "checkpoint-1"))); err != nil {
		t.Fatal(err)
	}
	return ck
}

// TestRotateAndResumeOnlyOwnCheckpoints (issue 11, item 1): another run's
// checkpoint-60 in the output dir makes a new run refuse to start without
// overwrite_output_dir; with it, save_total_limit rotates only the run's
// own checkpoints, and resume "last" takes the run's newest, not
// checkpoint-60.
func TestRotateAndResumeOnlyOwnCheckpoints(t *testing.T) {
	dir := t.TempDir()
	foreign := foreignCheckpoint(t, dir)

	_, err := run(t, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "--overwrite-output-dir") || !strings.Contains(err.Error(), "not this run's") {
		t.Fatalf("run in another run's output dir: err = %v, want a refusal naming --overwrite-output-dir", err)
	}

	mustRun(t, dir, func(tr *Trainer[lmBatch]) {
		tr.Args.OverwriteOutputDir = true
		tr.Args.SaveSteps, tr.Args.SaveTotalLimit = 2, 1
	})
	cks, _ := Checkpoints(dir)
	if got, want := names(t, cks), []string{"checkpoint-8", "checkpoint-60"}; !slices.Equal(got, want) {
		t.Errorf("checkpoints after a run with save_total_limit 1 = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(foreign, "model.safetensors")); err != nil {
		t.Errorf("the other run's checkpoint was touched: %v", err)
	}

	// Resume "last": checkpoint-8 (this run's newest), not checkpoint-60.
	// The run is at max_steps already, so it only re-saves the end.
	res := mustRun(t, dir, func(tr *Trainer[lmBatch]) {
		tr.Args.ResumeFromCheckpoint = "last"
		tr.Args.SaveTotalLimit = 1
	})
	if res.Steps != 8 {
		t.Errorf("resumed run: %d steps, want 8", res.Steps)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	var st State
	json.Unmarshal(b, &st)
	if st.GlobalStep != 8 {
		t.Errorf("resume last: global_step %d, want 8 (checkpoint-8 of this run)", st.GlobalStep)
	}

	// A run whose only checkpoint here is another run's: "last" refuses and
	// names it.
	dir2 := t.TempDir()
	foreignCheckpoint(t, dir2)
	_, err = run(t, dir2, func(tr *Trainer[lmBatch]) { tr.Args.ResumeFromCheckpoint = "last" })
	if err == nil || !strings.Contains(err.Error(), "checkpoint-60 (trainer dpo") {
		t.Errorf("resume last with only another run's checkpoint: err = %v, want a refusal naming checkpoint-60 and trainer dpo", err)
	}
	// And an explicit path to it from another trainer is refused too.
	_, err = run(t, dir2, func(tr *Trainer[lmBatch]) { tr.Args.ResumeFromCheckpoint = filepath.Join(dir2, "checkpoint-60") })
	if err == nil || !strings.Contains(err.Error(), "rl dpo, not of rl sft") {
		t.Errorf("resume an rl dpo checkpoint with rl sft: err = %v, want a refusal", err)
	}
}

// TestOutputDirOfOtherRunRefused: a non-empty output dir of another run (its
// rl_run.json) or of no run at all is refused; rerunning the same run is not.
func TestOutputDirOfOtherRunRefused(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps = 2 })
	mustRun(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps = 3 }) // the same run, trained longer
	_, err := run(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps, tr.Args.LearningRate = 2, 1e-2 })
	if err == nil || !strings.Contains(err.Error(), "holds another run") || !strings.Contains(err.Error(), "--overwrite-output-dir") {
		t.Errorf("other settings in the same output dir: err = %v, want a refusal", err)
	}
	// Resuming "last" with other settings: told whose checkpoints these are.
	_, err = run(t, dir, func(tr *Trainer[lmBatch]) {
		tr.Args.MaxSteps, tr.Args.LearningRate, tr.Args.ResumeFromCheckpoint = 4, 1e-2, "last"
	})
	if err == nil || !strings.Contains(err.Error(), "pass its path to --resume-from-checkpoint") {
		t.Errorf("resume last with other settings: err = %v, want one pointing to --resume-from-checkpoint PATH", err)
	}
	mustRun(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps = 4 }) // still this run's dir
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "notes.txt"), []byte("mine"), 0o644)
	_, err = run(t, junk, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps = 2 })
	if err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("output dir with other files: err = %v, want a refusal naming notes.txt", err)
	}
}

// TestOutputDirIsInputRefused (item 3): an output dir that is, contains or
// lies inside an input is refused, naming the flag, before anything is
// written.
func TestOutputDirIsInputRefused(t *testing.T) {
	root := t.TempDir()
	rm := filepath.Join(root, "ck", "rm")
	os.MkdirAll(rm, 0o755)
	os.WriteFile(filepath.Join(rm, "model.safetensors"), []byte("weights"), 0o644)
	for _, c := range []struct{ out, rel string }{
		{rm, "is the input"}, {filepath.Join(root, "ck"), "contains the input"}, {filepath.Join(rm, "sub"), "is inside the input"},
		{rm + "/", "is the input"},
	} {
		_, err := run(t, c.out, func(tr *Trainer[lmBatch]) {
			tr.Inputs = []Input{{Flag: "model", Path: filepath.Join(root, "elsewhere")}, {Flag: "reward", Path: rm}}
		})
		if err == nil || !strings.Contains(err.Error(), c.rel+" --reward") {
			t.Errorf("output %s: err = %v, want %q --reward", c.out, err, c.rel)
		}
	}
	if got := listDir(t, rm); !slices.Equal(got, []string{"model.safetensors"}) {
		t.Errorf("the input now holds %v", got)
	}
	// A sibling with a common prefix is no conflict.
	if err := CheckInputs(rm+"2", []Input{{Flag: "reward", Path: rm}}); err != nil {
		t.Errorf("sibling output: %v", err)
	}
}

// TestSecondRunLocked (item 4): while a run holds the output dir, another
// is refused with the holder's pid.
func TestSecondRunLocked(t *testing.T) {
	dir := t.TempDir()
	unlock, err := fsutil.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, dir, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("second run: err = %v, want one naming pid %d", err, os.Getpid())
	}
	if _, err := os.Stat(filepath.Join(dir, "metrics.jsonl")); err == nil {
		t.Error("the second run wrote metrics.jsonl")
	}
	unlock()
	mustRun(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps = 1 })
}

// TestIncompleteCheckpointsIgnoredAndCleaned (item 5): a checkpoint-N
// folder without rl_state.json (killed mid-copy, or a save of an older rl
// interrupted) is not listed, and the next run removes it and any orphan
// checkpoint-N.tmp.
func TestIncompleteCheckpointsIgnoredAndCleaned(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps = 4 })
	part := filepath.Join(dir, "checkpoint-13")
	os.MkdirAll(part, 0o755)
	os.WriteFile(filepath.Join(part, "config.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(part, "trainer_state.json"), []byte(`{"global_step": 13, "seed": 42}`), 0o644)
	os.MkdirAll(filepath.Join(dir, "checkpoint-44.tmp"), 0o755)
	cks, _ := Checkpoints(dir)
	if got := names(t, cks); !slices.Equal(got, []string{"checkpoint-4"}) {
		t.Errorf("Checkpoints = %v, want [checkpoint-4]", got)
	}
	mustRun(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps, tr.Args.ResumeFromCheckpoint = 6, "last" })
	for _, n := range []string{"checkpoint-13", "checkpoint-44.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s is still there", n)
		}
	}
	_, err := run(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.ResumeFromCheckpoint = part })
	if err == nil {
		t.Error("resume from an incomplete checkpoint: no error")
	}
}

// TestTrainerStateKeys: trainer_state.json has exactly the fields of
// transformers' TrainerState (TrainerState.load_from_json rejects any
// other), in checkpoints and in the output dir.
func TestTrainerStateKeys(t *testing.T) {
	want := []string{"epoch", "global_step", "max_steps", "logging_steps", "eval_steps", "save_steps", "train_batch_size",
		"num_train_epochs", "num_input_tokens_seen", "total_flos", "log_history", "best_metric", "best_global_step",
		"best_model_checkpoint", "is_local_process_zero", "is_world_process_zero", "is_hyper_param_search", "trial_name",
		"trial_params", "stateful_callbacks"}
	sort.Strings(want)
	dir := t.TempDir()
	mustRun(t, dir, nil)
	for _, p := range []string{filepath.Join(dir, "trainer_state.json"), filepath.Join(dir, "checkpoint-4", "trainer_state.json")} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var got []string
		for k := range m {
			got = append(got, k)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s keys:\n got %v\nwant %v", p, got, want)
		}
		if v, ok := m["stateful_callbacks"].(map[string]any); !ok || v == nil {
			t.Errorf("%s: stateful_callbacks = %v, want an object", p, m["stateful_callbacks"])
		}
	}
	s, err := readRLState(filepath.Join(dir, "checkpoint-4"))
	if err != nil || s == nil || s.Seed != 42 || s.Run.Trainer != "sft" || s.GlobalStep != 4 {
		t.Errorf("rl_state.json = %+v, %v; want seed 42, trainer sft, step 4", s, err)
	}
}

// TestResumeOldCheckpointWithSeed: a checkpoint of an older rl (seed in
// trainer_state.json, no rl_state.json) still resumes from its path.
func TestResumeOldCheckpointWithSeed(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps = 4 })
	ck := filepath.Join(dir, "checkpoint-4")
	os.Remove(filepath.Join(ck, RLStateFile))
	b, _ := os.ReadFile(filepath.Join(ck, "trainer_state.json"))
	var m map[string]any
	json.Unmarshal(b, &m)
	m["seed"] = 42
	b, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(ck, "trainer_state.json"), b, 0o644)
	old := t.TempDir()
	os.CopyFS(filepath.Join(old, "checkpoint-4"), os.DirFS(ck))
	_, err := run(t, old, func(tr *Trainer[lmBatch]) { tr.Args.ResumeFromCheckpoint = "last" })
	if err == nil || !strings.Contains(err.Error(), "older rl") {
		t.Errorf("resume last with only an old checkpoint: err = %v, want one saying to pass its path", err)
	}
	res := mustRun(t, old, func(tr *Trainer[lmBatch]) { tr.Args.ResumeFromCheckpoint = filepath.Join(old, "checkpoint-4") })
	if res.Steps != 8 {
		t.Errorf("steps = %d", res.Steps)
	}
}

// TestResumeValidatesState (item 7): a damaged trainer_state.json or
// optimizer step is an error naming the field, not a panic or nonsense.
func TestResumeValidatesState(t *testing.T) {
	src := t.TempDir()
	mustRun(t, src, func(tr *Trainer[lmBatch]) { tr.Args.MaxSteps = 4 })
	edit := func(t *testing.T, f func(ck string)) string {
		dir := t.TempDir()
		ck := filepath.Join(dir, "checkpoint-4")
		if err := os.CopyFS(ck, os.DirFS(filepath.Join(src, "checkpoint-4"))); err != nil {
			t.Fatal(err)
		}
		f(ck)
		return ck
	}
	setState := func(key string, v any) func(ck string) {
		return func(ck string) {
			p := filepath.Join(ck, "trainer_state.json")
			b, _ := os.ReadFile(p)
			var m map[string]any
			json.Unmarshal(b, &m)
			m[key] = v
			b, _ = json.Marshal(m)
			os.WriteFile(p, b, 0o644)
		}
	}
	cases := []struct {
		name string
		f    func(ck string)
		want string
	}{
		{"negative global_step", setState("global_step", -5), "global_step -5 is negative"},
		{"global_step past max_steps", setState("global_step", 30), "global_step 30 is past this run's 8 steps"},
		{"negative epoch", setState("epoch", -1), "epoch -1"},
		{"negative optimizer step", func(ck string) {
			p := filepath.Join(ck, "optimizer.safetensors")
			f, err := safetensors.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f.Metadata["step"] = "-3"
			if err := safetensors.WriteFile(p, f); err != nil {
				t.Fatal(err)
			}
		}, "step -3 is negative"},
		{"optimizer step off", func(ck string) {
			p := filepath.Join(ck, "optimizer.safetensors")
			f, _ := safetensors.ReadFile(p)
			f.Metadata["step"] = "7"
			safetensors.WriteFile(p, f)
		}, "optimizer.safetensors is at step 7 but trainer_state.json at global_step 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ck := edit(t, c.f)
			_, err := run(t, filepath.Dir(ck), func(tr *Trainer[lmBatch]) { tr.Args.ResumeFromCheckpoint = ck })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// boundaryTask resumes only at multiples of every (as PPO's updates).
type boundaryTask struct {
	lmTask
	every int
}

func (b boundaryTask) ResumableAt(step int) error {
	if step%b.every != 0 {
		return fmt.Errorf("step %d is not a multiple of %d", step, b.every)
	}
	return nil
}

// TestInterruptSavesAtBoundary (item 6): a task that can resume only at
// some steps gets its Ctrl-C checkpoint at the next such step, which
// resumes; a checkpoint at another step is refused on resume.
func TestInterruptSavesAtBoundary(t *testing.T) {
	dir := t.TempDir()
	m := tinyLM(t)
	tr := newTrainer(t, dir, m)
	tr.Task = boundaryTask{lmTask{m}, 3}
	tr.Args.SaveSteps = 100
	ctx, cancel := context.WithCancel(context.Background())
	tr.StepHook = func(step int) error {
		if step == 4 {
			cancel()
		}
		return nil
	}
	_, err := tr.Run(ctx)
	m.Free()
	if err != ErrInterrupted {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	cks, _ := Checkpoints(dir)
	if got := names(t, cks); !slices.Equal(got, []string{"checkpoint-6"}) {
		t.Fatalf("checkpoints = %v, want [checkpoint-6] (the next boundary)", got)
	}
	m2 := tinyLM(t)
	defer m2.Free()
	tr2 := newTrainer(t, dir, m2)
	tr2.Task = boundaryTask{lmTask{m2}, 3}
	tr2.Args.SaveSteps, tr2.Args.ResumeFromCheckpoint = 100, "last"
	if _, err := tr2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A checkpoint inside an update (as an older rl saved on Ctrl-C) is an
	// error on resume, not a panic.
	m3 := tinyLM(t)
	defer m3.Free()
	tr3 := newTrainer(t, t.TempDir(), m3)
	tr3.Args.SaveSteps, tr3.Args.MaxSteps = 4, 5
	if _, err := tr3.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr3.Task = boundaryTask{lmTask{m3}, 3}
	tr3.Args.ResumeFromCheckpoint = filepath.Join(tr3.Args.OutputDir, "checkpoint-4")
	if _, err := tr3.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not a multiple of 3") {
		t.Errorf("resume inside an update: err = %v", err)
	}
}

// TestResumeLogsSameMeans (item 12): resumed inside a logging window
// (logging_steps 3, checkpoint at step 4), the run logs the same loss and
// metric means as the uninterrupted one.
func TestResumeLogsSameMeans(t *testing.T) {
	edit := func(tr *Trainer[lmBatch]) { tr.Args.LoggingSteps, tr.Args.EvalStrategy = 3, "no" }
	full := t.TempDir()
	mustRun(t, full, edit)
	part := t.TempDir()
	if err := os.CopyFS(filepath.Join(part, "checkpoint-4"), os.DirFS(filepath.Join(full, "checkpoint-4"))); err != nil {
		t.Fatal(err)
	}
	mustRun(t, part, func(tr *Trainer[lmBatch]) { edit(tr); tr.Args.ResumeFromCheckpoint = "last" })
	want, got := logged(t, full), logged(t, part)
	for _, step := range []int{6, 8} {
		for _, k := range []string{"loss", "perplexity"} {
			w, g := want[step][k], got[step][k]
			if w == 0 || math.Abs(g-w) > 1e-9*math.Abs(w) {
				t.Errorf("step %d %s: resumed %.9f, uninterrupted %.9f", step, k, g, w)
			}
		}
	}
}

func logged(t *testing.T, dir string) map[int]map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	out := map[int]map[string]float64{}
	for _, h := range st.LogHistory {
		if _, ok := h["loss"]; ok {
			out[int(h["step"])] = h
		}
	}
	return out
}
