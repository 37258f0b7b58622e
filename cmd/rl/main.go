// Command rl trains and runs transformer language models for RLHF: SFT,
// reward modelling, DPO, ORPO, CPO and PPO, on libtorch, with Hugging Face
// checkpoints in and out.
package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/hub"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/train"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	// libtorch keeps grad mode and errors per OS thread: keep main's
	// goroutine on one.
	runtime.LockOSThread()
}

func main() {
	tensor.ReexecDefaultEnv()
	os.Exit(run(os.Args))
}

func run(args []string) int {
	train.CardCommand = args // recorded in model cards
	log := newLogger("auto", "info")
	if _, err := tensor.TuneMalloc("heap"); err != nil {
		log.Error().Msg(err.Error())
		return 1
	}
	app := newApp(&log)
	if err := app.Run(args); err != nil {
		if errors.Is(err, train.ErrInterrupted) {
			log.Warn().Msg(err.Error())
			return 130
		}
		var wf workerFailed
		if errors.As(err, &wf) {
			log.Error().Msg(err.Error())
			return wf.code
		}
		log.Error().Msg(explain(app, err).Error())
		return 1
	}
	return 0
}

// explain rewrites errors whose fix rl knows: a global flag given after
// the command.
func explain(app *cli.App, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return err
	}
	name = strings.TrimLeft(name, "-")
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			if n == name {
				return fmt.Errorf("--%s is a global flag: give it before the command (rl --%s VALUE COMMAND ...)", name, name)
			}
		}
	}
	return err
}

func newApp(log *zerolog.Logger) *cli.App {
	return &cli.App{
		Name:    "rl",
		Usage:   "RLHF trainers (SFT, reward, DPO, ORPO, CPO/SimPO, PPO) on libtorch, with Hugging Face checkpoints",
		Version: version,
		Suggest: true,
		// A comma is part of a prompt or a token: --prompt "a, b" is one
		// prompt; lists that want commas split them themselves (splitList).
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "threads", Usage: "libtorch intra-op threads (0: every core this process may use)", EnvVars: []string{"RL_THREADS"}},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu, cuda or cuda:N (CUDA needs a CUDA libtorch: see README)"},
			&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "console (readable), json (one object a line) or auto (console on a terminal)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.IntFlag{Name: "ddp-timeout", Value: 1800, Usage: "seconds a data-parallel collective may wait for the other ranks before every rank fails (HF's ddp_timeout)", EnvVars: []string{"RL_DDP_TIMEOUT"}},
		},
		Before: func(c *cli.Context) error {
			*log = newLogger(c.String("log-format"), c.String("log-level"))
			hub.Log = *log // download progress of Hub ids
			n := c.Int("threads")
			if n < 0 {
				return fmt.Errorf("--threads %d: want 0 (every core) or a positive count", n)
			}
			if cpus := runtime.NumCPU(); n > cpus {
				log.Warn().Int("threads", n).Int("cpus", cpus).Msg("--threads is above the CPUs this process may use: oversubscribed libtorch threads run much slower; use at most the CPU count (or 0)")
			}
			tensor.SetNumThreads(n)
			dev, err := tensor.ParseDevice(c.String("device"))
			if err != nil {
				return err
			}
			train.Device = dev // every trainer's models, batches and optimizer state
			return joinWorld(c, log)
		},
		After: func(c *cli.Context) error {
			if g := dist.Current(); g != nil {
				g.Close()
				dist.SetCurrent(nil)
			}
			return nil
		},
		Commands: []*cli.Command{
			demoCommand(log),
			tokenizerCommand(log),
			dataCommand(log),
			initCommand(log),
			sftCommand(log),
			classifyCommand(log),
			predictCommand(log),
			rewardCommand(log),
			scoreCommand(log),
			dpoCommand(log),
			orpoCommand(log),
			cpoCommand(log),
			ktoCommand(log),
			ppoCommand(log),
			grpoCommand(log),
			rlooCommand(log),
			generateCommand(log),
			mergeCommand(log),
			compareCommand(log),
			infoCommand(log),
			launchCommand(log),
		},
	}
}

