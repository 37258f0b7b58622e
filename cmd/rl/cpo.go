package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/cpo"
	"github.com/rlsuite/rl/shared/cliconf"
)

func cpoCommand(log *zerolog.Logger) *cli.Command {
	def := cpo.DefaultConfig()
	return &cli.Command{
		Name:  "cpo",
		Usage: "Contrastive Preference Optimization, SimPO and AlphaPO (TRL CPOTrainer): a preference loss plus NLL on the chosen, no reference model",
		Description: "Examples:\n" +
			"  rl cpo --model sft/ --dataset pairs.jsonl --output-dir cpo/ --beta 0.1\n" +
			"  rl cpo --model sft/ --dataset pairs.jsonl --loss-type simpo --cpo-alpha 0 --beta 2 --simpo-gamma 0.5   # SimPO\n" +
			"  rl cpo --model sft/ --dataset pairs.jsonl --loss-type alphapo --alpha 0.25 --beta 2.5   # AlphaPO\n" +
			"Flags take TRL's names (--cpo-alpha or --cpo_alpha); --config reads the same keys from YAML.",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := cpo.DefaultConfig()
			if err := cliconf.Load(c, &cfg); err != nil {
				return err
			}
			raw, err := cliconf.Dump(&cfg)
			if err != nil {
				return err
			}
			if err := resolveHub(c.Context, &cfg); err != nil { // Hub ids -> cache folders; raw keeps the ids
				return err
			}
			ctx, stop := signalContext(log)
			defer stop()
			_, err = cpo.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}
