package main

import (
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
)

func initCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "Create a randomly initialised model (a base for training from scratch) in Hugging Face layout",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Value: "tiny", Usage: "tiny, tiny-llama, gpt2-small, or a config.json path"},
			&cli.StringFlag{Name: "tokenizer", Required: true, Usage: "tokenizer directory (its vocabulary sizes the model)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "directory to write the checkpoint into"},
			&cli.Int64Flag{Name: "seed", Value: 42, Usage: "initialisation seed"},
			&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "float32 or bfloat16"},
		},
		Action: func(c *cli.Context) error {
			dt, err := model.ParamDType(c.String("dtype"))
			if err != nil {
				return err
			}
			m, tok, err := checkpoint.New(c.String("preset"), c.String("tokenizer"), model.LMHead, dt, device(c), c.Int64("seed"))
			if err != nil {
				return err
			}
			defer m.Free()
			if err := checkpoint.Save(c.String("output"), m, tok); err != nil {
				return err
			}
			log.Info().Str("model_type", m.Config.ModelType).Int64("parameters", m.NumParams()).Str("output", c.String("output")).Msg("initialised")
			return nil
		},
	}
}
