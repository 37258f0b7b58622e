package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/reward"
	"github.com/rlsuite/rl/shared/cliconf"
)

func rewardCommand(log *zerolog.Logger) *cli.Command {
	def := reward.DefaultConfig()
	return &cli.Command{
		Name:  "reward",
		Usage: "Train a reward model on preference pairs (TRL RewardTrainer): Bradley-Terry loss on the score of the last token",
		Description: "Examples:\n" +
			"  rl reward --model sft/ --dataset pairs.jsonl --eval-ratio 0.1 --eval-strategy steps --output-dir rm/\n" +
			"  rl reward --model sft/ --dataset hh/ --max-length 512 --center-rewards-coefficient 0.01 --num-train-epochs 1\n" +
			"  rl reward --init tiny --tokenizer tok/ --dataset pairs.jsonl --learning-rate 3e-4 --output-dir rm/\n" +
			"Data: chosen and rejected columns (a shared start becomes the prompt), or prompt + chosen + rejected; an\n" +
			"optional numeric margin column is subtracted inside the loss. Pairs longer than --max-length are dropped.\n" +
			"The output is a Hugging Face …ForSequenceClassification checkpoint (num_labels 1) with its tokenizer:\n" +
			"score text with `rl score --model rm/`, or pass it to `rl ppo --reward rm/`.\n" +
			"Flags take TRL's names (--learning-rate or --learning_rate); --config reads the same keys from YAML.",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := reward.DefaultConfig()
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
			_, err = reward.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}
