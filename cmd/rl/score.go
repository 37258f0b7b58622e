package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/reward"
	"github.com/rlsuite/rl/shared/check"
)

func scoreCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "score",
		Usage: "Score completions with a reward model; writes JSONL {prompt, completion, score} or {prompt, chosen_score, rejected_score}",
		Description: "Input is JSONL from --file or standard input, one object a line: {\"prompt\", \"completion\"} scores one\n" +
			"completion; {\"chosen\", \"rejected\"} (with or without \"prompt\") scores both sides of a pair, and a summary\n" +
			"line on stderr gives the pairwise accuracy. Text is encoded as `rl reward` trains: prompt, completion, eos.\n" +
			"An encoder reward model (BERT, RoBERTa, DeBERTa-v2/v3 with one regression label, e.g.\n" +
			"OpenAssistant/reward-model-deberta-v3-large-v2) scores tokenizer(prompt, completion): [CLS] prompt [SEP] completion [SEP].\n" +
			"Examples:\n" +
			"  rl score --model rm/ --file pairs.jsonl > scores.jsonl\n" +
			"  rl generate --model sft/ --file prompts.txt | rl score --model rm/",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "reward model directory (from rl reward, or an encoder reward model such as a DeBERTa-v3 one)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "JSONL input; - or unset for standard input"},
			&cli.IntFlag{Name: "batch-size", Value: 16, Usage: "sequences per forward pass"},
			&cli.IntFlag{Name: "max-length", Value: 0, Usage: "tokens per sequence at most; longer ones keep their end (0: the model's positions)"},
		},
		Action: func(c *cli.Context) error {
			if err := checkFlags(c, map[string]check.Range{"batch-size": check.AtLeast(1), "max-length": check.NonNeg}); err != nil {
				return fmt.Errorf("score: %w", err)
			}
			var r io.Reader
			name := c.String("file")
			switch name {
			case "", "-":
				if name == "" && isatty.IsTerminal(os.Stdin.Fd()) {
					return errors.New("score: no input: give --file or pipe JSONL into standard input")
				}
				r, name = os.Stdin, "stdin"
			default:
				f, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("score: %w", err)
				}
				defer f.Close()
				r = f
			}
			reqs, err := reward.ReadRequests(r, name)
			if err != nil {
				return err
			}
			if len(reqs) == 0 {
				return fmt.Errorf("score: %s holds no records", name)
			}
			dir, err := hubFlag(c, "model")
			if err != nil {
				return err
			}
			s, err := reward.LoadScorer(dir, device(c))
			if err != nil {
				return err
			}
			defer s.Free()
			s.BatchSize = c.Int("batch-size")
			if n := c.Int("max-length"); n > 0 {
				s.MaxLength = n
			}
			scores, err := s.ScoreRequests(reqs)
			if err != nil {
				return err
			}
			out := bufio.NewWriter(os.Stdout)
			defer out.Flush()
			enc := json.NewEncoder(out)
			enc.SetEscapeHTML(false)
			pairs, correct, ties := 0, 0, 0
			for i, q := range reqs {
				var rec any
				if q.Pair {
					rec = struct {
						Prompt        string  `json:"prompt"`
						ChosenScore   float64 `json:"chosen_score"`
						RejectedScore float64 `json:"rejected_score"`
					}{q.Prompt, scores[i][0], scores[i][1]}
					pairs++
					switch a, b := scores[i][0], scores[i][1]; {
					case q.Chosen == q.Rejected || math.Abs(a-b) <= 1e-6*max(1, math.Abs(a), math.Abs(b)):
						ties++ // equal texts, or equal scores up to float rounding (batch padding)
					case a > b:
						correct++
					}
				} else {
					rec = struct {
						Prompt     string  `json:"prompt"`
						Completion string  `json:"completion"`
						Score      float64 `json:"score"`
					}{q.Prompt, q.Completion, scores[i][0]}
				}
				if err := enc.Encode(rec); err != nil {
					return err
				}
			}
			ev := log.Info().Int("records", len(reqs)).Int("truncated", s.Truncated)
			if pairs > 0 {
				// TRL's accuracy counts chosen > rejected; ties are counted apart
				// (they are neither right nor a preference for rejected).
				ev = ev.Int("pairs", pairs).Float64("accuracy", float64(correct)/float64(pairs)).Int("ties", ties).Int("wrong", pairs-correct-ties)
				if ties > 0 {
					log.Warn().Int("ties", ties).Msg("score: some pairs score the same for chosen and rejected (equal texts, or a model that cannot tell them apart); accuracy counts them as not correct")
				}
			}
			ev.Msg("scored")
			return nil
		},
	}
}
