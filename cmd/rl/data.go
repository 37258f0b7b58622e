package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/classify"
	"github.com/rlsuite/rl/cpo"
	"github.com/rlsuite/rl/dpo"
	"github.com/rlsuite/rl/grpo"
	"github.com/rlsuite/rl/kto"
	"github.com/rlsuite/rl/orpo"
	"github.com/rlsuite/rl/ppo"
	"github.com/rlsuite/rl/reward"
	"github.com/rlsuite/rl/rloo"
	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/cliconf"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// dataCommand is `rl data show`: the first examples of a dataset exactly as
// a trainer sees them, through the trainer's own tokenisation code.
func dataCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "Inspect datasets as trainers see them",
		Subcommands: []*cli.Command{{
			Name:  "show",
			Usage: "Print the first examples as a trainer tokenises them: the text, each token id and string, and its label (-100: no loss)",
			Description: "Examples:\n" +
				"  rl data show --trainer sft --model sft/ --dataset chats.jsonl --n 2\n" +
				"  rl data show --trainer dpo --model sft/ --dataset pairs.jsonl --config dpo.yaml\n" +
				"Settings (max_length, completion_only_loss, assistant_only_loss, ...) come from --config, the trainer's YAML.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "trainer", Required: true, Usage: "sft, reward, dpo, orpo, cpo, kto, ppo, grpo, rloo or classify"},
				&cli.StringFlag{Name: "model", Required: true, Usage: "the model (or tokenizer) directory the trainer would start from"},
				&cli.StringFlag{Name: "dataset", Required: true, Usage: "the dataset file or folder"},
				&cli.StringFlag{Name: "config", Usage: "the trainer's YAML config (the keys of its flags)"},
				&cli.IntFlag{Name: "n", Value: 3, Usage: "how many examples"},
				&cli.BoolFlag{Name: "json", Usage: "one JSON object an example instead of tables"},
			},
			Action: func(c *cli.Context) error { return showData(c, *log) },
		}},
	}
}

// shown is one sequence as printed.
type shown struct {
	Name   string   `json:"name,omitempty"`
	Text   string   `json:"text"`
	IDs    []int    `json:"input_ids"`
	Tokens []string `json:"tokens"`
	Labels []int    `json:"labels"`
}

