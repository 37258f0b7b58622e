package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/grpo"
	"github.com/rlsuite/rl/shared/cliconf"
)

func grpoCommand(log *zerolog.Logger) *cli.Command {
	def := grpo.DefaultConfig()
	return &cli.Command{
		Name:  "grpo",
		Usage: "Online RL with GRPO (TRL GRPOTrainer): groups of sampled completions per prompt, group-relative advantages, rewards from built-in functions or reward models",
		Description: "Examples:\n" +
			"  rl grpo --model sft/ --reward-funcs builtin:length --dataset prompts.jsonl --output-dir grpo/\n" +
			"  rl grpo --model sft/ --reward-funcs builtin:gsm8k,reward/ --reward-weights 1,0.5 --dataset gsm8k/ --columns question=prompt\n" +
			"Flags take TRL's names (--num-generations or --num_generations); --config reads the same keys from YAML.\n" +
			"Resume with --resume-from-checkpoint last (checkpoints fall where a generation starts).",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := grpo.DefaultConfig()
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
			_, err = grpo.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}
