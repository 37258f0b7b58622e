package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rlsuite/rl/shared/fsutil"
)

// Files rl writes besides Hugging Face's.
const (
	// RLStateFile is rl's own state in each checkpoint (run identity, seed,
	// the partial logging window). It is written last: a checkpoint-N
	// folder without it is incomplete.
	RLStateFile = "rl_state.json"
	// RunFile names the run that owns an output dir.
	RunFile = "rl_run.json"
)

// Input is a path a run reads, by the flag that names it (without dashes,
// e.g. "model", "ref-model", "dataset").
type Input struct {
	Flag, Path string
}

// Identity says which run wrote a checkpoint: checkpoints of other runs in
// the same output dir are neither rotated nor resumed by "last".
type Identity struct {
	Trainer    string `json:"trainer"`
	Model      string `json:"model"`
	ConfigHash string `json:"config_hash"`
}

func (id Identity) String() string {
	return fmt.Sprintf("trainer %s, model %s, config %s", id.Trainer, id.Model, id.ConfigHash)
}

// volatileKeys are the settings a resumed run may change without becoming
// another run: how long it trains, where it writes, how often it logs,
// evaluates and saves.
var volatileKeys = []string{"output_dir", "overwrite_output_dir", "resume_from_checkpoint", "max_steps", "num_train_epochs",
	"total_episodes", "logging_steps", "eval_strategy", "eval_steps", "eval_on_start", "per_device_eval_batch_size",
	"save_strategy", "save_steps", "save_total_limit", "load_best_model_at_end", "metric_for_best_model",
	"greater_is_better", "report_to", "no_cache", "num_sample_generations"}

// identity is the run's identity: trainer name, model and a hash of every
// setting except the volatile ones.
func (t *Trainer[B]) identity() Identity {
	a := t.Args
	a.OutputDir, a.OverwriteOutputDir, a.ResumeFromCheckpoint, a.MaxSteps, a.NumTrainEpochs = "", false, "", 0, 0
	a.LoggingSteps, a.EvalStrategy, a.EvalSteps, a.EvalOnStart, a.PerDeviceEvalBatchSize = 0, "", 0, false, 0
	a.SaveStrategy, a.SaveSteps, a.SaveTotalLimit, a.LoadBestModelAtEnd, a.MetricForBestModel = "", 0, 0, false, ""
	a.GreaterIsBetter, a.ReportTo = nil, nil
	h := sha256.New()
	b, _ := json.Marshal(a)
	h.Write(b)
	if t.Config != nil {
		var m map[string]any
		if err := yaml.Unmarshal(t.Config, &m); err == nil {
			for _, k := range volatileKeys {
				delete(m, k)
			}
			b, _ = json.Marshal(m) // sorted keys
		} else {
			b = t.Config
		}
		h.Write(b)
	}
	name := t.Name
	if name == "" {
		name = "train"
	}
	model := t.Model
	if model != "" && !strings.Contains(model, ":") {
		if abs, err := filepath.Abs(model); err == nil {
			model = abs
		}
	}
	return Identity{Trainer: name, Model: model, ConfigHash: hex.EncodeToString(h.Sum(nil))[:16]}
}

// rlState is rl_state.json: what rl needs to resume exactly that
// transformers' TrainerState has no field for.
type rlState struct {
	Format     int      `json:"format"`
	Run        Identity `json:"run"`
	Seed       int64    `json:"seed"`
	GlobalStep int      `json:"global_step"`
	// Window is the logging window in progress (steps since the last log).
	Window window `json:"logging_window"`
}

type window struct {
	Steps   int                  `json:"steps"`
	LossSum jsonFloat            `json:"loss_sum"`
	Sums    map[string]jsonFloat `json:"metric_sums"`
	Weights map[string]jsonFloat `json:"metric_weights"`
}

// jsonFloat is a float64 that survives JSON when it is NaN or infinite
// (written as a string then).
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return json.Marshal(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return json.Marshal(v)
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	var v float64
	if err := json.Unmarshal(b, &v); err == nil {
		*f = jsonFloat(v)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a number, got %s", b)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a number, got %s", b)
	}
	*f = jsonFloat(v)
	return nil
}

