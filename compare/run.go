// Package compare reports finished training runs side by side: a Markdown
// table and a self-contained HTML page, overlaid metric plots and a bar
// chart of the gold metric; over several seeds, each configuration's mean,
// standard deviation and 95% interval and paired t-tests between them; and
// it runs such sweeps (Sweep), resuming where one stopped.
package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rlsuite/rl/shared/metrics"
)

// Files read from each run directory; every one is optional.
const (
	ConfigFile = "rl_config.yaml"     // the run's configuration (shared/cliconf.Dump)
	StateFile  = "trainer_state.json" // the final trainer state, as transformers writes it
	GoldFile   = "gold.json"          // the gold metric of the final model, written by an evaluator (rl demo)
	RunFile    = "rl_run.json"        // the trainer that owns the directory (shared/train)
)

// Gold is gold.json: the gold metric of a run's final model measured on
// held-out prompts, e.g. {"gold_mean": 0.41, "gold_std": 0.52, "n": 48}.
type Gold struct {
	Mean float64 `json:"gold_mean"`
	Std  float64 `json:"gold_std"`
	N    int     `json:"n"`
	// WellFormed is the fraction of samples the task parses (for rl's
	// demo task: made only of template sentences), when recorded.
	WellFormed *float64 `json:"well_formed,omitempty"`
	// KLToRef is the KL divergence of the policy to its reference measured on
	// its own samples, when the evaluator computed it.
	KLToRef *float64 `json:"kl_to_ref,omitempty"`
	// PromptScores is the gold score of each held-out prompt (the mean over
	// its samples), in the evaluator's prompt order, when recorded: the
	// paired tests pair them across runs of the same seed.
	PromptScores []float64 `json:"prompt_scores,omitempty"`
	// Samples are example generations, kept as written.
	Samples []json.RawMessage `json:"samples,omitempty"`
}

// State is the part of trainer_state.json the report uses.
type State struct {
	GlobalStep         int              `json:"global_step"`
	MaxSteps           int              `json:"max_steps"`
	Epoch              float64          `json:"epoch"`
	NumInputTokensSeen int64            `json:"num_input_tokens_seen"`
	LogHistory         []map[string]any `json:"log_history"`
}

// Run is one run directory as read from disk; a missing file leaves its
// field nil.
type Run struct {
	Dir     string
	Name    string          // the directory's base name, made unique in a report
	Method  string          // sft, reward, dpo, orpo, ppo, ...; "" when it cannot be told
	Trainer string          // rl_run.json's trainer: the method, when the run has one
	Config  map[string]any  // rl_config.yaml
	Entries []metrics.Entry // metrics.jsonl, or trainer_state.json's log_history without it
	State   *State          // trainer_state.json
	Gold    *Gold           // gold.json
	// Runtime is the training wall time: train_runtime when logged, else
	// the time from writing rl_config.yaml to writing trainer_state.json
	// (then RuntimeApprox is true); 0 when unknown.
	Runtime       time.Duration
	RuntimeApprox bool
}

// ErrNotRun is returned by Load for a path that is not a directory.
var ErrNotRun = errors.New("compare: not a run directory")

