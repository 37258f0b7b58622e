// Package demo runs rl's whole suite on its embedded default task (package
// demo/task): a tokenizer, a tiny base model trained from scratch, SFT, a
// reward model, PPO, DPO and ORPO from the same SFT checkpoint, the gold
// metric of every stage on held-out prompts, and a comparison report.
package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/compare"
	"github.com/rlsuite/rl/demo/task"
	"github.com/rlsuite/rl/dpo"
	"github.com/rlsuite/rl/orpo"
	"github.com/rlsuite/rl/ppo"
	"github.com/rlsuite/rl/reward"
	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/cliconf"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Options sizes the demo. The zero value is the full demo (about 4-5
// minutes on 2 quiet cores); Quick is the same training measured on fewer
// samples (the tests).
type Options struct {
	OutputDir string   // default "demo-out"
	Quick     bool     // a shortened run (tests)
	Seed      int64    // default 42
	Only      []string // stages to run (default all): base, sft, reward, ppo, dpo, orpo
}

// Stage is one trained model and its gold metric.
type Stage struct {
	Name    string
	Dir     string
	Gold    *Gold
	Runtime time.Duration
}

// Result lists the stages in order.
type Result struct {
	Stages []Stage
	Report string // path of comparison.md
}

// steps holds the per-stage step counts.
type steps struct {
	base, sft, reward, ppoEpisodes, dpo, orpo int
	baseLines, sftExamples, prefPairs         int
	evalSamples                               int
}

func (o Options) steps() steps {
	if o.Quick {
		return steps{base: 120, sft: 60, reward: 60, ppoEpisodes: 32 * 8, dpo: 60, orpo: 60,
			baseLines: 8000, sftExamples: 1500, prefPairs: 1500, evalSamples: 1}
	}
	// The full demo trains as the quick one (whose rises the tests check)
	// and measures the gold metric on twice the samples. Longer PPO runs
	// against the small learned reward model drift into reward hacking
	// (malformed text that the reward model likes) unless kl_coef rises.
	s := Options{Quick: true}.steps()
	s.evalSamples = 2
	return s
}

