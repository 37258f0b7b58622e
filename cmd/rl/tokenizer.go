package main

import (
	"bufio"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/tokenizer"
)

func tokenizerCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "tokenizer",
		Usage: "Train or inspect tokenizers",
		Subcommands: []*cli.Command{{
			Name:      "train",
			Usage:     "Train a byte-level BPE tokenizer (GPT-2 style) on text files and save a Hugging Face tokenizer.json",
			ArgsUsage: "FILE...",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "directory to write tokenizer.json, tokenizer_config.json and special_tokens_map.json into"},
				&cli.IntFlag{Name: "vocab-size", Value: 8192, Usage: "vocabulary size, counting the 256 byte symbols and special tokens"},
				&cli.IntFlag{Name: "min-frequency", Value: 2, Usage: "least count of a pair to merge it"},
				&cli.StringSliceFlag{Name: "special-tokens", Value: cli.NewStringSlice("<|endoftext|>"), Usage: "a special token (repeatable; a comma is part of the token); the first is bos, eos and pad"},
				&cli.IntFlag{Name: "model-max-length", Value: 1024, Usage: "model_max_length written to tokenizer_config.json"},
				&cli.BoolFlag{Name: "overwrite", Usage: "replace a tokenizer already in --output"},
			},
			Action: func(c *cli.Context) error {
				if err := checkFlags(c, map[string]check.Range{"vocab-size": check.AtLeast(1), "min-frequency": check.AtLeast(1), "model-max-length": check.NonNeg}); err != nil {
					return fmt.Errorf("tokenizer train: %w", err)
				}
				files := c.Args().Slice()
				if len(files) == 0 {
					return fmt.Errorf("tokenizer train: give one or more text files")
				}
				out := c.String("output")
				if have := checkpoint.ModelFiles(out); len(have) > 0 && !c.Bool("overwrite") {
					what := "a tokenizer"
					if slices.Contains(have, "config.json") {
						what = "a model, trained with its tokenizer"
					}
					return fmt.Errorf("tokenizer train: --output %s already holds %s (%s): pass --overwrite to replace it, or choose another --output", out, what, strings.Join(have, ", "))
				} else if slices.Contains(have, "config.json") {
					log.Warn().Str("output", out).Msg("replacing the tokenizer of a model: the model will no longer load with it (its " + checkpoint.TokenizerFingerprintFile + " names the old one)")
				}
				for _, f := range files {
					if _, err := os.Stat(f); err != nil {
						return fmt.Errorf("tokenizer train: %w", err)
					}
				}
				start := time.Now()
				var readErr error
				tok, err := tokenizer.Train(lines(files, &readErr), tokenizer.TrainOptions{
					VocabSize: c.Int("vocab-size"), MinFrequency: c.Int("min-frequency"),
					SpecialTokens: c.StringSlice("special-tokens"), ModelMaxLength: c.Int("model-max-length"),
				})
				if readErr != nil {
					return fmt.Errorf("tokenizer train: %w", readErr)
				}
				if err != nil {
					return err
				}
				if err := tok.Save(c.String("output")); err != nil {
					return err
				}
				log.Info().Int("vocab_size", tok.VocabSize()).Str("output", c.String("output")).Dur("took", time.Since(start).Round(time.Millisecond)).Msg("tokenizer trained")
				return nil
			},
		}, tokenizerEncodeCommand(), tokenizerDecodeCommand()},
	}
}

// lines yields the lines of files; a read error stops it and is stored in *err.
func lines(files []string, errp *error) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				*errp = err
				return
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<26)
			for sc.Scan() {
				if !yield(sc.Text() + "\n") {
					f.Close()
					return
				}
			}
			if err := sc.Err(); err != nil {
				*errp = fmt.Errorf("%s: %w", name, err)
			}
			f.Close()
		}
	}
}
