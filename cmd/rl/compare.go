package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/compare"
)

func compareCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "Compare finished runs: a Markdown table, overlaid metric plots and a gold-metric bar chart",
		ArgsUsage: "RUN_DIR...",
		Description: "Reads each run's rl_config.yaml, metrics.jsonl, trainer_state.json and gold.json (all optional)\n" +
			"and writes comparison.md, one PNG per metric logged by two or more runs, and gold.png into --output.\n" +
			"The table is printed to standard output too.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "comparison", Usage: "directory for comparison.md and the plots"},
		},
		Action: func(c *cli.Context) error {
			dirs, out, err := compareArgs(c.Args().Slice(), c.String("output"))
			if err != nil {
				return err
			}
			if len(dirs) == 0 {
				return errors.New("compare: give one or more run directories")
			}
			res, err := compare.Report(dirs, compare.Options{OutputDir: out})
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				log.Info().Msg(w)
			}
			fmt.Print(res.Markdown)
			log.Info().Int("runs", len(res.Runs)).Int("files", len(res.Files)).Str("dir", out).Msg("wrote comparison")
			return nil
		},
	}
}

// compareArgs splits the arguments into run directories and an --output
// (-o) given after them, which urfave/cli leaves among the arguments:
// `rl compare a b --output DIR` works as well as `rl compare -o DIR a b`.
func compareArgs(args []string, out string) (dirs []string, output string, err error) {
	output = out
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--output" || a == "-o" || a == "-output":
			if i+1 == len(args) {
				return nil, "", fmt.Errorf("compare: %s needs a directory", a)
			}
			output = args[i+1]
			i++
		case strings.HasPrefix(a, "--output=") || strings.HasPrefix(a, "-o="):
			_, output, _ = strings.Cut(a, "=")
		default:
			dirs = append(dirs, a)
		}
	}
	return dirs, output, nil
}