// Run runs the demo.
func Run(ctx context.Context, o Options, log zerolog.Logger) (*Result, error) {
	if o.OutputDir == "" {
		o.OutputDir = "demo-out"
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	st := o.steps()
	out := o.OutputDir
	dir := func(name string) string { return filepath.Join(out, name) }
	want := func(name string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, name) }
	if err := checkOnly(o.Only, dir); err != nil {
		return nil, err
	}
	began := time.Now()

	log.Info().Str("dir", dir("data")).Msg("demo: generating the task's data")
	files, err := task.Write(dir("data"), task.Options{Seed: uint64(o.Seed), BaseLines: st.baseLines, SFTExamples: st.sftExamples, PrefPairs: st.prefPairs})
	if err != nil {
		return nil, err
	}
	evalPrompts, err := readPrompts(files.EvalPrompts)
	if err != nil {
		return nil, err
	}

	log.Info().Msg("demo: training a byte-level BPE tokenizer on base.txt")
	tokDir := dir("tokenizer")
	if err := trainTokenizer(files.Base, tokDir); err != nil {
		return nil, err
	}

	res := &Result{}
	gold := func(name, ref string) error {
		g, err := EvalGold(dir(name), evalPrompts, EvalOptions{SamplesPerPrompt: st.evalSamples, Seed: uint64(o.Seed), RefDir: ref})
		if err != nil {
			return err
		}
		ev := log.Info().Str("stage", name).Float64("gold_mean", round3(g.Mean)).Float64("well_formed", round3(g.WellFormed))
		if g.KLToRef != nil {
			ev = ev.Float64("kl_to_sft", round3(*g.KLToRef))
		}
		ev.Msg("demo: gold metric on held-out prompts")
		res.Stages = append(res.Stages, Stage{Name: name, Dir: dir(name), Gold: g})
		return nil
	}
	stage := func(name string) zerolog.Logger {
		log.Info().Str("stage", name).Str("elapsed", time.Since(began).Round(time.Second).String()).Msg("demo: ---------- " + name)
		return log.With().Str("stage", name).Logger()
	}

	// 1. Base model from scratch on plain text.
	if want("base") {
		l := stage("base")
		c := sft.DefaultConfig()
		c.Init, c.Tokenizer, c.Dataset, c.DatasetFormat = "tiny", tokDir, files.Base, "text"
		c.OutputDir, c.Seed = dir("base"), o.Seed
		c.OverwriteOutputDir = true // the demo owns its output dir: a rerun (another --seed) replaces its stages
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength, c.Packing = st.base, 16, 128, true
		c.LearningRate, c.WarmupSteps, c.WeightDecay, c.LRSchedulerType = 2e-3, 20, 0.1, "cosine"
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 20, 100000, 1
		if err := runStage(ctx, c, func(raw []byte) error { _, err := sft.Run(ctx, c, l, raw); return err }); err != nil {
			return nil, err
		}
		if err := gold("base", ""); err != nil {
			return nil, err
		}
	}
	// 2. SFT on prompt-completion pairs.
	if want("sft") {
		l := stage("sft")
		c := sft.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = dir("base"), files.SFT, dir("sft"), o.Seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.sft, 16, 128
		c.LearningRate, c.WarmupSteps = 5e-4, 10
		c.EvalRatio, c.EvalStrategy, c.EvalSteps, c.EvalOnStart = 0.05, "steps", 50, true
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := runStage(ctx, c, func(raw []byte) error { _, err := sft.Run(ctx, c, l, raw); return err }); err != nil {
			return nil, err
		}
		if err := gold("sft", ""); err != nil {
			return nil, err
		}
	}
	sftDir := dir("sft")
	// 3. Reward model from the SFT checkpoint.
	if want("reward") {
		l := stage("reward")
		c := reward.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = sftDir, files.Prefs, dir("reward"), o.Seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.reward, 16, 128
		c.LearningRate, c.WarmupSteps = 3e-4, 10
		c.EvalRatio, c.EvalStrategy, c.EvalSteps, c.EvalOnStart = 0.05, "steps", 50, true
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := runStage(ctx, c, func(raw []byte) error { _, err := reward.Run(ctx, c, l, raw); return err }); err != nil {
			return nil, err
		}
	}
	// 4. PPO with the learned reward model.
	if want("ppo") {
		l := stage("ppo")
		c := ppo.DefaultConfig()
		c.SFTModel, c.Reward, c.Dataset, c.OutputDir, c.Seed = sftDir, dir("reward"), files.Prompts, dir("ppo"), o.Seed
		// rollouts of 32 (16 x 2 accumulated), responses end at eos
		c.TotalEpisodes, c.PerDeviceTrainBatchSize, c.GradientAccumulationSteps, c.NumMiniBatches, c.NumPPOEpochs = st.ppoEpisodes, 16, 2, 2, 2
		c.StopToken = "eos"
		c.OverwriteOutputDir = true
		c.MaxGradNorm = 1 // the demo's learning rate was tuned with clipping (TRL's loop has none)
		c.ResponseLength, c.Temperature, c.LearningRate, c.KLCoef = 40, 0.7, 1e-4, 0.05
		c.LRSchedulerType, c.MissingEOSPenalty = "constant", ptr(1.0)
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit, c.NumSampleGenerations = 1, 100000, 1, 3
		if err := runStage(ctx, c, func(raw []byte) error { _, err := ppo.Run(ctx, c, l, raw); return err }); err != nil {
			return nil, err
		}
		if err := gold("ppo", sftDir); err != nil {
			return nil, err
		}
	}
	// 5. DPO from the same SFT checkpoint.
	if want("dpo") {
		l := stage("dpo")
		c := dpo.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = sftDir, files.Prefs, dir("dpo"), o.Seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.dpo, 16, 128
		c.LearningRate, c.WarmupSteps, c.Beta = 1e-4, 10, 0.1
		c.EvalRatio, c.EvalStrategy, c.EvalSteps = 0.05, "steps", 50
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := runStage(ctx, c, func(raw []byte) error { _, err := dpo.Run(ctx, c, l, raw); return err }); err != nil {
			return nil, err
		}
		if err := gold("dpo", sftDir); err != nil {
			return nil, err
		}
	}
	// 6. ORPO from the same SFT checkpoint.
	if want("orpo") {
		l := stage("orpo")
		c := orpo.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = sftDir, files.Prefs, dir("orpo"), o.Seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.orpo, 16, 128
		c.LearningRate, c.WarmupSteps, c.Beta = 2e-4, 10, 0.5
		c.EvalRatio, c.EvalStrategy, c.EvalSteps = 0.05, "steps", 50
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := runStage(ctx, c, func(raw []byte) error { _, err := orpo.Run(ctx, c, l, raw); return err }); err != nil {
			return nil, err
		}
		if err := gold("orpo", sftDir); err != nil {
			return nil, err
		}
	}

	// Comparison.
	var runs []string
	for _, name := range []string{"base", "sft", "reward", "ppo", "dpo", "orpo"} {
		if _, err := os.Stat(filepath.Join(dir(name), "metrics.jsonl")); err == nil {
			runs = append(runs, dir(name))
		}
	}
	cmp, err := compare.Report(runs, compare.Options{OutputDir: dir("comparison")})
	if err != nil {
		return nil, err
	}
	rep := filepath.Join(dir("comparison"), compare.MarkdownFile)
	res.Report = rep
	fmt.Println(cmp.Markdown)
	log.Info().Str("report", rep).Str("took", time.Since(began).Round(time.Second).String()).Msg("demo: done")
	return res, nil
}