func showData(c *cli.Context, log zerolog.Logger) error {
	n := c.Int("n")
	if n < 1 {
		return fmt.Errorf("data show: --n must be at least 1, got %d", n)
	}
	load := func(cfg any) error {
		if p := c.String("config"); p != "" {
			return cliconf.LoadFile(p, cfg)
		}
		return nil
	}
	model, err := hubFlag(c, "model")
	if err != nil {
		return err
	}
	dataset := c.String("dataset")
	quiet := log.Level(zerolog.WarnLevel)
	var examples [][]shown
	var tok *tokenizer.Tokenizer
	pairs := func(ps []preference.Pair, t *tokenizer.Tokenizer, err error) error {
		if err != nil {
			return err
		}
		tok = t
		for _, p := range ps {
			examples = append(examples, []shown{seq("chosen", t, p.Chosen, p.ChosenStart), seq("rejected", t, p.Rejected, p.RejectedStart)})
		}
		return nil
	}
	switch tr := c.String("trainer"); tr {
	case "sft":
		cfg := sft.DefaultConfig()
		if err = load(&cfg); err != nil {
			return err
		}
		cfg.Model, cfg.Dataset, cfg.NoCache = model, dataset, true
		xs, t, err := sft.Preview(cfg, n, quiet)
		if err != nil {
			return err
		}
		tok = t
		for _, x := range xs {
			s := shown{}
			for i, id := range x.IDs {
				label := -100
				if x.Loss[i] && i > 0 { // the first token is never predicted
					label = int(id)
				}
				s.IDs, s.Labels = append(s.IDs, int(id)), append(s.Labels, label)
			}
			examples = append(examples, []shown{fill(s, t)})
		}
	case "dpo":
		cfg := dpo.DefaultConfig()
		if err = load(&cfg); err != nil {
			return err
		}
		cfg.Model, cfg.Dataset = model, dataset
		err = pairs(dpo.Preview(cfg, n, quiet))
	case "orpo":
		cfg := orpo.DefaultConfig()
		if err = load(&cfg); err != nil {
			return err
		}
		cfg.Model, cfg.Dataset = model, dataset
		err = pairs(orpo.Preview(cfg, n, quiet))
	case "cpo":
		cfg := cpo.DefaultConfig()
		if err = load(&cfg); err != nil {
			return err
		}
		cfg.Model, cfg.Dataset = model, dataset
		err = pairs(cpo.Preview(cfg, n, quiet))
	case "reward":
		cfg := reward.DefaultConfig()
		if err = load(&cfg); err != nil {
			return err
		}
		cfg.Model, cfg.Dataset = model, dataset
		ps, t, perr := reward.Preview(cfg, n, quiet)
		if perr == nil {
			for i := range ps { // the reward model scores the last token: no token labels
				ps[i].ChosenStart, ps[i].RejectedStart = len(ps[i].Chosen), len(ps[i].Rejected)
			}
		}
		err = pairs(ps, t, perr)
	case "ppo":
		cfg := ppo.DefaultConfig()
		if err = load(&cfg); err != nil {
			return err
		}
		cfg.SFTModel, cfg.Dataset = model, dataset
		ids, t, err := ppo.Preview(cfg, n)
		if err != nil {
			return err
		}
		tok = t
		for _, p := range ids {
			s := shown{Name: "prompt", IDs: p}
			for range p {
				s.Labels = append(s.Labels, -100)
			}
			examples = append(examples, []shown{fill(s, t)})
		}
	case "grpo", "rloo":
		var ids [][]int
		var t *tokenizer.Tokenizer
		if tr == "grpo" {
			cfg := grpo.DefaultConfig()
			if err = load(&cfg); err != nil {
				return err
			}
			cfg.Model, cfg.Dataset = model, dataset
			ids, t, err = grpo.Preview(cfg, n)
		} else {
			cfg := rloo.DefaultConfig()
			if err = load(&cfg); err != nil {
				return err
			}
			cfg.Model, cfg.Dataset = model, dataset
			ids, t, err = rloo.Preview(cfg, n)
		}
		if err != nil {
			return err
		}
		tok = t
		for _, p := range ids {
			s := shown{Name: "prompt", IDs: p}
			for range p {
				s.Labels = append(s.Labels, -100)
			}
			examples = append(examples, []shown{fill(s, t)})
		}
	case "classify":
		cfg := classify.DefaultConfig()
		if err = load(&cfg); err != nil {
			return err
		}
		cfg.Model, cfg.Dataset = model, dataset
		p, err := classify.Preview(cfg, n)
		if err != nil {
			return err
		}
		tok = p.Tok
		for i, x := range p.Data.X {
			s := shown{Name: classifyLabel(p, i)}
			for _, id := range x {
				s.IDs, s.Labels = append(s.IDs, int(id)), append(s.Labels, -100)
			}
			examples = append(examples, []shown{fill(s, p.Tok)})
		}
	case "kto":
		cfg := kto.DefaultConfig()
		if err = load(&cfg); err != nil {
			return err
		}
		cfg.Model, cfg.Dataset = model, dataset
		xs, t, kerr := kto.Preview(cfg, n, quiet)
		if kerr != nil {
			return kerr
		}
		tok = t
		cut := func(p, c []int32) []int32 { // the row as collated: cut to max_length
			row := append(append([]int32{}, p...), c...)
			return row[:min(len(row), cfg.MaxLength)]
		}
		for _, x := range xs {
			name := "undesirable (label false)"
			if x.Label {
				name = "desirable (label true)"
			}
			ex := []shown{seq(name, t, cut(x.Prompt, x.Completion), len(x.Prompt))}
			if x.KL != nil {
				ex = append(ex, seq("KL row: the neighbour's completion", t, cut(x.Prompt, x.KL), len(x.Prompt)))
			}
			examples = append(examples, ex)
		}
	default:
		return fmt.Errorf("data show: --trainer %q: want sft, reward, dpo, orpo, cpo, kto, ppo, grpo, rloo or classify", tr)
	}
	if err != nil {
		return err
	}
	if len(examples) == 0 {
		return fmt.Errorf("data show: %s: no examples (all dropped? run the trainer to see why)", dataset)
	}
	_ = tok
	w := c.App.Writer
	for i, ex := range examples {
		if c.Bool("json") {
			b, _ := json.Marshal(ex)
			fmt.Fprintln(w, string(b))
			continue
		}
		printExample(w, i+1, ex)
	}
	return nil
}

