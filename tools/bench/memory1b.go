package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ---------------------------------------------------------------- issue 13's memory table

// memReserveKB is the machine's memory a memory_1b child may not eat into:
// when MemAvailable falls below it the child is killed and its row says
// the configuration does not fit (so a run that cannot fit never takes
// the machine, and other processes, down with it).
const memReserveKB = 3 << 19 // 1.5 GB

// memHeavyKB is the free memory a full fine-tuning run waits for (up to
// memHeavyWait) before it starts: 1.1B parameters' float32 weights,
// gradients and AdamW moments are 17.6 GB.
const (
	memHeavyKB   = 20 << 20
	memHeavyWait = 5 * time.Minute
)

// memConfig is one row of the memory table: an rl command line on the
// TinyLlama-shaped base.
type memConfig struct {
	Name    string
	Trainer string   // sft or dpo
	Flags   []string // on top of the common ones
	GC      bool     // --gradient-checkpointing
	Heavy   bool     // waits for memHeavyKB free before it starts
}

// memConfigs are issue 13's rows, run smallest first: full fine-tuning, LoRA and QLoRA-NF4,
// each without and with gradient checkpointing, and LoRA DPO (with
// checkpointing) with a reference loaded as a second copy of the base
// (--ref-model base/) against TRL's reference, the policy with its
// adapters disabled. LoRA is peft's default for Llama (q_proj, v_proj,
// r 16), as TRL's ModelConfig gives it.
var memConfigs = []memConfig{
	{Name: "qlora_nf4", Trainer: "sft", Flags: []string{"--use-peft", "--load-in-4bit", "--bnb-4bit-quant-type", "nf4"}},
	{Name: "qlora_nf4+gc", Trainer: "sft", Flags: []string{"--use-peft", "--load-in-4bit", "--bnb-4bit-quant-type", "nf4"}, GC: true},
	{Name: "lora", Trainer: "sft", Flags: []string{"--use-peft"}},
	{Name: "lora+gc", Trainer: "sft", Flags: []string{"--use-peft"}, GC: true},
	{Name: "dpo_lora+gc_ref_adapter", Trainer: "dpo", Flags: []string{"--use-peft"}, GC: true},
	{Name: "dpo_lora+gc_ref_copy", Trainer: "dpo", Flags: []string{"--use-peft", "--ref-model", "{base}"}, GC: true},
	{Name: "full+gc", Trainer: "sft", GC: true, Heavy: true},
	{Name: "full", Trainer: "sft", Heavy: true},
}

// memRun is what one child process showed.
type memRun struct {
	Config    string    `json:"config"`
	Args      []string  `json:"args"`
	PeakKB    int64     `json:"peak_rss_kb"`          // VmHWM of the child, polled
	RusageKB  int64     `json:"rusage_maxrss_kb"`     // wait4's ru_maxrss (includes the bench's own mark at exec)
	PlanRSSKB int64     `json:"rss_at_first_step_kb"` // VmRSS when it logged its memory plan (before the first step)
	Plan      memPlan   `json:"memory_plan"`
	StepS     []float64 `json:"step_seconds"` // each step's wall time, the first one the warm-up
	AvailKB   int64     `json:"mem_available_at_start_kb"`
	Killed    string    `json:"killed,omitempty"`
	Error     string    `json:"error,omitempty"`
	WallS     float64   `json:"wall_s"`
}

// memPlan is rl's "memory plan" log line, in bytes.
type memPlan struct {
	Weights, Gradients, Optimizer, Frozen, Activations int64
}

// activationsKB is the run's activation memory: the peak less what the
// process held before its first step and the trained tensors' gradients
// and AdamW moments (which the first step allocates).
func (r *memRun) activationsKB() int64 {
	return r.PeakKB - r.PlanRSSKB - (r.Plan.Gradients+r.Plan.Optimizer)>>10
}

// secondsPerStep is the mean of the steps after the first.
func (r *memRun) secondsPerStep() float64 {
	if len(r.StepS) < 2 {
		return 0
	}
	var s float64
	for _, v := range r.StepS[1:] {
		s += v
	}
	return s / float64(len(r.StepS)-1)
}

func (r *memRun) fits() bool { return r.Killed == "" && r.Error == "" }

