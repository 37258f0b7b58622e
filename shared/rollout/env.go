package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// Options say what a run of a group-sampling trainer loads.
type Options struct {
	Name        string            // the trainer ("grpo"): the prefix of errors
	ModelConfig train.ModelConfig // the policy (model_name_or_path, dtype, tokenizer, use_peft)
	Data        datasets.ScriptArguments
	Seed        int64 // new adapters are drawn from it
	// Reference: a frozen copy of the policy is the reference; with
	// use_peft, the policy itself with its adapters disabled (no copy).
	Reference      bool
	DisableDropout bool // the policy trains without dropout
	RewardFuncs    []string
	RewardTimeout  time.Duration   // a cmd: program's bound per answer (0: DefaultRewardTimeout)
	Gen            generate.Config // MaxNewTokens, Temperature, TopK, TopP, RepetitionPenalty
	Chunk          int             // sequences per generate call (0: all)
	Log            zerolog.Logger
}

// Env is what such a run trains and samples with.
type Env struct {
	Policy *model.Model
	Ref    *model.Model // nil without Options.Reference; = Policy when RefIsPolicy
	// RefIsPolicy: the reference is Policy with its LoRA adapters disabled.
	RefIsPolicy bool
	Tok         *tokenizer.Tokenizer
	Rewards     []*Reward
	Sampler     *Sampler
	Prompts     []Prompt
	Pad         int
}

// Load loads the policy (and reference), the reward functions and the
// prompts, and checks that every prompt fits with max_new_tokens.
func Load(o Options) (env *Env, err error) {
	env = &Env{}
	defer func() {
		if err != nil {
			env.Free()
			env = nil
		}
	}()
	mc := o.ModelConfig
	dt, err := model.ParseDType(mc.DType)
	if err != nil {
		return env, fmt.Errorf("%s: %w", o.Name, err)
	}
	opts := mc.ModelLoadOptions(model.LoadOptions{DType: dt})
	if env.Policy, env.Tok, err = checkpoint.Load(mc.Model, opts); err != nil {
		return env, err
	}
	if mc.Tokenizer != "" {
		if env.Tok, err = checkpoint.LoadTokenizerFor(env.Policy, mc.Model, mc.Tokenizer); err != nil {
			return env, err
		}
	}
	env.Policy.NoDropout = o.DisableDropout
	if err := mc.PreparePEFT(env.Policy, o.Seed); err != nil {
		return env, fmt.Errorf("%s: %w", o.Name, err)
	}
	if o.Reference && mc.UsePEFT { // TRL: the adapter disabled, no second copy
		env.Ref, env.RefIsPolicy = env.Policy, true
	} else if o.Reference {
		if env.Ref, err = model.Load(mc.Model, opts.Merged()); err != nil { // an adapter folder: merged, as the policy's is
			return env, fmt.Errorf("%s: reference model: %w", o.Name, err)
		}
		env.Ref.NoDropout = true
		env.Ref.SetRequiresGrad(false)
	}
	if env.Rewards, err = LoadRewards(o.RewardFuncs, o.Name+": reward_funcs", env.Policy, env.Tok, mc.Model, opts); err != nil {
		return env, err
	}
	for _, r := range env.Rewards {
		r.Timeout = o.RewardTimeout
	}
	env.Pad = max(env.Tok.PAD(), 0)
	env.Sampler = &Sampler{Policy: env.Policy, Tok: env.Tok, StopIDs: env.Policy.StopIDs(env.Tok.EOS()), Pad: env.Pad, Chunk: o.Chunk, Gen: o.Gen}
	if env.Prompts, err = ReadPrompts(o, env.Tok, 0); err != nil {
		return env, err
	}
	if len(env.Prompts) == 0 {
		return env, fmt.Errorf("%s: %s: no prompts", o.Name, o.Data.Dataset)
	}
	for _, p := range env.Prompts {
		if len(p.IDs)+o.Gen.MaxNewTokens > env.Policy.Config.MaxPositions {
			return env, fmt.Errorf("%s: a prompt of %d tokens + max_completion_length %d exceeds the model's %d positions (lower --max-completion-length or shorten the prompts)", o.Name, len(p.IDs), o.Gen.MaxNewTokens, env.Policy.Config.MaxPositions)
		}
	}
	return env, nil
}