// seq is a preference row: labels are the tokens from start on.
func seq(name string, t *tokenizer.Tokenizer, row []int32, start int) shown {
	s := shown{Name: name}
	for i, id := range row {
		label := -100
		if i >= start && i > 0 {
			label = int(id)
		}
		s.IDs, s.Labels = append(s.IDs, int(id)), append(s.Labels, label)
	}
	return fill(s, t)
}

func fill(s shown, t *tokenizer.Tokenizer) shown {
	s.Text, _ = t.Decode(s.IDs, false)
	for _, id := range s.IDs {
		tok, _ := t.IDToToken(id)
		s.Tokens = append(s.Tokens, tok)
	}
	return s
}

func printExample(w io.Writer, n int, ex []shown) {
	for _, s := range ex {
		trained := 0
		for _, l := range s.Labels {
			if l != -100 {
				trained++
			}
		}
		title := fmt.Sprintf("example %d", n)
		if s.Name != "" {
			title += ", " + s.Name
		}
		fmt.Fprintf(w, "=== %s: %d tokens, %d with loss\n%s\n", title, len(s.IDs), trained, s.Text)
	}
	// the rows side by side: index, then id, token and label of each
	rows := 0
	for _, s := range ex {
		rows = max(rows, len(s.IDs))
	}
	head := []string{fmt.Sprintf("%5s", "idx")}
	for _, s := range ex {
		name := s.Name
		if len(ex) == 1 {
			name = ""
		}
		head = append(head, fmt.Sprintf("%8s %-24s %8s", "id", strings.TrimSpace(name+" token"), "label"))
	}
	fmt.Fprintln(w, strings.Join(head, " | "))
	for r := range rows {
		cells := []string{fmt.Sprintf("%5d", r)}
		for _, s := range ex {
			if r >= len(s.IDs) {
				cells = append(cells, fmt.Sprintf("%8s %-24s %8s", "", "", ""))
				continue
			}
			q := strconv.Quote(s.Tokens[r])
			if len(q) > 24 {
				q = q[:21] + "..."
			}
			cells = append(cells, fmt.Sprintf("%8d %-24s %8d", s.IDs[r], q, s.Labels[r]))
		}
		fmt.Fprintln(w, strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

// classifyLabel names example i's label as rl classify trains on it: a
// class id with its name (single_label_classification), the score
// (regression), or the set of classes (multi_label_classification; the
// multi-hot vector when the data gives 0/1 vectors).
func classifyLabel(p *classify.Previewed, i int) string {
	d := p.Data
	switch p.ProblemType {
	case model.Regression:
		return fmt.Sprintf("label %s (regression)", strconv.FormatFloat(float64(d.Targets[i][0]), 'g', -1, 32))
	case model.MultiLabel:
		var on []string
		for j, v := range d.Targets[i] {
			switch {
			case p.Names != nil && v == 1:
				on = append(on, p.Names[j])
			case p.Names == nil:
				on = append(on, strconv.FormatFloat(float64(v), 'g', -1, 32))
			}
		}
		return fmt.Sprintf("labels [%s] (multi_label_classification)", strings.Join(on, ", "))
	}
	label := strconv.Itoa(d.Labels[i])
	if d.Labels[i] < len(p.Names) {
		label += " (" + p.Names[d.Labels[i]] + ")"
	}
	return "label " + label
}
