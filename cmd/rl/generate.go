package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tokenizer"
)

func generateCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "generate",
		Usage: "Continue prompts with a causal LM (batched, KV cache); writes JSONL {prompt, completion, finished} to stdout",
		Description: "Prompts come from --prompt (repeatable), --file (one prompt a line, or JSONL with a \"prompt\" field),\n" +
			"or standard input (the same formats). Greedy unless --do-sample.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "checkpoint directory"},
			&cli.StringSliceFlag{Name: "prompt", Aliases: []string{"p"}, Usage: "a prompt (repeatable)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "prompts file: text (one a line) or .jsonl (\"prompt\" field); - for stdin"},
			&cli.IntFlag{Name: "max-new-tokens", Value: 64, Usage: "tokens to generate at most"},
			&cli.BoolFlag{Name: "do-sample", Usage: "sample instead of greedy decoding"},
			&cli.Float64Flag{Name: "temperature", Value: 1.0, Usage: "sampling temperature"},
			&cli.IntFlag{Name: "top-k", Value: 0, Usage: "keep the k most likely tokens when sampling (0: all)"},
			&cli.Float64Flag{Name: "top-p", Value: 1.0, Usage: "nucleus sampling: keep the smallest set with this probability"},
			&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "sampling seed (same seed, same output)"},
			&cli.IntFlag{Name: "batch-size", Value: 16, Usage: "prompts per batch"},
			&cli.BoolFlag{Name: "chat", Usage: "wrap each prompt as a user message with the tokenizer's chat template"},
			&cli.BoolFlag{Name: "text", Usage: "print completions as plain text, one per line, instead of JSONL"},
			&cli.IntFlag{Name: "logprobs", Usage: "with each generated token, print its log-probability and the K most likely tokens (as vLLM's logprobs; raw model distribution, before temperature/top-k/top-p)"},
		},
		Action: func(c *cli.Context) error {
			if err := checkFlags(c, map[string]check.Range{"max-new-tokens": check.NonNeg, "temperature": check.Positive,
				"top-k": check.NonNeg, "top-p": {Min: 0, Max: 1, MinOpen: true}, "batch-size": check.AtLeast(1)}); err != nil {
				return fmt.Errorf("generate: %w", err)
			}
			prompts, err := readPrompts(c)
			if err != nil {
				return err
			}
			if len(prompts) == 0 {
				return fmt.Errorf("generate: no prompts (use --prompt, --file or standard input)")
			}
			dir, err := hubFlag(c, "model")
			if err != nil {
				return err
			}
			m, tok, err := checkpoint.Load(dir, model.LoadOptions{Device: device(c)})
			if err != nil {
				return err
			}
			defer m.Free()
			cfg := generate.Config{
				MaxNewTokens: c.Int("max-new-tokens"), DoSample: c.Bool("do-sample"), Temperature: c.Float64("temperature"),
				TopK: c.Int("top-k"), TopP: c.Float64("top-p"), Seed: c.Uint64("seed"), PadTokenID: max(tok.PAD(), 0),
				Logprobs: c.Int("logprobs"),
			}
			// Every eos id of generation_config.json (else config.json), and the tokenizer's.
			cfg.EOSTokenIDs = m.StopIDs(tok.EOS())
			texts := prompts
			out := bufio.NewWriter(os.Stdout)
			defer out.Flush()
			enc := json.NewEncoder(out)
			bs := c.Int("batch-size")
			seed := cfg.Seed
			start := time.Now()
			newTokens := 0
			for lo := 0; lo < len(texts); lo += bs {
				batch := texts[lo:min(lo+bs, len(texts))]
				ids := make([][]int, len(batch))
				for i, p := range batch {
					if ids[i], err = encodePrompt(tok, p, c.Bool("chat")); err != nil {
						return fmt.Errorf("generate: prompt %d: %w", lo+i+1, err)
					}
					if len(ids[i]) == 0 {
						return fmt.Errorf("generate: prompt %d encodes to no tokens", lo+i+1)
					}
				}
				cfg.Seed = batchSeed(seed, lo/bs)
				res, err := generate.Generate(m, ids, cfg)
				if err != nil {
					return err
				}
				for i, r := range res {
					newTokens += len(r.Tokens)
					text, err := tok.Decode(r.Tokens, true)
					if err != nil {
						return err
					}
					if c.Bool("text") {
						fmt.Fprintln(out, text)
					} else if err := enc.Encode(generated(tok, prompts[lo+i], text, r)); err != nil {
						return err
					}
				}
				out.Flush()
			}
			el := time.Since(start)
			log.Info().Int("prompts", len(texts)).Int("new_tokens", newTokens).Float64("tokens_per_s", float64(newTokens)/el.Seconds()).Msg("generated")
			return nil
		},
	}
}

