// Package demo runs rl's whole suite on its embedded default task (package
// demo/task): a tokenizer, a tiny base model trained from scratch, SFT, a
// reward model, PPO, DPO, ORPO, KTO, CPO (SimPO), GRPO and RLOO (with the
// learned reward model and with the gold reward) from the same SFT
// checkpoint, the gold metric of every stage on held-out prompts, and a
// comparison report, under one seed or several.
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
	"github.com/rlsuite/rl/cpo"
	"github.com/rlsuite/rl/demo/task"
	"github.com/rlsuite/rl/dpo"
	"github.com/rlsuite/rl/grpo"
	"github.com/rlsuite/rl/kto"
	"github.com/rlsuite/rl/orpo"
	"github.com/rlsuite/rl/ppo"
	"github.com/rlsuite/rl/reward"
	"github.com/rlsuite/rl/rloo"
	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/cliconf"
	"github.com/rlsuite/rl/shared/rewardfn"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Options sizes the demo. The zero value is the full demo (about 4-5
// minutes on 2 quiet cores); Quick is the same training measured on fewer
// samples (the tests).
type Options struct {
	OutputDir string // default "demo-out"
	Quick     bool   // a shortened run (tests)
	Seed      int64  // default 42
	// Seeds runs the whole pipeline under this many seeds, Seed, Seed+1,
	// ..., each in OutputDir/seed-N/ (one SFT per seed feeds every method
	// of that seed), and the comparison gives each stage's mean, std and
	// 95% interval over seeds and paired tests of the gold metric. Default
	// 1: one seed, its stages directly in OutputDir.
	Seeds int
	Only  []string // stages to run (default all): base, sft, reward, ppo, dpo, orpo, kto, cpo, grpo, rloo, grpo_gold, rloo_gold; these always rerun
}

// Stage is one trained model and its gold metric.
type Stage struct {
	Name    string
	Seed    int64
	Dir     string
	Gold    *Gold
	Runtime time.Duration
	// Skipped is true when the stage's run was already finished in Dir
	// with the same configuration (and its inputs were not retrained), so
	// it was not run again.
	Skipped bool
}

// Result lists the stages in order.
type Result struct {
	Stages []Stage
	Report string // path of comparison.md
}

// steps holds the per-stage step counts.
type steps struct {
	base, sft, reward, ppoEpisodes, dpo, orpo, kto, cpo int
	grpo, rloo                                          int // optimizer steps, one generation of 16 each
	baseLines, sftExamples, prefPairs                   int
	evalSamples                                         int
}

func (o Options) steps() steps {
	if o.Quick {
		return steps{base: 120, sft: 60, reward: 60, ppoEpisodes: 32 * 8, dpo: 60, orpo: 60, kto: 60, cpo: 60, grpo: 8, rloo: 8,
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

// Run runs the demo: the pipeline under each seed, then one comparison of
// every stage of every seed in OutputDir/comparison. A stage whose run is
// already finished (compare.Finished) with the same configuration, and
// whose inputs were not retrained, is not rerun: an interrupted sweep
// resumes where it stopped.
func Run(ctx context.Context, o Options, log zerolog.Logger) (*Result, error) {
	if o.OutputDir == "" {
		o.OutputDir = "demo-out"
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.Seeds == 0 {
		o.Seeds = 1
	}
	if o.Seeds < 0 {
		return nil, fmt.Errorf("demo: --seeds %d: give 1 or more", o.Seeds)
	}
	began := time.Now()
	res := &Result{}
	var runs []string
	for i := range o.Seeds {
		seed := o.Seed + int64(i)
		out := o.OutputDir
		if o.Seeds > 1 {
			out = filepath.Join(o.OutputDir, fmt.Sprintf("seed-%d", seed))
		}
		l := log
		if o.Seeds > 1 {
			l = log.With().Int64("seed", seed).Logger()
			l.Info().Int("of", o.Seeds).Str("dir", out).Msg("demo: ========== seed")
		}
		stages, err := runSeed(ctx, o, seed, out, began, l)
		if err != nil {
			return nil, err
		}
		res.Stages = append(res.Stages, stages...)
		for _, name := range Stages {
			if _, err := os.Stat(filepath.Join(out, name, "metrics.jsonl")); err == nil {
				runs = append(runs, filepath.Join(out, name))
			}
		}
	}

	// Comparison.
	cmpDir := filepath.Join(o.OutputDir, "comparison")
	cmp, err := compare.Report(runs, compare.Options{OutputDir: cmpDir})
	if err != nil {
		return nil, err
	}
	rep := filepath.Join(cmpDir, compare.MarkdownFile)
	res.Report = rep
	fmt.Println(cmp.Markdown)
	log.Info().Str("report", rep).Str("html", filepath.Join(cmpDir, compare.HTMLFile)).Str("took", time.Since(began).Round(time.Second).String()).Msg("demo: done")
	return res, nil
}

// runSeed runs the demo's stages under one seed into out.
func runSeed(ctx context.Context, o Options, seed int64, out string, began time.Time, log zerolog.Logger) ([]Stage, error) {
	st := o.steps()
	dir := func(name string) string { return filepath.Join(out, name) }
	want := func(name string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, name) }
	if err := checkOnly(o.Only, dir); err != nil {
		return nil, err
	}

	log.Info().Str("dir", dir("data")).Msg("demo: generating the task's data")
	files, err := task.Write(dir("data"), task.Options{Seed: uint64(seed), BaseLines: st.baseLines, SFTExamples: st.sftExamples, PrefPairs: st.prefPairs})
	if err != nil {
		return nil, err
	}
	evalPrompts, err := readPrompts(files.EvalPrompts)
	if err != nil {
		return nil, err
	}

	// Retrained every time (it is deterministic and quick): a finished
	// stage keeps the copy it saved with its model.
	log.Info().Msg("demo: training a byte-level BPE tokenizer on base.txt")
	tokDir := dir("tokenizer")
	if err := trainTokenizer(files.Base, tokDir); err != nil {
		return nil, err
	}

	var stages []Stage
	ran := map[string]bool{} // stages trained in this call: what starts from them is rerun too
	// stage runs one stage unless it is already finished with the same
	// configuration (and none of its inputs ran again), then measures its
	// gold metric (against ref for kl_to_ref) unless gold is false.
	stage := func(name string, cfg any, run func(raw []byte, l zerolog.Logger) error, gold bool, ref string) error {
		if !want(name) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		log.Info().Str("stage", name).Str("elapsed", time.Since(began).Round(time.Second).String()).Msg("demo: ---------- " + name)
		l := log.With().Str("stage", name).Logger()
		raw, err := cliconf.Dump(cfg)
		if err != nil {
			return err
		}
		s := Stage{Name: name, Seed: seed, Dir: dir(name)}
		if skip, why := skipStage(name, dir(name), raw, ran, len(o.Only) > 0); skip {
			s.Skipped = true
			l.Info().Str("dir", dir(name)).Msg("demo: already finished with this configuration; not rerun")
		} else {
			if _, err := os.Stat(dir(name)); err == nil {
				l.Info().Str("why", why).Msg("demo: (re)running")
			}
			if err := run(raw, l); err != nil {
				return err
			}
			ran[name] = true
		}
		if gold {
			var g *Gold
			if s.Skipped {
				// Kept when it was measured as now (--quick measures fewer
				// samples); else, or when missing or unreadable, measured again.
				if g, _ = readGold(dir(name)); g != nil && g.N != len(evalPrompts)*st.evalSamples {
					g = nil
				}
			}
			if g == nil {
				if g, err = EvalGold(dir(name), evalPrompts, EvalOptions{SamplesPerPrompt: st.evalSamples, Seed: uint64(seed), RefDir: ref}); err != nil {
					return err
				}
			}
			ev := l.Info().Float64("gold_mean", round3(g.Mean)).Float64("well_formed", round3(g.WellFormed))
			if g.KLToRef != nil {
				ev = ev.Float64("kl_to_sft", round3(*g.KLToRef))
			}
			ev.Msg("demo: gold metric on held-out prompts")
			s.Gold = g
			stages = append(stages, s)
		}
		return nil
	}

	// 1. Base model from scratch on plain text.
	{
		c := sft.DefaultConfig()
		c.Init, c.Tokenizer, c.Dataset, c.DatasetFormat = "tiny", tokDir, files.Base, "text"
		c.OutputDir, c.Seed = dir("base"), seed
		c.OverwriteOutputDir = true // the demo owns its output dir: a stage not finished with this configuration is replaced
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength, c.Packing = st.base, 16, 128, true
		c.LearningRate, c.WarmupSteps, c.WeightDecay, c.LRSchedulerType = 2e-3, 20, 0.1, "cosine"
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 20, 100000, 1
		if err := stage("base", c, func(raw []byte, l zerolog.Logger) error { _, err := sft.Run(ctx, c, l, raw); return err }, true, ""); err != nil {
			return nil, err
		}
	}
	// 2. SFT on prompt-completion pairs.
	{
		c := sft.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = dir("base"), files.SFT, dir("sft"), seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.sft, 16, 128
		c.LearningRate, c.WarmupSteps = 5e-4, 10
		c.EvalRatio, c.EvalStrategy, c.EvalSteps, c.EvalOnStart = 0.05, "steps", 50, true
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := stage("sft", c, func(raw []byte, l zerolog.Logger) error { _, err := sft.Run(ctx, c, l, raw); return err }, true, ""); err != nil {
			return nil, err
		}
	}
	sftDir := dir("sft")
	// 3. Reward model from the SFT checkpoint.
	{
		c := reward.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = sftDir, files.Prefs, dir("reward"), seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.reward, 16, 128
		c.LearningRate, c.WarmupSteps = 3e-4, 10
		c.EvalRatio, c.EvalStrategy, c.EvalSteps, c.EvalOnStart = 0.05, "steps", 50, true
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := stage("reward", c, func(raw []byte, l zerolog.Logger) error { _, err := reward.Run(ctx, c, l, raw); return err }, false, ""); err != nil {
			return nil, err
		}
	}
	// 4. PPO with the learned reward model.
	{
		c := ppo.DefaultConfig()
		c.SFTModel, c.Reward, c.Dataset, c.OutputDir, c.Seed = sftDir, dir("reward"), files.Prompts, dir("ppo"), seed
		// rollouts of 32 (16 x 2 accumulated), responses end at eos
		c.TotalEpisodes, c.PerDeviceTrainBatchSize, c.GradientAccumulationSteps, c.NumMiniBatches, c.NumPPOEpochs = st.ppoEpisodes, 16, 2, 2, 2
		c.StopToken = "eos"
		c.OverwriteOutputDir = true
		c.MaxGradNorm = 1 // the demo's learning rate was tuned with clipping (TRL's loop has none)
		// kl_coef 0.2, not TRL's 0.05: at 0.05 (and 0.1) this run reward-hacks the
		// small learned reward model (seed 42, once the base/SFT weights moved in the last
		// digits with session 5's changes, e.g. the chunked LM head: gold 0.173
		// and 0.271 below SFT's 0.295, 73-75% well-formed); at 0.2 gold 0.578, 92%.
		c.ResponseLength, c.Temperature, c.LearningRate, c.KLCoef = 40, 0.7, 1e-4, 0.2
		c.LRSchedulerType, c.MissingEOSPenalty = "constant", ptr(1.0)
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit, c.NumSampleGenerations = 1, 100000, 1, 3
		if err := stage("ppo", c, func(raw []byte, l zerolog.Logger) error { _, err := ppo.Run(ctx, c, l, raw); return err }, true, sftDir); err != nil {
			return nil, err
		}
	}
	// 5. DPO from the same SFT checkpoint.
	{
		c := dpo.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = sftDir, files.Prefs, dir("dpo"), seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.dpo, 16, 128
		c.LearningRate, c.WarmupSteps, c.Beta = 1e-4, 10, 0.1
		c.EvalRatio, c.EvalStrategy, c.EvalSteps = 0.05, "steps", 50
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := stage("dpo", c, func(raw []byte, l zerolog.Logger) error { _, err := dpo.Run(ctx, c, l, raw); return err }, true, sftDir); err != nil {
			return nil, err
		}
	}
	// 6. ORPO from the same SFT checkpoint.
	{
		c := orpo.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = sftDir, files.Prefs, dir("orpo"), seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.orpo, 16, 128
		c.LearningRate, c.WarmupSteps, c.Beta = 2e-4, 10, 0.5
		c.EvalRatio, c.EvalStrategy, c.EvalSteps = 0.05, "steps", 50
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := stage("orpo", c, func(raw []byte, l zerolog.Logger) error { _, err := orpo.Run(ctx, c, l, raw); return err }, true, sftDir); err != nil {
			return nil, err
		}
	}
	// 7. KTO from the same SFT checkpoint, on the preference pairs made
	// unpaired (each pair gives a desirable and an undesirable row, as TRL
	// does), sized as DPO: the same steps, rows per batch and learning rate.
	{
		c := kto.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = sftDir, files.Prefs, dir("kto"), seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.kto, 16, 128
		c.LearningRate, c.WarmupSteps, c.Beta = 1e-4, 10, 0.1
		c.EvalRatio, c.EvalStrategy, c.EvalSteps = 0.05, "steps", 50
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := stage("kto", c, func(raw []byte, l zerolog.Logger) error { _, err := kto.Run(ctx, c, l, raw); return err }, true, sftDir); err != nil {
			return nil, err
		}
	}
	// 8. CPO with SimPO's loss (reference-free, length-averaged, margin
	// gamma; Meng et al. 2024 use beta 2 and gamma/beta 0.5) and CPO's NLL
	// term on the chosen completions, sized as DPO.
	{
		c := cpo.DefaultConfig()
		c.Model, c.Dataset, c.OutputDir, c.Seed = sftDir, files.Prefs, dir("cpo"), seed
		c.OverwriteOutputDir = true
		c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength = st.cpo, 16, 128
		c.LossType, c.Beta, c.SimPOGamma, c.CPOAlpha = "simpo", 2, 1, 1
		c.LearningRate, c.WarmupSteps = 1e-4, 10
		c.EvalRatio, c.EvalStrategy, c.EvalSteps = 0.05, "steps", 50
		c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 10, 100000, 1
		if err := stage("cpo", c, func(raw []byte, l zerolog.Logger) error { _, err := cpo.Run(ctx, c, l, raw); return err }, true, sftDir); err != nil {
			return nil, err
		}
	}
	// 9-12. GRPO and RLOO from the same SFT checkpoint, rewarded by the
	// learned reward model and, separately, by the gold reward itself
	// (builtin:sentiment): generations of 16 (4 prompts x 4 completions),
	// one per optimizer step, sampled as PPO's rollouts (temperature 0.7,
	// 40 tokens, ending at eos).
	for _, rf := range []struct{ suffix, reward string }{{"", dir("reward")}, {"_gold", rewardfn.Prefix + task.RewardName}} {
		{
			c := grpo.DefaultConfig()
			c.Model, c.RewardFuncs, c.Dataset, c.OutputDir, c.Seed = sftDir, []string{rf.reward}, files.Prompts, dir("grpo"+rf.suffix), seed
			c.OverwriteOutputDir = true
			c.NumGenerations, c.PerDeviceTrainBatchSize, c.GradientAccumulationSteps, c.MaxSteps = 4, 16, 1, st.grpo
			c.MaxCompletionLength, c.Temperature, c.LearningRate, c.MaxGradNorm = 40, 0.7, 1e-4, 1
			c.LRSchedulerType, c.WarmupSteps = "constant", 0
			c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 1, 100000, 1
			if err := stage("grpo"+rf.suffix, c, func(raw []byte, l zerolog.Logger) error { _, err := grpo.Run(ctx, c, l, raw); return err }, true, sftDir); err != nil {
				return nil, err
			}
		}
		{
			c := rloo.DefaultConfig()
			c.Model, c.RewardFuncs, c.Dataset, c.OutputDir, c.Seed = sftDir, []string{rf.reward}, files.Prompts, dir("rloo"+rf.suffix), seed
			c.OverwriteOutputDir = true
			c.NumGenerations, c.PerDeviceTrainBatchSize, c.GradientAccumulationSteps, c.MaxSteps = 4, 16, 1, st.rloo
			c.MaxCompletionLength, c.Temperature, c.LearningRate, c.MaxGradNorm = 40, 0.7, 1e-4, 1
			c.LRSchedulerType, c.WarmupSteps = "constant", 0
			c.LoggingSteps, c.SaveSteps, c.SaveTotalLimit = 1, 100000, 1
			if err := stage("rloo"+rf.suffix, c, func(raw []byte, l zerolog.Logger) error { _, err := rloo.Run(ctx, c, l, raw); return err }, true, sftDir); err != nil {
				return nil, err
			}
		}
	}
	return stages, nil
}

// skipStage reports whether stage name need not run again: its run in dir
// is finished with configuration raw (compare.Finished), none of the
// stages it starts from ran in this call (ran), and it was not asked for
// by name (only: --only always reruns the stages it names); why says
// otherwise.
func skipStage(name, dir string, raw []byte, ran map[string]bool, only bool) (skip bool, why string) {
	if only {
		return false, "--only names it"
	}
	for _, n := range stageNeeds[name] {
		if ran[n] {
			return false, "its input stage " + n + " was retrained"
		}
	}
	return compare.Finished(dir, raw)
}

// readGold reads a stage's gold.json; nil when it is missing or unreadable.
func readGold(dir string) (*Gold, error) {
	b, err := os.ReadFile(filepath.Join(dir, "gold.json"))
	if err != nil {
		return nil, err
	}
	var g Gold
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, err
	}
	return &g, nil
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
var stageNeeds = map[string][]string{"base": nil, "sft": {"base"}, "reward": {"sft"}, "ppo": {"sft", "reward"}, "dpo": {"sft"}, "orpo": {"sft"}, "kto": {"sft"}, "cpo": {"sft"},
	"grpo": {"sft", "reward"}, "rloo": {"sft", "reward"}, "grpo_gold": {"sft"}, "rloo_gold": {"sft"}}

// Stages are the demo's stages in order.
var Stages = []string{"base", "sft", "reward", "ppo", "dpo", "orpo", "kto", "cpo", "grpo", "rloo", "grpo_gold", "rloo_gold"}

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