// newLogger builds the zerolog logger for a format and level.
func newLogger(format, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	if format == "auto" {
		format = "json"
		if isatty.IsTerminal(os.Stderr.Fd()) || os.Getenv("RL_LOG_CONSOLE") != "" {
			format = "console"
		}
		if os.Getenv("CI") != "" {
			format = "console"
		}
	}
	var l zerolog.Logger
	if format == "json" {
		l = zerolog.New(os.Stderr)
	} else {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !isatty.IsTerminal(os.Stderr.Fd())})
	}
	return l.Level(lvl).With().Timestamp().Logger()
}

// signalContext is cancelled by Ctrl-C or SIGTERM; a second signal exits at once.
func signalContext(log *zerolog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		n := 0
		for range ch {
			n++
			if n == 1 && !train.Running() {
				// loading or tokenising: nothing is written yet that a
				// checkpoint would keep (outputs are written atomically)
				log.Warn().Msg("interrupt: quitting (training had not started: nothing to save)")
				os.Exit(130)
			}
			if n == 1 {
				log.Warn().Msg("interrupt: finishing this step and saving a checkpoint (press Ctrl-C again to quit now)")
				cancel()
			} else {
				os.Exit(130)
			}
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// trainers are the commands that train in a data-parallel world.
var trainers = map[string]bool{"sft": true, "reward": true, "classify": true, "dpo": true, "orpo": true, "cpo": true,
	"kto": true, "ppo": true, "grpo": true, "rloo": true}

// joinWorld opens the data-parallel process group when rl runs as a
// worker of rl launch or torchrun (WORLD_SIZE > 1); ranks other than 0
// log warnings and errors only (HF's log_level_replica "warning"), each
// message with its rank.
func joinWorld(c *cli.Context, log *zerolog.Logger) error {
	if !trainers[c.Args().First()] || slices.Contains(c.Args().Slice(), "--help") || slices.Contains(c.Args().Slice(), "-h") {
		return nil // only training joins a world (not launch itself, nor help)
	}
	env, err := dist.ReadEnv()
	if err != nil || env.WorldSize <= 1 {
		return err
	}
	if s := c.Int("ddp-timeout"); s <= 0 {
		return fmt.Errorf("--ddp-timeout %d: want a positive number of seconds", s)
	}
	dev, err := worldDevice(c.String("device"), env)
	if err != nil {
		return err
	}
	train.Device = dev
	l := log.With().Int("rank", env.Rank).Logger()
	if env.Rank != 0 && l.GetLevel() < zerolog.WarnLevel {
		l = l.Level(zerolog.WarnLevel)
	}
	*log = l
	// gloo for CPU tensors, NCCL for CUDA ones (torch.distributed's
	// default backends for the two devices)
	g, err := dist.Open(env, dist.Options{Timeout: time.Duration(c.Int("ddp-timeout")) * time.Second,
		NCCL: dev != tensor.CPU, Device: dev.Index()})
	if err != nil {
		return err
	}
	dist.SetCurrent(g)
	return nil
}

// worldDevice is a data-parallel rank's device for --device: "cuda" is
// the rank's own GPU, cuda:LOCAL_RANK (as torchrun scripts use
// torch.cuda.set_device(local_rank)); cuda:N and cpu are taken as given.
func worldDevice(flag string, env dist.Env) (tensor.Device, error) {
	if strings.TrimSpace(flag) == "cuda" {
		dev, err := tensor.ParseDevice(fmt.Sprintf("cuda:%d", env.LocalRank))
		if err != nil {
			return tensor.CPU, fmt.Errorf("--device cuda on rank %d (LOCAL_RANK %d): %w: start at most as many processes per node as GPUs", env.Rank, env.LocalRank, err)
		}
		return dev, nil
	}
	return tensor.ParseDevice(flag)
}

func device(c *cli.Context) tensor.Device {
	d, _ := tensor.ParseDevice(c.String("device"))
	return d
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }

// checkFlags validates the numeric flags of c named in ranges: finite and
// in range, each error naming the flag, its value and the range.
func checkFlags(c *cli.Context, ranges map[string]check.Range) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(ranges)) {
		var err error
		switch v := c.Value(name).(type) {
		case int:
			err = check.Int("--"+name, int64(v), ranges[name])
		case int64:
			err = check.Int("--"+name, v, ranges[name])
		case float64:
			err = check.Float("--"+name, v, ranges[name])
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// splitList splits the values of a repeatable list flag at commas too
// (--only sft,dpo), for lists whose items cannot contain one.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