// Load reads a run directory. Missing files are not errors (the report
// shows "-" for what they would have given); unreadable or malformed ones
// are, naming the file (and line, for metrics.jsonl).
func Load(dir string) (*Run, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s", ErrNotRun, dir)
	}
	r := &Run{Dir: dir, Name: filepath.Base(filepath.Clean(dir))}

	if b, err := readOptional(filepath.Join(dir, ConfigFile)); err != nil {
		return nil, err
	} else if b != nil {
		var cfg map[string]any
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("compare: %s: %w", filepath.Join(dir, ConfigFile), err)
		}
		r.Config = cfg
		if r.Config == nil {
			r.Config = map[string]any{}
		}
	}

	if b, err := readOptional(filepath.Join(dir, RunFile)); err != nil {
		return nil, err
	} else if b != nil {
		var rf struct {
			Trainer string `json:"trainer"`
		}
		if err := json.Unmarshal(b, &rf); err != nil {
			return nil, fmt.Errorf("compare: %s: %w", filepath.Join(dir, RunFile), err)
		}
		r.Trainer = rf.Trainer
	}

	if b, err := readOptional(filepath.Join(dir, StateFile)); err != nil {
		return nil, err
	} else if b != nil {
		var s State
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("compare: %s: %w", filepath.Join(dir, StateFile), err)
		}
		r.State = &s
	}

	if b, err := readOptional(filepath.Join(dir, GoldFile)); err != nil {
		return nil, err
	} else if b != nil {
		var g Gold
		if err := json.Unmarshal(b, &g); err != nil {
			return nil, fmt.Errorf("compare: %s: %w", filepath.Join(dir, GoldFile), err)
		}
		r.Gold = &g
	}

	mpath := filepath.Join(dir, metrics.FileName)
	switch entries, err := metrics.ReadFile(mpath); {
	case err == nil:
		r.Entries = entries
	case errors.Is(err, fs.ErrNotExist):
		if r.State != nil {
			r.Entries = historyEntries(r.State.LogHistory)
		}
	default:
		return nil, fmt.Errorf("compare: %w", err)
	}

	r.Method = inferMethod(r)
	r.Runtime, r.RuntimeApprox = runtimeOf(r)
	return r, nil
}

// Empty reports a run folder with none of a run's files.
func (r *Run) Empty() bool {
	return r.Config == nil && r.State == nil && r.Entries == nil && r.Gold == nil
}

// readOptional returns a file's content, or nil if it does not exist.
func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	return b, nil
}

// historyEntries turns trainer_state.json's log_history into entries,
// keeping the numeric values.
func historyEntries(hist []map[string]any) []metrics.Entry {
	var out []metrics.Entry
	for _, h := range hist {
		step, ok := h["step"].(float64)
		if !ok {
			continue
		}
		e := metrics.Entry{Step: int(step), Values: map[string]float64{}}
		for k, v := range h {
			if f, ok := v.(float64); ok && k != "step" {
				e.Values[k] = f
			}
		}
		out = append(out, e)
	}
	return out
}

// methodKeys tell the method from rl_config.yaml, first match wins: each
// trainer's config has keys the others lack.
var methodKeys = []struct {
	method string
	keys   []string
}{
	{"ppo", []string{"kl_coef", "num_ppo_epochs", "cliprange_value"}},
	{"grpo", []string{"scale_rewards", "importance_sampling_level"}}, // before dpo: GRPO has loss_type too
	{"rloo", []string{"normalize_advantages", "reward_clip_range"}},
	{"reward", []string{"center_rewards_coefficient"}},
	{"kto", []string{"desirable_weight", "undesirable_weight"}},
	{"cpo", []string{"cpo_alpha", "simpo_gamma"}},
	{"dpo", []string{"loss_type", "ref_model", "reference_free", "rpo_alpha", "ref_model_path"}},
	{"orpo", []string{"beta"}}, // ORPO has beta but no loss_type or reference
	{"sft", []string{"packing", "dataset_text_field", "completion_only_loss"}},
}

// metricKeys tell the method from the logged metrics when there is no config.
var metricKeys = []struct {
	method string
	keys   []string
}{
	{"ppo", []string{"objective/kl", "objective/scores"}},
	{"orpo", []string{"log_odds_ratio", "nll_loss", "log_odds_chosen"}},
	{"dpo", []string{"rewards/margins", "logps/chosen"}},
	{"reward", []string{"accuracy", "eval_accuracy", "margin"}},
}

// knownMethods, looked for in the directory name as a last resort.
var knownMethods = []string{"sft", "reward", "dpo", "orpo", "ppo", "kto", "cpo", "grpo", "rloo"}

