package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/classify"
	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/cliconf"
)

func classifyCommand(log *zerolog.Logger) *cli.Command {
	def := classify.DefaultConfig()
	return &cli.Command{
		Name:  "classify",
		Usage: "Fine-tune for sequence classification (transformers' Trainer + …ForSequenceClassification): accuracy, F1, MCC",
		Description: "Examples:\n" +
			"  rl classify --model base/ --dataset data/ --output-dir clf/   # data/train.jsonl + validation.jsonl: {text, label}\n" +
			"  rl classify --init tiny --tokenizer tok/ --dataset in_domain_train.tsv --eval-dataset in_domain_dev.tsv \\\n" +
			"      --no-header --column-names source,label,mark,sentence --eval-strategy epoch --metric-for-best-model matthews_correlation\n" +
			"  rl classify --model base/ --dataset train.tsv --eval-dataset dev.tsv \\\n" +
			"      --text-column '#1 String' --text-pair-column '#2 String' --label-column Quality\n" +
			"Flags take Hugging Face's names (--learning-rate or --learning_rate); --config reads the same keys from YAML.\n" +
			"Then: rl predict --model clf/ --file texts.txt",
		Flags: cliconf.Flags(&def),
		Action: func(c *cli.Context) error {
			cfg := classify.DefaultConfig()
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
			_, err = classify.Run(ctx, cfg, *log, raw)
			return err
		},
	}
}

func predictCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "predict",
		Usage: "Classify texts with a sequence classifier; writes JSONL {text, label, probabilities} to stdout",
		Description: "Texts come from --file (one text a line, or JSONL with \"text\" and optional \"text_pair\" fields)\n" +
			"or standard input (the same formats).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "classifier directory (from rl classify)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "input file: text lines or .jsonl; - for stdin"},
			&cli.IntFlag{Name: "batch-size", Value: 32, Usage: "texts per batch"},
			&cli.IntFlag{Name: "max-length", Usage: "truncate to this many tokens (0: the max_length the model was trained with, else 128)"},
		},
		Action: func(c *cli.Context) error {
			if err := checkFlags(c, map[string]check.Range{"batch-size": check.AtLeast(1), "max-length": check.NonNeg}); err != nil {
				return fmt.Errorf("predict: %w", err)
			}
			var r io.Reader
			name := c.String("file")
			switch {
			case name == "-" || name == "" && !isatty.IsTerminal(os.Stdin.Fd()):
				r, name = os.Stdin, "stdin"
			case name != "":
				f, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("predict: %w", err)
				}
				defer f.Close()
				r = f
			default:
				return fmt.Errorf("predict: no input (use --file or standard input)")
			}
			inputs, err := classify.ReadInputs(r, name)
			if err != nil {
				return err
			}
			if len(inputs) == 0 {
				return fmt.Errorf("predict: %s holds no texts", name)
			}
			dir, err := hubFlag(c, "model")
			if err != nil {
				return err
			}
			clf, err := classify.Load(dir, device(c), c.Int("max-length"))
			if err != nil {
				return err
			}
			defer clf.Free()
			start := time.Now()
			preds, err := clf.Predict(inputs, c.Int("batch-size"))
			if err != nil {
				return err
			}
			out := bufio.NewWriter(c.App.Writer) // os.Stdout unless a test sets it
			defer out.Flush()
			enc := json.NewEncoder(out)
			enc.SetEscapeHTML(false)
			for _, p := range preds {
				if err := enc.Encode(p); err != nil {
					return err
				}
			}
			log.Info().Int("texts", len(preds)).Dur("took", time.Since(start).Round(time.Millisecond)).Msg("predicted")
			return nil
		},
	}
}