// rlMemory1B is `--only memory_1b`: issue 13's memory table on TinyLlama's
// shape (22 layers, hidden 2048, SwiGLU 5632, 32 heads / 4 kv heads, vocab
// 32000; random weights from `rl init`), sequence 512, batch 1, 3 steps
// each (the first a warm-up). Every configuration is its own rl process,
// run one at a time, so its peak RSS is that process's VmHWM; one that
// would exhaust the machine is killed at memReserveKB and reported as not
// fitting. About 25-40 minutes on 2 cores and ~25 GB of disk-backed /tmp
// churn (the 4.4 GB float32 base is written once); not in the default set.
func rlMemory1B(e *env, config string, p measureParams) ([]*Result, error) {
	dir, bin, data, tok, err := rlWorkdir(e.root, "rl-bench-mem1b-")
	defer os.RemoveAll(dir)
	if err != nil {
		return nil, err
	}
	pairs := filepath.Join(dir, "pairs.jsonl")
	if err := writeLongPairs(pairs, 16); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "tinyllama.json")
	if err := os.WriteFile(cfgPath, []byte(tinyLlamaJSON), 0o644); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "base")
	fmt.Printf("\n   rl init TinyLlama's shape (4.4 GB float32)")
	if out, err := exec.Command(bin, "init", "--preset", cfgPath, "--tokenizer", tok, "-o", base).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("rl init: %v: %s", err, lastLines(string(out), 5))
	}
	steps := 3
	if e.opts.steps > 0 {
		steps = e.opts.steps
	}
	runs := map[string]*memRun{}
	var res []*Result
	for _, c := range memConfigs {
		if !e.opts.memOnly(c.Name) {
			continue
		}
		args := []string{"--log-format", "json", c.Trainer, "--model", base, "--tokenizer", tok,
			"--max-length", "512", "--per-device-train-batch-size", "1", "--max-steps", strconv.Itoa(steps),
			"--logging-steps", "1", "--save-strategy", "no", "--report-to", "none", "--output-dir", filepath.Join(dir, "out-"+c.Name)}
		if c.Trainer == "sft" {
			args = append(args, "--dataset", data, "--packing", "--no-cache")
		} else {
			args = append(args, "--dataset", pairs)
		}
		for _, f := range c.Flags {
			args = append(args, strings.ReplaceAll(f, "{base}", base))
		}
		if c.GC {
			args = append(args, "--gradient-checkpointing")
		}
		avail := statusKB("/proc/meminfo", "MemAvailable")
		for t0 := time.Now(); c.Heavy && avail < memHeavyKB && time.Since(t0) < memHeavyWait; avail = statusKB("/proc/meminfo", "MemAvailable") {
			time.Sleep(10 * time.Second) // other processes hold memory: give them a while
		}
		fmt.Printf("\n   %s (MemAvailable %.1f GiB)", c.Name, float64(avail)/(1<<20))
		r := runMemChild(bin, args)
		r.AvailKB = avail
		r.Config = c.Name
		runs[c.Name] = r
		switch {
		case r.Killed != "":
			fmt.Printf(": does not fit (%s)", r.Killed)
		case r.Error != "":
			fmt.Printf(": error: %s", r.Error)
		default:
			fmt.Printf(": peak %.2f GiB, %.1f s/step", float64(r.PeakKB)/(1<<20), r.secondsPerStep())
		}
		res = append(res, memRow(r))
		os.RemoveAll(filepath.Join(dir, "out-"+c.Name))
	}
	res = append(res, memTargets(runs)...)
	return res, nil
}

