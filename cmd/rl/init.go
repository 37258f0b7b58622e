package main

import (
	"fmt"
	"path/filepath"
	"strings"

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
			&cli.StringFlag{Name: "preset", Value: "tiny", Usage: strings.Join(model.PresetNames, ", ") + ", or a config.json path"},
			&cli.StringFlag{Name: "tokenizer", Required: true, Usage: "tokenizer directory (its vocabulary sizes the model)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "directory to write the checkpoint into"},
			&cli.Int64Flag{Name: "seed", Value: 42, Usage: "initialisation seed"},
			&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "float32 or bfloat16"},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace a model already in --output"},
		},
		Action: func(c *cli.Context) error {
			dt, err := model.ParamDType(c.String("dtype"))
			if err != nil {
				return err
			}
			// an encoder (tiny-bert, tiny-distilbert, tiny-roberta, tiny-deberta) has no
			// LM head: it is written as a …ForSequenceClassification with
			// transformers' default num_labels 2, for rl classify to fine-tune
			head, preset := model.LMHead, c.String("preset")
			if isEncoderPreset(preset) {
				head = model.ScoreHead
			}
			m, tok, err := checkpoint.NewWithLabels(preset, c.String("tokenizer"), head, 2, dt, device(c), c.Int64("seed"))
			if err != nil {
				return err
			}
			defer m.Free()
			out := c.String("output")
			if err := refuseModelOverwrite(out, c.String("tokenizer"), c.Bool("overwrite")); err != nil {
				return err
			}
			if err := checkpoint.Save(out, m, tok); err != nil {
				return err
			}
			log.Info().Str("model_type", m.Config.ModelType).Int64("parameters", m.NumParams()).Str("output", c.String("output")).Msg("initialised")
			return nil
		},
	}
}

// refuseModelOverwrite refuses an --output that already holds a model or a
// tokenizer, unless overwrite is set; the --tokenizer directory itself is
// fine as long as it holds no model (its tokenizer is written back as is).
func refuseModelOverwrite(out, tokDir string, overwrite bool) error {
	files := checkpoint.ModelFiles(out)
	if len(files) == 0 || overwrite {
		return nil
	}
	if same, _ := sameDir(out, tokDir); same && len(files) == 1 && files[0] == "tokenizer.json" {
		return nil
	}
	return fmt.Errorf("init: --output %s already holds %s: pass --overwrite to replace it, or choose another --output", out, strings.Join(files, ", "))
}

func sameDir(a, b string) (bool, error) {
	pa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	pb, err := filepath.Abs(b)
	if err != nil {
		return false, err
	}
	return filepath.Clean(pa) == filepath.Clean(pb), nil
}

// isEncoderPreset reports a preset (or config.json) of an encoder family.
func isEncoderPreset(init string) bool {
	var cfg *model.Config
	if strings.HasSuffix(init, ".json") {
		cfg, _ = model.ReadConfig(init)
	} else {
		cfg, _ = model.Preset(init, 1<<10)
	}
	return cfg != nil && cfg.Encoder()
}
