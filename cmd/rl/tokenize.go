package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/shared/tokenizer"
)

// tokenizerEncodeCommand is `rl tokenizer encode`: the ids of a text as
// transformers' tokenizer(text)["input_ids"] gives them.
func tokenizerEncodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "encode",
		Usage:     "Print the token ids of TEXT (or standard input with -) as JSON, as tokenizer(text) gives them",
		ArgsUsage: "TEXT|-",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tokenizer", Aliases: []string{"model"}, Required: true, Usage: "directory with tokenizer.json, or slow vocab.json+merges.txt or SentencePiece tokenizer.model (a model or tokenizer folder)"},
			&cli.BoolFlag{Name: "no-special-tokens", Usage: "add no special tokens (add_special_tokens=False), e.g. for text a chat template rendered"},
			&cli.BoolFlag{Name: "tokens", Usage: "print each id with its token string, one a line"},
		},
		Action: func(c *cli.Context) error {
			text, err := textArg(c, "tokenizer encode")
			if err != nil {
				return err
			}
			dir, err := hubFlag(c, "tokenizer")
			if err != nil {
				return err
			}
			tok, err := tokenizer.Load(dir)
			if err != nil {
				return err
			}
			ids, err := tok.Encode(text, !c.Bool("no-special-tokens"))
			if err != nil {
				return fmt.Errorf("tokenizer encode: %w", err)
			}
			if c.Bool("tokens") {
				for i, id := range ids {
					s, _ := tok.IDToToken(id)
					fmt.Fprintf(c.App.Writer, "%d\t%d\t%s\n", i, id, strconv.Quote(s))
				}
				return nil
			}
			b, _ := json.Marshal(ids)
			_, err = fmt.Fprintln(c.App.Writer, string(b))
			return err
		},
	}
}

// tokenizerDecodeCommand is `rl tokenizer decode`: the reverse of encode.
func tokenizerDecodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "decode",
		Usage:     "Print the text of token ids (a JSON list, or ids separated by spaces or commas; - reads standard input)",
		ArgsUsage: "IDS|-",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tokenizer", Aliases: []string{"model"}, Required: true, Usage: "directory with tokenizer.json, or slow vocab.json+merges.txt or SentencePiece tokenizer.model (a model or tokenizer folder)"},
			&cli.BoolFlag{Name: "skip-special-tokens", Usage: "leave out special tokens (skip_special_tokens=True)"},
		},
		Action: func(c *cli.Context) error {
			arg, err := textArg(c, "tokenizer decode")
			if err != nil {
				return err
			}
			ids, err := parseIDs(arg)
			if err != nil {
				return fmt.Errorf("tokenizer decode: %w", err)
			}
			dir, err := hubFlag(c, "tokenizer")
			if err != nil {
				return err
			}
			tok, err := tokenizer.Load(dir)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					return fmt.Errorf("tokenizer decode: id %d is outside the vocabulary (0..%d)", id, tok.VocabSize()-1)
				}
			}
			text, err := tok.Decode(ids, c.Bool("skip-special-tokens"))
			if err != nil {
				return fmt.Errorf("tokenizer decode: %w", err)
			}
			_, err = fmt.Fprintln(c.App.Writer, text)
			return err
		},
	}
}

// textArg is the command's one argument, or standard input for "-".
func textArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("%s: give one argument (quote the text), or - to read standard input", what)
	}
	if a := c.Args().First(); a != "-" {
		return a, nil
	}
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return "", fmt.Errorf("%s: read standard input: %w", what, err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// parseIDs reads "[1, 2, 3]", "1 2 3" or "1,2,3".
func parseIDs(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var ids []int
		if err := json.Unmarshal([]byte(s), &ids); err != nil {
			return nil, fmt.Errorf("ids %q: not a JSON list of integers: %w", s, err)
		}
		return ids, nil
	}
	var ids []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("id %q is not an integer", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no ids given")
	}
	return ids, nil
}