// inferMethod reads the method from rl_run.json's trainer (every rl run
// has one), else from a "method" config key, else from keys
// only one trainer's config has, else from metric names, else from the
// directory name ("out/dpo-beta0.1" is dpo); "" when none tells.
func inferMethod(r *Run) string {
	if r.Trainer != "" {
		return strings.ToLower(r.Trainer)
	}
	if m, ok := r.Config["method"].(string); ok && m != "" {
		return strings.ToLower(m)
	}
	for _, mk := range methodKeys {
		for _, k := range mk.keys {
			if _, ok := r.Config[k]; ok {
				return mk.method
			}
		}
	}
	have := map[string]bool{}
	for _, e := range r.Entries {
		for k := range e.Values {
			have[strings.TrimPrefix(k, "eval_")] = true
		}
	}
	for _, mk := range metricKeys {
		for _, k := range mk.keys {
			if have[k] {
				return mk.method
			}
		}
	}
	words := strings.FieldsFunc(strings.ToLower(r.Name), func(c rune) bool {
		return !(c >= 'a' && c <= 'z')
	})
	for _, w := range words {
		if slices.Contains(knownMethods, w) {
			return w
		}
	}
	return ""
}

// runtimeOf finds the training wall time: a logged train_runtime (seconds),
// else the span from rl_config.yaml (written when training starts) to
// trainer_state.json (written when it ends).
func runtimeOf(r *Run) (time.Duration, bool) {
	if v, ok := lastValue(r.Entries, "train_runtime"); ok && v > 0 {
		return time.Duration(v * float64(time.Second)), false
	}
	a, err1 := os.Stat(filepath.Join(r.Dir, ConfigFile))
	b, err2 := os.Stat(filepath.Join(r.Dir, StateFile))
	if err1 != nil || err2 != nil {
		return 0, false
	}
	if d := b.ModTime().Sub(a.ModTime()); d > 0 {
		return d, true
	}
	return 0, false
}

// lastValue returns the last finite logged value of a metric.
func lastValue(entries []metrics.Entry, key string) (float64, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if v, ok := entries[i].Values[key]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, true
		}
	}
	return 0, false
}

// bestValue returns the smallest (or, with maximize, the largest) finite
// logged value of a metric.
func bestValue(entries []metrics.Entry, key string, maximize bool) (float64, bool) {
	best, found := 0.0, false
	for _, e := range entries {
		v, ok := e.Values[key]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if !found || maximize && v > best || !maximize && v < best {
			best, found = v, true
		}
	}
	return best, found
}

// number returns a numeric config value.
func (r *Run) number(key string) (float64, bool) {
	switch v := r.Config[key].(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// text returns a non-empty string config value.
func (r *Run) text(key string) (string, bool) {
	s, ok := r.Config[key].(string)
	return s, ok && s != ""
}

// Steps returns the optimiser steps done: global_step, else the last logged step.
func (r *Run) Steps() (int, bool) {
	if r.State != nil && r.State.GlobalStep > 0 {
		return r.State.GlobalStep, true
	}
	if n := len(r.Entries); n > 0 {
		return r.Entries[n-1].Step, true
	}
	return 0, false
}

// TokensPerSecond returns the training throughput: a logged
// train_tokens_per_second or tokens_per_second, else the tokens seen
// (num_input_tokens_seen or the last num_tokens) over Runtime.
func (r *Run) TokensPerSecond() (float64, bool) {
	for _, k := range []string{"train_tokens_per_second", "tokens_per_second"} {
		if v, ok := lastValue(r.Entries, k); ok && v > 0 {
			return v, true
		}
	}
	if r.Runtime <= 0 {
		return 0, false
	}
	tokens := 0.0
	if r.State != nil {
		tokens = float64(r.State.NumInputTokensSeen)
	}
	if v, ok := lastValue(r.Entries, "num_tokens"); ok && tokens == 0 {
		tokens = v
	}
	if tokens <= 0 {
		return 0, false
	}
	return tokens / r.Runtime.Seconds(), true
}