// generated is one JSONL output row: the completion and, with --logprobs,
// each token's log-probability and top alternatives.
func generated(tok *tokenizer.Tokenizer, prompt, text string, r generate.Result) map[string]any {
	row := map[string]any{"prompt": prompt, "completion": text, "finished": r.Finished}
	if r.Logprobs == nil {
		return row
	}
	str := func(id int) string { s, _ := tok.IDToToken(id); return s }
	var lps []map[string]any
	for _, lp := range r.Logprobs {
		var top []map[string]any
		for _, a := range lp.Top {
			top = append(top, map[string]any{"id": a.ID, "token": str(a.ID), "logprob": a.Logprob})
		}
		lps = append(lps, map[string]any{"id": lp.ID, "token": str(lp.ID), "logprob": lp.Logprob, "top_logprobs": top})
	}
	row["logprobs"] = lps
	return row
}

// batchSeed is the sampling seed of batch k: the first batch uses --seed
// itself, later ones their own stream, so that equal prompts in different
// batches (best-of-n with --batch-size 1) get different samples.
func batchSeed(seed uint64, k int) uint64 { return seed + uint64(k)*0x9e3779b97f4a7c15 }

// encodePrompt returns the ids of a prompt: as tokenizer(prompt), or with
// chat as apply_chat_template([user: prompt], add_generation_prompt=True,
// tokenize=True), which adds no special tokens: the template writes its
// own (one BOS).
func encodePrompt(tok *tokenizer.Tokenizer, prompt string, chat bool) ([]int, error) {
	if !chat {
		return tok.Encode(prompt, true)
	}
	s, err := datasets.ApplyChatTemplate(tok.ChatTemplate(), []datasets.Message{{Role: "user", Content: prompt}}, true, tok.TemplateSpecials())
	if err != nil {
		return nil, err
	}
	return tok.Encode(s, false)
}

// readPrompts gathers prompts from --prompt, --file and standard input.
func readPrompts(c *cli.Context) ([]string, error) {
	prompts := append([]string(nil), c.StringSlice("prompt")...)
	file := c.String("file")
	var r io.Reader
	name := file
	switch {
	case file == "-":
		r, name = os.Stdin, "stdin"
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		defer f.Close()
		r = f
	case len(prompts) == 0 && !isatty.IsTerminal(os.Stdin.Fd()):
		r, name = os.Stdin, "stdin"
	}
	if r == nil {
		return prompts, nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if strings.TrimSpace(s) == "" {
			continue
		}
		if msg := datasets.BadText(s); msg != "" {
			return nil, fmt.Errorf("generate: %s:%d: %s", name, line, msg)
		}
		if strings.HasPrefix(strings.TrimSpace(s), "{") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(s), &rec); err != nil {
				return nil, fmt.Errorf("generate: %s:%d: not valid JSON: %v", name, line, err)
			}
			p, ok := rec["prompt"].(string)
			if !ok {
				return nil, fmt.Errorf("generate: %s:%d: no string \"prompt\" field", name, line)
			}
			prompts = append(prompts, p)
			continue
		}
		prompts = append(prompts, s)
	}
	return prompts, sc.Err()
}
