package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/dpo"
	"github.com/rlsuite/rl/shared/cliconf"
)

func dpoCommand(log *zerolog.Logger) *cli.Command {
	def := dpo.DefaultConfig()
	return &cli.Command{
		Name:  "dpo",
		Usage: "Direct Preference Optimization (TRL DPOTrainer): a policy from preference pairs against a frozen reference",
		Description: "Examples:\n" +
			"  rl dpo --model sft/ --dataset pairs.jsonl --output-dir dpo/\n" +
			"  rl dpo --model sft/ --dataset pairs.jsonl --loss-type sigmoid,sft --loss-weights 1,0.2   (RPO)\n" +
			"  rl dpo --model sft/ --dataset pairs.jsonl --loss-type sigmoid --f-divergence-type js_divergence --ld-alpha 0.5 --use-weighting\n" +
			"  rl dpo --model sft/ --dataset pairs.jsonl --precompute-ref-log-probs   (no reference model kept)\n" +
			"  rl dpo --model sft/ --ref-model base/ --dataset pairs.jsonl --sync-ref-model   (TR-DPO)\n" +
			"Flags take TRL's names (--loss-type or --loss_type); --config reads the same keys from YAML.",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := dpo.DefaultConfig()
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
			_, err = dpo.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}
