package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// launchEnvKeys are the variables rl launch sets for each worker:
// torchrun's contract (torch/distributed/run.py, "Environment Variables";
// local_elastic_agent.py _start_workers), without an agent store: rank 0
// hosts the TCPStore.
var launchEnvKeys = []string{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
	"ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT",
	"TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE"}

func launchCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:      "launch",
		Usage:     "Start rl as the workers of a data-parallel world, as torchrun does (gloo on CPU)",
		ArgsUsage: "[rl] COMMAND [FLAGS...]",
		Description: "Examples:\n" +
			"  rl launch --nproc-per-node 2 rl sft --model base/ --dataset data.jsonl --output-dir sft/\n" +
			"  rl launch --nnodes 2 --node-rank 0 --master-addr node0 --master-port 29500 --nproc-per-node 4 rl dpo ...\n" +
			"Each worker gets torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,\n" +
			"MASTER_PORT; OMP_NUM_THREADS=1 unless set), so torchrun --nproc-per-node N --no-python rl COMMAND ...\n" +
			"works the same. Output lines are prefixed with the rank; when a worker fails the others are stopped\n" +
			"and rl launch exits with the first failure's code.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nproc-per-node", Aliases: []string{"nproc_per_node"}, Value: 1, Usage: "workers on this node"},
			&cli.IntFlag{Name: "nnodes", Value: 1, Usage: "nodes in the world"},
			&cli.IntFlag{Name: "node-rank", Aliases: []string{"node_rank"}, Usage: "this node's rank (0..nnodes-1)"},
			&cli.StringFlag{Name: "master-addr", Aliases: []string{"master_addr"}, Value: "127.0.0.1", Usage: "rank 0's host (it hosts the TCPStore)"},
			&cli.IntFlag{Name: "master-port", Aliases: []string{"master_port"}, Usage: "rank 0's TCPStore port (0: a free port; with --nnodes > 1 the default is 29500)"},
		},
		Action: func(c *cli.Context) error {
			spec, err := launchSpec(c)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("launch: %w", err)
			}
			code, err := launch(exe, spec, os.Stdout, os.Stderr, *log)
			if err != nil {
				return err
			}
			if code != 0 {
				return workerFailed{code}
			}
			return nil
		},
	}
}

// workerFailed is rl launch's error when a worker failed: rl exits with
// the worker's code (not through cli.Exit, which would exit at once).
type workerFailed struct{ code int }

func (w workerFailed) Error() string {
	return fmt.Sprintf("launch: a worker failed with exit code %d (its output above says why)", w.code)
}

// launchPlan is what rl launch starts.
type launchPlan struct {
	NProc, NNodes, NodeRank int
	MasterAddr              string
	MasterPort              int
	Args                    []string // the workers' rl arguments, without the program name
}

func launchSpec(c *cli.Context) (launchPlan, error) {
	p := launchPlan{NProc: c.Int("nproc-per-node"), NNodes: c.Int("nnodes"), NodeRank: c.Int("node-rank"),
		MasterAddr: c.String("master-addr"), MasterPort: c.Int("master-port"), Args: c.Args().Slice()}
	if len(p.Args) > 0 && (p.Args[0] == "rl" || strings.HasSuffix(p.Args[0], "/rl")) {
		p.Args = p.Args[1:]
	}
	var errs []error
	if p.NProc < 1 {
		errs = append(errs, fmt.Errorf("launch: --nproc-per-node %d: want at least 1", p.NProc))
	}
	if p.NNodes < 1 {
		errs = append(errs, fmt.Errorf("launch: --nnodes %d: want at least 1", p.NNodes))
	}
	if p.NodeRank < 0 || p.NodeRank >= max(p.NNodes, 1) {
		errs = append(errs, fmt.Errorf("launch: --node-rank %d: want 0..%d (--nnodes %d)", p.NodeRank, max(p.NNodes, 1)-1, p.NNodes))
	}
	if p.MasterPort < 0 || p.MasterPort > 65535 {
		errs = append(errs, fmt.Errorf("launch: --master-port %d: want 1-65535, or 0 for a free port", p.MasterPort))
	}
	if len(p.Args) == 0 {
		errs = append(errs, errors.New("launch: no command: give the rl command to run, e.g. rl launch --nproc-per-node 2 rl sft --model m/ ..."))
	} else if p.Args[0] == "launch" {
		errs = append(errs, errors.New("launch: the workers' command cannot be launch itself"))
	}
	if err := errors.Join(errs...); err != nil {
		return p, err
	}
	if p.MasterPort == 0 {
		if p.NNodes > 1 {
			p.MasterPort = 29500 // every node must agree on it: torchrun's default
		} else {
			port, err := freePort(p.MasterAddr)
			if err != nil {
				return p, fmt.Errorf("launch: find a free port on %s: %w (pass --master-port)", p.MasterAddr, err)
			}
			p.MasterPort = port
		}
	}
	return p, nil
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// workerEnv is environ with worker local's variables set (and an outer
// torchrun's removed).
func workerEnv(environ []string, p launchPlan, local int, runID string) []string {
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, key := range launchEnvKeys {
			drop = drop || k == key
		}
		if !drop {
			env = append(env, kv)
		}
	}
	world := p.NNodes * p.NProc
	set := func(k string, v any) { env = append(env, fmt.Sprintf("%s=%v", k, v)) }
	set("RANK", p.NodeRank*p.NProc+local)
	set("WORLD_SIZE", world)
	set("LOCAL_RANK", local)
	set("LOCAL_WORLD_SIZE", p.NProc)
	set("GROUP_RANK", p.NodeRank)
	set("GROUP_WORLD_SIZE", p.NNodes)
	set("ROLE_NAME", "default")
	set("ROLE_RANK", p.NodeRank*p.NProc+local)
	set("ROLE_WORLD_SIZE", world)
	set("MASTER_ADDR", p.MasterAddr)
	set("MASTER_PORT", p.MasterPort)
	set("TORCHELASTIC_RESTART_COUNT", 0)
	set("TORCHELASTIC_MAX_RESTARTS", 0)
	set("TORCHELASTIC_RUN_ID", runID)
	// torchrun: OMP_NUM_THREADS=1 when unset and more than one worker; rl's
	// --threads follows it unless RL_THREADS is set.
	omp, hasOMP := os.LookupEnv("OMP_NUM_THREADS")
	if !hasOMP && p.NProc > 1 {
		omp = "1"
		set("OMP_NUM_THREADS", omp)
	}
	if _, ok := os.LookupEnv("RL_THREADS"); !ok && omp != "" {
		if n, err := strconv.Atoi(omp); err == nil && n > 0 {
			set("RL_THREADS", n)
		}
	}
	return env
}

