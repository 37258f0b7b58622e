package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/orpo"
	"github.com/rlsuite/rl/shared/cliconf"
)

func orpoCommand(log *zerolog.Logger) *cli.Command {
	def := orpo.DefaultConfig()
	return &cli.Command{
		Name:  "orpo",
		Usage: "Odds Ratio Preference Optimization (TRL ORPOTrainer): SFT plus an odds-ratio penalty, no reference model",
		Description: "Examples:\n" +
			"  rl orpo --model base/ --dataset pairs.jsonl --output-dir orpo/ --beta 0.1\n" +
			"Flags take TRL's names (--max-length or --max_length); --config reads the same keys from YAML.",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := orpo.DefaultConfig()
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
			_, err = orpo.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}
