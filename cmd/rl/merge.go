package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// mergeTolerance is --verify's bound on the largest logit difference,
// relative to 1 + |logit|: float32 rounding of W + BA against (W x) + B(A x).
func mergeTolerance(dt tensor.DType) float64 {
	if dt == tensor.BFloat16 {
		return 5e-2
	}
	return 1e-4
}

func mergeCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "merge",
		Usage: "Merge a LoRA adapter into its base (peft's merge_and_unload) and write the full model",
		Description: "Examples:\n" +
			"  rl merge --model sft-lora/ -o sft-merged/ --verify\n" +
			"  rl merge --model adapter/ --base-model base/ -o merged/\n" +
			"--verify compares the merged model's logits with the adapter model's on sample inputs and fails above the tolerance.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "peft adapter folder (adapter_config.json, adapter_model.safetensors)"},
			&cli.StringFlag{Name: "base-model", Usage: "base model folder (default: the adapter's base_model_name_or_path)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "folder to write the merged model into"},
			&cli.StringFlag{Name: "dtype", Usage: "dtype to merge and save in: float32 or bfloat16 (default: the base's)"},
			&cli.BoolFlag{Name: "verify", Usage: "check that the merged model's logits equal the adapter model's (within 1e-4 relative in float32)"},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace a model already in --output"},
		},
		Action: func(c *cli.Context) (err error) {
			defer tensor.Recover(&err, "merge")
			dir, err := hubFlag(c, "model")
			if err != nil {
				return err
			}
			if !model.IsAdapterDir(dir) {
				return fmt.Errorf("merge: --model %s has no %s: it is not a peft adapter folder", dir, model.AdapterConfigFile)
			}
			var dt tensor.DType
			if s := c.String("dtype"); s != "" {
				if dt, err = model.ParamDType(s); err != nil {
					return fmt.Errorf("merge: --dtype: %w", err)
				}
			}
			out := c.String("output")
			if err := refuseModelOverwrite(out, "", c.Bool("overwrite")); err != nil {
				return fmt.Errorf("merge: %s", strings.TrimPrefix(err.Error(), "init: "))
			}
			base, err := hubFlag(c, "base-model")
			if err != nil {
				return err
			}
			base, err = model.AdapterBase(dir, base)
			if err != nil {
				return err
			}
			m, err := model.Load(dir, model.LoadOptions{BaseModel: base, DType: dt, Device: device(c)})
			if err != nil {
				return err
			}
			defer m.Free()
			// the adapter's tokenizer, else the base's, else none (weights only)
			var tok *tokenizer.Tokenizer
			for _, d := range []string{dir, base} {
				if tokenizer.HasFiles(d) {
					if tok, err = checkpoint.LoadTokenizerFor(m, d, d); err != nil {
						return err
					}
					break
				}
			}
			ids := sampleIDs(m.Config.VocabSize, min(m.Config.MaxPositions, 32))
			var before []float32
			if c.Bool("verify") {
				before = sampleLogits(m, ids)
			}
			if err := m.MergeAdapters(); err != nil {
				return err
			}
			if c.Bool("verify") {
				after := sampleLogits(m, ids)
				worst := 0.0
				for i := range before {
					worst = math.Max(worst, math.Abs(float64(after[i]-before[i]))/(1+math.Abs(float64(before[i]))))
				}
				tol := mergeTolerance(m.DType)
				if worst > tol {
					return fmt.Errorf("merge: --verify: the merged model's logits differ from the adapter model's by %.3g (relative), above %.0e: not writing %s", worst, tol, out)
				}
				log.Info().Float64("max_relative_difference", worst).Float64("tolerance", tol).Msg("verified: merged logits equal the adapter model's")
			}
			if tok != nil {
				err = checkpoint.Save(out, m, tok)
			} else {
				log.Warn().Msg("no tokenizer in the adapter or base folder: writing the weights only")
				err = m.Save(out)
			}
			if err != nil {
				return err
			}
			log.Info().Str("model_type", m.Config.ModelType).Int64("parameters", m.NumParams()).Str("output", out).Msg("merged")
			return nil
		},
	}
}

// sampleIDs are two rows of deterministic pseudo-random token ids.
func sampleIDs(vocab, T int) [][]int64 {
	rows := make([][]int64, 2)
	x := uint64(12345)
	for r := range rows {
		for range T {
			x = x*6364136223846793005 + 1442695040888963407
			rows[r] = append(rows[r], int64((x>>33)%uint64(vocab)))
		}
	}
	return rows
}

// sampleLogits runs m on ids in eval mode.
func sampleLogits(m *model.Model, ids [][]int64) []float32 {
	var out []float32
	tensor.Tidy(func() {
		tensor.NoGrad(func() {
			var flat []int64
			for _, r := range ids {
				flat = append(flat, r...)
			}
			in := &model.Input{IDs: tensor.Int64sOn(flat, m.Device, int64(len(ids)), int64(len(ids[0])))}
			out = m.Forward(in).ToDType(tensor.Float32).Float32s()
		})
	})
	return out
}