// runStage dumps the stage's config (for rl_config.yaml) and runs it.
func runStage(ctx context.Context, cfg any, run func(raw []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := cliconf.Dump(cfg)
	if err != nil {
		return err
	}
	return run(raw)
}

func trainTokenizer(corpus, out string) error {
	f, err := os.Open(corpus)
	if err != nil {
		return err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text()+"\n")
	}
	if err := sc.Err(); err != nil {
		return err
	}
	tok, err := tokenizer.Train(slices.Values(lines), tokenizer.TrainOptions{VocabSize: 1024, ModelMaxLength: 512})
	if err != nil {
		return err
	}
	return tok.Save(out)
}

func readPrompts(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var p task.PromptOnly
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			return nil, fmt.Errorf("demo: %s:%d: %w", path, i+1, err)
		}
		out = append(out, p.Prompt)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

func round3(x float64) float64 { return float64(int64(x*1000+0.5*sign(x))) / 1000 }

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

// stageNeeds lists the earlier stages whose outputs each stage starts from.
var stageNeeds = map[string][]string{"base": nil, "sft": {"base"}, "reward": {"sft"}, "ppo": {"sft", "reward"}, "dpo": {"sft"}, "orpo": {"sft"}}

// Stages are the demo's stages in order.
var Stages = []string{"base", "sft", "reward", "ppo", "dpo", "orpo"}

// checkOnly refuses unknown --only stages and stages whose inputs (the
// outputs of earlier stages not rerun) are missing, before anything runs.
func checkOnly(only []string, dir func(string) string) error {
	for _, s := range only {
		needs, ok := stageNeeds[s]
		if !ok {
			return fmt.Errorf("demo: --only %q: no such stage; the stages are %s", s, strings.Join(Stages, ", "))
		}
		for _, n := range needs {
			if slices.Contains(only, n) {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir(n), "config.json")); err != nil {
				return fmt.Errorf("demo: --only %s starts from the %s stage's model in %s, which is not there: run the whole demo first, or add --only %s", s, n, dir(n), n)
			}
		}
	}
	return nil
}
