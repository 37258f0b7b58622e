package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/compare"
)

func compareCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "Compare finished runs (or run configurations under several seeds): tables with statistics, plots, an HTML page",
		ArgsUsage: "RUN_DIR... | --seeds N CONFIG.yaml...",
		Description: "Reads each run's rl_config.yaml, metrics.jsonl, trainer_state.json and gold.json (all optional)\n" +
			"and writes comparison.md, comparison.html (self-contained, plots inlined), one PNG per metric logged by two or\n" +
			"more runs, and gold.png into --output. Runs in folders seed-N/NAME (or NAME-seedN) are one configuration under\n" +
			"several seeds: the report adds each one's mean, std and 95% interval per metric, and paired t-tests of the\n" +
			"gold metric between configurations. The table is printed to standard output too.\n\n" +
			"With --seeds N the arguments are configuration files (YAML, as rl METHOD --config reads; the trainer from a\n" +
			"method: key or from the keys): each runs under seeds --seed..--seed+N-1 into OUTPUT/seed-S/NAME, a configuration\n" +
			"whose model_name_or_path (or sft_model_path, reward_model_path, ...) is another's output_dir starts from that\n" +
			"one's run of the same seed, and runs already finished with their configuration are not rerun. Example:\n" +
			"  rl compare --seeds 3 -o sweep sft.yaml dpo.yaml orpo.yaml   # dpo.yaml: model_name_or_path: <sft.yaml's output_dir>",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "comparison", Usage: "directory for comparison.md, comparison.html and the plots (and, with --seeds, the runs)"},
			&cli.IntFlag{Name: "seeds", Usage: "run each configuration file given under this many seeds, then compare (0: compare run directories)"},
			&cli.Int64Flag{Name: "seed", Value: 42, Usage: "the first seed of --seeds"},
		},
		Action: func(c *cli.Context) error {
			dirs, f, err := compareArgs(c.Args().Slice(), compareFlags{output: c.String("output"), seeds: c.Int("seeds"), seedsSet: c.IsSet("seeds"), seed: c.Int64("seed")})
			if err != nil {
				return err
			}
			out := f.output
			if len(dirs) == 0 {
				return errors.New("compare: give one or more run directories (or, with --seeds, configuration files)")
			}
			if f.seeds != 0 || f.seedsSet {
				ctx, stop := signalContext(log)
				defer stop()
				dirs, err = compare.Sweep(ctx, compare.SweepOptions{Configs: dirs, Seeds: f.seeds, Seed: f.seed, OutputDir: out, Run: runTrainer, Log: *log})
				if err != nil {
					return err
				}
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

// runTrainer runs `rl METHOD --config PATH` as a child process of this
// binary, its output passed through.
func runTrainer(ctx context.Context, method, path string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("compare: find the rl binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, method, "--config", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// compareArgs splits the arguments into run directories (or configuration
// files) and the flags given after them, which urfave/cli leaves among the
// arguments: `rl compare a b --output DIR --seeds 3` works as well as
// `rl compare -o DIR --seeds 3 a b`. Flags it finds override those parsed.
func compareArgs(args []string, f compareFlags) (dirs []string, _ compareFlags, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "output" && name != "o" && name != "seeds" && name != "seed" {
			dirs = append(dirs, a)
			continue
		}
		if !hasVal {
			if i+1 == len(args) {
				return nil, f, fmt.Errorf("compare: %s needs a value", a)
			}
			val = args[i+1]
			i++
		}
		switch name {
		case "output", "o":
			f.output = val
		case "seeds", "seed":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, f, fmt.Errorf("compare: %s %q: want a whole number", a, val)
			}
			if name == "seeds" {
				f.seeds, f.seedsSet = int(n), true
			} else {
				f.seed = n
			}
		}
	}
	return dirs, f, nil
}

// compareFlags are rl compare's flags.
type compareFlags struct {
	output   string
	seeds    int
	seedsSet bool
	seed     int64
}
