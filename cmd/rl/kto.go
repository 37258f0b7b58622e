package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/kto"
	"github.com/rlsuite/rl/shared/cliconf"
)

func ktoCommand(log *zerolog.Logger) *cli.Command {
	def := kto.DefaultConfig()
	return &cli.Command{
		Name:  "kto",
		Usage: "Kahneman-Tversky Optimization (TRL KTOTrainer): a policy from completions labelled desirable or undesirable, against a frozen reference",
		Description: "Examples:\n" +
			"  rl kto --model sft/ --dataset rows.jsonl --output-dir kto/   (prompt, completion, label: true/false)\n" +
			"  rl kto --model sft/ --dataset pairs.jsonl   (chosen/rejected pairs are unpaired, as TRL does)\n" +
			"  rl kto --model sft/ --dataset rows.jsonl --desirable-weight 1.33   (more undesirable than desirable rows)\n" +
			"  rl kto --model sft/ --dataset rows.jsonl --loss-type apo_zero_unpaired\n" +
			"Flags take TRL's names (--desirable-weight or --desirable_weight); --config reads the same keys from YAML.",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := kto.DefaultConfig()
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
			_, err = kto.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}