func toJSONFloats(m map[string]float64) map[string]jsonFloat {
	out := make(map[string]jsonFloat, len(m))
	for k, v := range m {
		out[k] = jsonFloat(v)
	}
	return out
}

func fromJSONFloats(m map[string]jsonFloat) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

// readRLState reads dir/rl_state.json; it returns nil, nil when there is
// none (a checkpoint of rl before rl_state.json, or an incomplete one).
func readRLState(dir string) (*rlState, error) {
	b, err := os.ReadFile(filepath.Join(dir, RLStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s rlState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RLStateFile), err)
	}
	return &s, nil
}

// complete reports whether dir is a complete checkpoint: it has
// rl_state.json (written last), or it is a checkpoint of an older rl
// (trainer_state.json with "seed", written last then) with every file.
func complete(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, RLStateFile)); err == nil {
		return true
	}
	b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		return false
	}
	var legacy struct {
		Seed *int64 `json:"seed"`
	}
	if json.Unmarshal(b, &legacy) != nil || legacy.Seed == nil {
		return false
	}
	for _, f := range []string{"config.json", "optimizer.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	_, e1 := os.Stat(filepath.Join(dir, "model.safetensors"))
	_, e2 := os.Stat(filepath.Join(dir, "model.safetensors.index.json"))
	return e1 == nil || e2 == nil
}

// checkpointStep parses checkpoint-N; ok is false for other names
// (checkpoint-N.tmp and .old included).
func checkpointStep(name string) (int, bool) {
	if !strings.HasPrefix(name, "checkpoint-") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "checkpoint-"))
	return n, err == nil && n >= 0
}

// Checkpoints lists the complete checkpoint-N directories in dir by step,
// of every run (see complete).
func Checkpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type ck struct {
		step int
		path string
	}
	var cks []ck
	for _, e := range entries {
		n, ok := checkpointStep(e.Name())
		if !e.IsDir() || !ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if complete(p) {
			cks = append(cks, ck{n, p})
		}
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].step < cks[j].step })
	out := make([]string, len(cks))
	for i, c := range cks {
		out[i] = c.path
	}
	return out, nil
}

// ownCheckpoints lists the complete checkpoints in the output dir that this
// run wrote (same identity), by step; others describes the rest.
func (t *Trainer[B]) ownCheckpoints() (own []string, others []string, err error) {
	cks, err := Checkpoints(t.Args.OutputDir)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cks {
		s, err := readRLState(c)
		switch {
		case err != nil:
			others = append(others, fmt.Sprintf("%s (unreadable %s: %v)", filepath.Base(c), RLStateFile, err))
		case s == nil:
			others = append(others, fmt.Sprintf("%s (written by an older rl, no run identity)", filepath.Base(c)))
		case s.Run != t.id:
			others = append(others, fmt.Sprintf("%s (%s)", filepath.Base(c), s.Run))
		default:
			own = append(own, c)
		}
	}
	return own, others, nil
}

// CheckInputs refuses an output dir that is, contains or lies inside one
// of the run's inputs.
func CheckInputs(out string, inputs []Input) error {
	o, err := canonical(out)
	if err != nil {
		return fmt.Errorf("train: output_dir %s: %w", out, err)
	}
	for _, in := range inputs {
		if in.Path == "" {
			continue
		}
		if _, err := os.Stat(in.Path); err != nil {
			continue // not a path (builtin:NAME) or not there: nothing to overwrite
		}
		p, err := canonical(in.Path)
		if err != nil {
			continue
		}
		rel := ""
		switch {
		case p == o:
			rel = "is"
		case within(p, o):
			rel = "contains"
		case within(o, p):
			rel = "is inside"
		default:
			continue
		}
		return fmt.Errorf("train: --output-dir %s %s the input --%s %s: the run would overwrite it; choose another --output-dir", out, rel, in.Flag, in.Path)
	}
	return nil
}