// launch runs p's workers of exe and returns the first failure's exit
// code (0 when all succeed).
func launch(exe string, p launchPlan, stdout, stderr io.Writer, log zerolog.Logger) (int, error) {
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	world := p.NNodes * p.NProc
	log.Info().Int("world_size", world).Int("nproc_per_node", p.NProc).Int("node_rank", p.NodeRank).
		Str("master", net.JoinHostPort(p.MasterAddr, strconv.Itoa(p.MasterPort))).Msg("launching")
	var mu sync.Mutex // one line at a time, across workers
	cmds := make([]*exec.Cmd, p.NProc)
	for local := range cmds {
		rank := p.NodeRank*p.NProc + local
		cmd := exec.Command(exe, p.Args...)
		cmd.Args[0] = "rl"
		cmd.Env = workerEnv(os.Environ(), p, local, runID)
		prefix := fmt.Sprintf("[rank %d] ", rank)
		cmd.Stdout = &prefixWriter{w: stdout, prefix: prefix, mu: &mu}
		cmd.Stderr = &prefixWriter{w: stderr, prefix: prefix, mu: &mu}
		if err := cmd.Start(); err != nil {
			stopAll(cmds[:local])
			return 1, fmt.Errorf("launch: start rank %d: %w", rank, err)
		}
		cmds[local] = cmd
	}
	// Ctrl-C and SIGTERM go to every worker: they agree on a step, save a
	// checkpoint and exit (a second one stops them at once).
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	type exit struct {
		local, code int
		err         error
	}
	exits := make(chan exit, len(cmds))
	for local, cmd := range cmds {
		go func() {
			err := cmd.Wait()
			code := 0
			if err != nil {
				code = 1
				var ee *exec.ExitError
				if errors.As(err, &ee) && ee.ExitCode() > 0 {
					code = ee.ExitCode()
				}
			}
			exits <- exit{local, code, err}
		}()
	}
	first, firstRank := 0, -1
	var grace <-chan time.Time
	for left := len(cmds); left > 0; {
		select {
		case s := <-sig:
			for _, c := range cmds {
				_ = c.Process.Signal(s)
			}
		case <-grace:
			stopAll(cmds)
		case e := <-exits:
			left--
			if e.code != 0 && firstRank < 0 {
				first, firstRank = e.code, p.NodeRank*p.NProc+e.local
				log.Error().Int("rank", firstRank).Int("exit_code", e.code).Str("status", e.err.Error()).
					Msg("a worker failed: stopping the others")
				// The others' collectives fail at once when a peer is gone
				// and they say so: let them, then stop those still running.
				grace = time.After(stopGrace)
			}
		}
	}
	for _, c := range cmds {
		for _, w := range []io.Writer{c.Stdout, c.Stderr} {
			w.(*prefixWriter).flush()
		}
	}
	return first, nil
}

// prefixWriter writes whole lines to w, each after prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     *sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		_, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// flush writes a last line without a newline.
func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf)
		p.mu.Unlock()
		p.buf = nil
	}
}

// stopGrace is how long the other workers may take to fail by themselves
// after one failed, before rl launch stops them.
const stopGrace = 3 * time.Second

// stopAll asks the running workers to stop (SIGTERM), then kills those
// still running 5 s later.
func stopAll(cmds []*exec.Cmd) {
	for _, c := range cmds {
		if c != nil {
			_ = c.Process.Signal(syscall.SIGTERM) // an error: it has exited
		}
	}
	go func() {
		time.Sleep(5 * time.Second)
		for _, c := range cmds {
			if c != nil {
				_ = c.Process.Kill()
			}
		}
	}()
}
