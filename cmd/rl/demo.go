package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/demo"
)

func demoCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "Run the whole suite on rl's embedded default task (tokenizer, base, SFT, reward, PPO, DPO, ORPO, KTO, CPO) and compare the stages",
		Description: "The task is a small generated language of product reviews whose gold metric (sentiment,\n" +
			"computed exactly) the stages should raise: base -> SFT -> PPO / DPO / ORPO / KTO / CPO, measured on held-out prompts.\n" +
			"Everything is written under --output-dir; the comparison is in OUTPUT/comparison/comparison.md and comparison.html.\n" +
			"With --seeds N the pipeline runs under seeds seed..seed+N-1 (OUTPUT/seed-S/), and the comparison gives each stage's\n" +
			"mean, std and 95% interval over seeds and paired t-tests of the gold metric. A stage already finished with the same\n" +
			"configuration is not rerun, so an interrupted run resumes.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output-dir", Aliases: []string{"o"}, Value: "demo-out", Usage: "where every stage's run goes"},
			&cli.BoolFlag{Name: "quick", Usage: "a shortened run (about a third of the steps)"},
			&cli.Int64Flag{Name: "seed", Value: 42, Usage: "seed for data, initialisation and sampling"},
			&cli.IntFlag{Name: "seeds", Value: 1, Usage: "run the pipeline under this many seeds (seed, seed+1, ...) and report statistics over them"},
			&cli.StringSliceFlag{Name: "only", Usage: "run only these stages (base, sft, reward, ppo, dpo, orpo, kto, cpo, grpo, rloo, grpo_gold, rloo_gold); earlier outputs must exist"},
		},
		Action: func(c *cli.Context) error {
			ctx, stop := signalContext(log)
			defer stop()
			_, err := demo.Run(ctx, demo.Options{OutputDir: c.String("output-dir"), Quick: c.Bool("quick"), Seed: c.Int64("seed"), Seeds: c.Int("seeds"), Only: splitList(c.StringSlice("only"))}, *log)
			return err
		},
	}
}