// memOnly reports whether --mem-configs selects configuration name (all
// when the flag is empty).
func (o *options) memOnly(name string) bool {
	if o.memConfigs == "" {
		return true
	}
	for _, n := range strings.Split(o.memConfigs, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

func memRow(r *memRun) *Result {
	res := &Result{Name: "peak_rss_1b", Config: r.Config, Unit: "GiB", Better: lower, RL: round2(float64(r.PeakKB) / (1 << 20)),
		Extra: map[string]any{"run": r, "seconds_per_step": round2(r.secondsPerStep()),
			"activations_gb": round2(float64(r.activationsKB()) / (1 << 20)),
			"note":           "VmHWM of the rl process; activations: the peak less the RSS before the first step and the planned gradients + AdamW moments"}}
	switch {
	case r.Killed != "" && len(r.StepS) > 0:
		res.Target = fmt.Sprintf("does not fit: %s after %d steps (%.1f s/step)", r.Killed, len(r.StepS), r.secondsPerStep())
	case r.Killed != "":
		res.Target = "does not fit: " + r.Killed
	case r.Error != "":
		res.Target = "error: " + r.Error
	default:
		res.Target = fmt.Sprintf("%.1f s/step, activations %.2f GiB", r.secondsPerStep(), float64(r.activationsKB())/(1<<20))
	}
	return res
}

// memTargets are issue 13's targets over the runs: QLoRA's peak <= 25% of
// full fine-tuning's; checkpointing cuts activation memory by >= 60% at
// <= 40% more time a step; DPO with the adapter reference <= 60% of DPO
// with a copied reference. A full fine-tuning run that did not fit counts
// with the RSS it was killed at (its true peak is higher, so the ratio is
// an upper bound).
func memTargets(runs map[string]*memRun) []*Result {
	var res []*Result
	ratio := func(name, num, den string, max float64, target string) {
		a, b := runs[num], runs[den]
		if a == nil || b == nil || !a.fits() || b.PeakKB == 0 {
			return
		}
		v := round3(float64(a.PeakKB) / float64(b.PeakKB))
		note := ""
		if !b.fits() {
			note = den + " did not fit: its peak is above the RSS it was killed at, so this is an upper bound"
		}
		ok := v <= max
		res = append(res, &Result{Name: name, Config: num + " / " + den, Unit: "fraction", Better: lower, RL: v,
			Target: target, Pass: &ok, Extra: map[string]any{"note": note}})
	}
	ratio("qlora_over_full_peak", "qlora_nf4", "full", 0.25, "<= 0.25")
	ratio("qlora_over_full_peak", "qlora_nf4+gc", "full+gc", 0.25, "<= 0.25")
	ratio("dpo_adapter_ref_over_copy_peak", "dpo_lora+gc_ref_adapter", "dpo_lora+gc_ref_copy", 0.6, "<= 0.6")
	for _, kind := range []string{"full", "lora", "qlora_nf4"} {
		a, b := runs[kind], runs[kind+"+gc"]
		if a == nil || b == nil || !a.fits() || !b.fits() || a.activationsKB() <= 0 {
			continue
		}
		cut := round3(1 - float64(b.activationsKB())/float64(a.activationsKB()))
		more := round3(b.secondsPerStep()/a.secondsPerStep() - 1)
		ok := cut >= 0.6
		res = append(res, &Result{Name: "gc_activation_cut", Config: kind, Unit: "fraction", Better: higher, RL: cut,
			Target: ">= 0.6", Pass: &ok, Extra: map[string]any{"activations_gb": round2(float64(a.activationsKB()) / (1 << 20)),
				"activations_gc_gb": round2(float64(b.activationsKB()) / (1 << 20))}})
		okT := more <= 0.4
		res = append(res, &Result{Name: "gc_extra_time", Config: kind, Unit: "fraction", Better: lower, RL: more,
			Target: "<= 0.4 (times indicative on a shared machine)", Pass: &okT,
			Extra: map[string]any{"s_per_step": round2(a.secondsPerStep()), "s_per_step_gc": round2(b.secondsPerStep())}})
	}
	return res
}

var stepLineRE = regexp.MustCompile(`^step (\d+)/\d+ \(\d+%\) epoch`)

// runMemChild runs rl with args and watches it: its VmHWM (polled every
// 50 ms), its RSS when it logs the memory plan, the arrival time of each
// step's log line, and the machine's MemAvailable, killing it when that
// falls below memReserveKB.
func runMemChild(bin string, args []string) *memRun {
	r := &memRun{Args: args}
	cmd := exec.Command(bin, args...)
	var tail bytes.Buffer
	stderr, err := cmd.StderrPipe()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	cmd.Stdout = &tail
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.Error = err.Error()
		return r
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var mu sync.Mutex
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			rss := statusKB(status, "VmRSS")
			mu.Lock()
			r.PeakKB = max(r.PeakKB, statusKB(status, "VmHWM"))
			if avail := statusKB("/proc/meminfo", "MemAvailable"); avail > 0 && avail < memReserveKB && r.Killed == "" {
				r.Killed = fmt.Sprintf("killed at %.1f GiB RSS: the machine's MemAvailable fell below %.1f GiB", float64(rss)/(1<<20), float64(memReserveKB)/(1<<20))
				cmd.Process.Signal(syscall.SIGKILL)
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var lines []string
	last := start
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		now := time.Now()
		line := sc.Text()
		lines = append(lines, line)
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		msg, _ := rec["message"].(string)
		switch {
		case msg == "memory plan":
			mu.Lock()
			r.PlanRSSKB = statusKB(status, "VmRSS")
			mu.Unlock()
			r.Plan = memPlan{Weights: gibField(rec, "weights"), Gradients: gibField(rec, "gradients"),
				Optimizer: gibField(rec, "optimizer"), Frozen: gibField(rec, "frozen_models"), Activations: gibField(rec, "activations_estimate")}
			last = now
		case stepLineRE.MatchString(msg):
			r.StepS = append(r.StepS, round2(now.Sub(last).Seconds()))
			last = now
		}
	}
	io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	close(done)
	<-polled
	r.WallS = round2(time.Since(start).Seconds())
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.RusageKB = ru.Maxrss
	}
	if err != nil && r.Killed == "" {
		r.Error = fmt.Sprintf("%v: %s", err, lastLines(strings.Join(lines, "\n")+tail.String(), 3))
	}
	return r
}

// gibField reads a "1.23 GiB" field of a log line as bytes.
func gibField(rec map[string]any, key string) int64 {
	s, _ := rec[key].(string)
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, " GiB"), 64)
	if err != nil {
		return 0
	}
	return int64(v * (1 << 30))
}

// writeLongPairs writes n preference pairs whose prompt + completion is
// longer than 512 tokens of writeTextAndTokenizer's tokenizer, so DPO's
// max_length 512 cuts each row to exactly 512 (truncation keep_start).
func writeLongPairs(path string, n int) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	long := func(word string, i int) string {
		var s strings.Builder
		for j := 0; j < 200; j++ {
			fmt.Fprintf(&s, "the film was %s and the acting was fine, said review number %d. ", word, i*1000+j)
		}
		return s.String()
	}
	for i := 0; i < n; i++ {
		if err := enc.Encode(map[string]string{"prompt": fmt.Sprintf("review number %d said:", i),
			"chosen": long("good", i), "rejected": long("bad", i)}); err != nil {
			return err
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func memConfigNames() string {
	var n []string
	for _, c := range memConfigs {
		n = append(n, c.Name)
	}
	return strings.Join(n, ",")
}
