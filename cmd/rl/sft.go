package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/cliconf"
)

func sftCommand(log *zerolog.Logger) *cli.Command {
	def := sft.DefaultConfig()
	return &cli.Command{
		Name:  "sft",
		Usage: "Supervised fine-tuning (TRL SFTTrainer): text, prompt-completion or conversations; from a checkpoint or from scratch",
		Description: "Examples:\n" +
			"  rl sft --model base/ --dataset data.jsonl --output-dir sft/\n" +
			"  rl sft --init tiny --tokenizer tok/ --dataset corpus.txt --output-dir base/ --learning-rate 1e-3\n" +
			"Flags take TRL's names (--learning-rate or --learning_rate); --config reads the same keys from YAML.",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := sft.DefaultConfig()
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
			_, err = sft.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}