// ReadPrompts reads and encodes the training prompts of o.Data (the
// first limit records when limit > 0, and at most max_samples).
func ReadPrompts(o Options, tok *tokenizer.Tokenizer, limit int) ([]Prompt, error) {
	opts, err := o.Data.LoadOptions()
	if err != nil {
		return nil, err
	}
	opts.Limit = limit
	d, err := datasets.LoadSplit(o.Data.Dataset, o.Data.TrainSplit, opts)
	if err != nil {
		return nil, err
	}
	ps, err := LoadPrompts(o.Data.Cap(d), tok, 0, o.Log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	return ps, nil
}

// Preview returns the token ids of the first n prompts as Load encodes
// them, and the tokenizer, without loading models (rl data show).
func Preview(o Options, n int) ([][]int, *tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(o.ModelConfig.TokenizerPath())
	if err != nil {
		return nil, nil, err
	}
	o.Log = zerolog.Nop()
	ps, err := ReadPrompts(o, tok, n)
	if err != nil {
		return nil, nil, err
	}
	out := make([][]int, len(ps))
	for i, p := range ps {
		out[i] = p.IDs
	}
	return out, tok, nil
}

// Free frees the models.
func (e *Env) Free() {
	if e == nil {
		return
	}
	ms := []*model.Model{e.Policy, e.Ref}
	if e.RefIsPolicy {
		ms = ms[:1]
	}
	for _, m := range ms {
		if m != nil {
			m.Free()
		}
	}
	FreeRewards(e.Rewards)
}

// MaxSteps is the optimizer steps of epochs passes over n prompts, each
// generation drawing unique prompts and serving every micro-batches, with
// gas micro-batches a step. TRL's RepeatSampler drops an epoch's last
// incomplete chunk of prompts.
func MaxSteps(epochs float64, n, unique, every, gas int) int {
	gensPerEpoch := max(1, n/max(unique, 1))
	return max(1, int(math.Ceil(epochs*float64(gensPerEpoch*every)/float64(gas))))
}

// Logged is one row of a log_completions table.
type Logged struct {
	Step       int                `json:"step"`
	Prompt     string             `json:"prompt"`
	Completion string             `json:"completion"`
	Rewards    map[string]float64 `json:"rewards"` // by reward function; none: absent
	Advantage  float64            `json:"advantage"`
}

// LogCompletion builds the log_completions row of a completion.
func LogCompletion(step int, c *Completion, rs []*Reward, rewards []float64, adv float64) Logged {
	l := Logged{Step: step, Prompt: c.Prompt.Text, Completion: c.Text, Rewards: map[string]float64{}, Advantage: adv}
	for k, r := range rs {
		if !math.IsNaN(rewards[k]) {
			l.Rewards[r.Name] = rewards[k]
		}
	}
	return l
}

// WriteCompletions writes rows to dir/completions/step-N.jsonl (TRL's
// log_completions table) and logs the first three; a failure to write is
// a warning.
func WriteCompletions(dir string, step int, rows []Logged, log zerolog.Logger) {
	var buf []byte
	for i, r := range rows {
		b, _ := json.Marshal(r)
		buf = append(append(buf, b...), '\n')
		if i < 3 {
			log.Info().Str("prompt", clip(r.Prompt, 60)).Str("completion", clip(r.Completion, 80)).Float64("advantage", math.Round(r.Advantage*1000)/1000).Msg("completion")
		}
	}
	d := filepath.Join(dir, "completions")
	err := os.MkdirAll(d, 0o755)
	if err == nil {
		err = fsutil.WriteFile(filepath.Join(d, fmt.Sprintf("step-%d.jsonl", step)), buf, 0o644)
	}
	if err != nil {
		log.Warn().Err(err).Msg("log_completions")
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