// canonical is path made absolute with symlinks resolved (of its longest
// existing prefix).
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for p := abs; ; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest), nil
		}
		if filepath.Dir(p) == p {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// within reports whether path lies strictly inside dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// claimOutputDir refuses to start in an output dir that holds another
// run's (or anything else's) files, unless overwrite_output_dir is set.
// It runs under the lock.
func (t *Trainer[B]) claimOutputDir() error {
	a := &t.Args
	entries, err := os.ReadDir(a.OutputDir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != fsutil.LockFileName {
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 && !a.OverwriteOutputDir {
		if err := t.ownsOutputDir(names); err != nil {
			return err
		}
	}
	if len(names) > 0 && a.OverwriteOutputDir {
		t.Log.Warn().Str("output_dir", a.OutputDir).Msg("overwrite_output_dir: writing over what the output dir holds (other runs' checkpoints are left alone)")
	}
	return nil
}

// writeRunFile records this run as the output dir's owner.
func (t *Trainer[B]) writeRunFile() error {
	b, _ := json.MarshalIndent(t.id, "", "  ")
	if err := fsutil.WriteFile(filepath.Join(t.Args.OutputDir, RunFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// ownsOutputDir reports nil when the non-empty output dir is this run's:
// rl_run.json names it, one of its checkpoints is there, or the run
// resumes from a checkpoint inside it.
func (t *Trainer[B]) ownsOutputDir(names []string) error {
	a := &t.Args
	hint := "pass --overwrite-output-dir to write over it, or choose another --output-dir"
	if r := a.ResumeFromCheckpoint; r != "" && !isLast(r) {
		if p, err := canonical(r); err == nil {
			if o, err := canonical(a.OutputDir); err == nil && within(p, o) {
				return nil
			}
		}
	}
	if a.ResumeFromCheckpoint != "" {
		// Resuming "last" from a dir with checkpoints: resolveResume takes
		// this run's newest, or says whose they are.
		for _, n := range names {
			if _, ok := checkpointStep(n); ok {
				return nil
			}
		}
	}
	var owner *Identity
	if b, err := os.ReadFile(filepath.Join(a.OutputDir, RunFile)); err == nil {
		var id Identity
		if json.Unmarshal(b, &id) == nil {
			if id == t.id {
				return nil
			}
			owner = &id
		}
	}
	own, _, err := t.ownCheckpoints()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if len(own) > 0 {
		return nil
	}
	if owner != nil {
		return fmt.Errorf("train: output_dir %s holds another run (%s; this run: %s); %s", a.OutputDir, owner, t.id, hint)
	}
	sort.Strings(names)
	ex := strings.Join(names[:min(3, len(names))], ", ")
	return fmt.Errorf("train: output_dir %s is not empty (%d entries: %s) and is not this run's; %s", a.OutputDir, len(names), ex, hint)
}

func isLast(s string) bool { return s == "last" || s == "latest" || s == "true" }

// cleanOutputDir finishes interrupted checkpoint writes (checkpoint-N.tmp
// and .old) and removes incomplete checkpoint-N folders. It runs under the
// lock, so no other rl run is writing them.
func (t *Trainer[B]) cleanOutputDir() error {
	dir := t.Args.OutputDir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		for _, suf := range []string{fsutil.TmpSuffix, fsutil.OldSuffix} {
			if base := strings.TrimSuffix(name, suf); base != name {
				if _, ok := checkpointStep(base); ok {
					if err := fsutil.RecoverDir(filepath.Join(dir, base)); err != nil {
						return fmt.Errorf("train: %w", err)
					}
					t.Log.Info().Str("dir", filepath.Join(dir, name)).Msg("cleaned up an interrupted checkpoint write")
				}
			}
		}
	}
	entries, err = os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for _, e := range entries {
		if _, ok := checkpointStep(e.Name()); !ok || !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if complete(p) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("train: remove incomplete checkpoint %s: %w", p, err)
		}
		t.Log.Warn().Str("checkpoint", p).Msg("removed an incomplete checkpoint (no " + RLStateFile + ")")
	}
	return nil
}
