package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/ppo"
	"github.com/rlsuite/rl/shared/cliconf"
)

func ppoCommand(log *zerolog.Logger) *cli.Command {
	def := ppo.DefaultConfig()
	return &cli.Command{
		Name:  "ppo",
		Usage: "Online RLHF with PPO (TRL PPOTrainer): policy from an SFT checkpoint, rewards from reward models, built-in scorers or programs",
		Description: "Examples:\n" +
			"  rl ppo --model sft/ --reward reward/ --dataset prompts.jsonl --output-dir ppo/\n" +
			"  rl ppo --model sft/ --reward builtin:length --dataset prompts.jsonl --total-episodes 2048\n" +
			"  rl ppo --model sft/ --reward-funcs reward/,builtin:length --reward-weights 1,0.5 --dataset prompts.jsonl\n" +
			"logging_steps and save_steps count updates (one rollout batch each), as in TRL.\n" +
			"The policy is saved in --output-dir, the value model in --output-dir/value_model; resume with --resume-from-checkpoint last.",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := ppo.DefaultConfig()
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
			_, err = ppo.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}
