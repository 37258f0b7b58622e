package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// torchRunner runs ../shared/bench/torch_ref.py (plain PyTorch on the same
// libtorch) with Debian's /usr/bin/python3.
type torchRunner struct {
	python  string
	script  string
	ext     string // tools/bench/torch_ref_ext.py: torch_ref.py with the long shapes (configs with a '-')
	threads int
	skipped string // why the comparison is off; "" when it is on
}

// torchRecord is one JSON line of torch_ref.py.
type torchRecord map[string]any

func (r torchRecord) str(k string) string {
	s, _ := r[k].(string)
	return s
}

func (r torchRecord) num(k string) (float64, bool) {
	v, ok := r[k].(float64)
	return v, ok
}

// torchRun is one torch_ref.py process: its records and its peak RSS.
type torchRun struct {
	Args     []string      `json:"args"`
	Records  []torchRecord `json:"records"`
	MaxRSSKB int64         `json:"max_rss_kb"` // the child's peak RSS (getrusage ru_maxrss)
	WallS    float64       `json:"wall_s"`
	Stderr   string        `json:"stderr,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// newTorchRunner checks that the script and python3-torch are there,
// installing python3-torch with apt-get when we are root.
func newTorchRunner(python, script string, threads int, disabled bool) *torchRunner {
	t := &torchRunner{python: python, script: script, threads: threads}
	if disabled {
		t.skipped = "--no-torch"
		return t
	}
	if _, err := os.Stat(script); err != nil {
		t.skipped = fmt.Sprintf("%s not found (set --torch-ref)", script)
		return t
	}
	if _, err := os.Stat(python); err != nil {
		t.skipped = fmt.Sprintf("%s not found (apt-get install -y python3 python3-torch)", python)
		return t
	}
	if err := importTorch(python); err == nil {
		return t
	}
	if os.Geteuid() != 0 {
		t.skipped = fmt.Sprintf("%s cannot import torch; as root run: apt-get install -y python3-torch", python)
		return t
	}
	fmt.Println("PyTorch (python3-torch) is not installed: running apt-get install -y python3-torch ...")
	start := time.Now()
	cmd := exec.Command("apt-get", "install", "-y", "-q", "python3-torch")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.skipped = fmt.Sprintf("apt-get install -y python3-torch failed (%v): %s", err, lastLines(string(out), 5))
		return t
	}
	if err := importTorch(python); err != nil {
		t.skipped = fmt.Sprintf("python3-torch installed but %s still cannot import torch: %v", python, err)
		return t
	}
	fmt.Printf("installed python3-torch in %.0f s\n", time.Since(start).Seconds())
	return t
}

func importTorch(python string) error {
	out, err := exec.Command(python, "-c", "import torch").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, lastLines(string(out), 1))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// run runs torch_ref.py for one bench and config with the same measurement
// parameters as rl's side.
func (t *torchRunner) run(bench, config string, p measureParams, extra ...string) *torchRun {
	script := t.script
	if (strings.Contains(config, "-") || bench == "sample_kv") && t.ext != "" {
		script = t.ext
	}
	args := []string{script, "--bench", bench, "--config", config,
		"--threads", strconv.Itoa(t.threads),
		"--warmup", strconv.Itoa(p.Warmup), "--runs", strconv.Itoa(p.Runs), "--steps", strconv.Itoa(p.Steps),
		"--retries", strconv.Itoa(p.Retries),
		"--quiet-thresh", strconv.FormatFloat(p.QuietThresh, 'g', -1, 64),
		"--quiet-wait", strconv.FormatFloat(p.QuietWait, 'g', -1, 64),
		"--tag", "rl-bench"}
	args = append(args, extra...)
	return t.runScript(args)
}

// runScript runs python with args and collects the JSON lines it prints.
func (t *torchRunner) runScript(args []string) *torchRun {
	r := &torchRun{Args: append([]string{t.python}, args...)}
	cmd := exec.Command(t.python, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		// The child's own peak RSS: VmHWM of its address space, polled.
		// (getrusage's ru_maxrss is no good: Linux carries the parent's
		// high-water mark into a child across fork and exec.)
		done := make(chan struct{})
		polled := make(chan int64)
		go func() {
			var hwm int64
			status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				if v := statusKB(status, "VmHWM"); v > hwm {
					hwm = v
				}
				select {
				case <-done:
					polled <- hwm
					return
				case <-tick.C:
				}
			}
		}()
		err = cmd.Wait()
		close(done)
		r.MaxRSSKB = <-polled
	}
	r.WallS = round2(time.Since(start).Seconds())
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec torchRecord
		if json.Unmarshal([]byte(line), &rec) == nil {
			r.Records = append(r.Records, rec)
		}
	}
	if err != nil {
		r.Error = err.Error()
		r.Stderr = lastLines(stderr.String(), 8)
	}
	return r
}

// find returns the record with this name and config.
func (r *torchRun) find(name, config string) (torchRecord, error) {
	if r == nil {
		return nil, errors.New("not run")
	}
	for _, rec := range r.Records {
		if rec.str("name") == name && rec.str("config") == config {
			return rec, nil
		}
	}
	if r.Error != "" {
		return nil, fmt.Errorf("torch_ref.py failed (%s): %s", r.Error, r.Stderr)
	}
	return nil, fmt.Errorf("torch_ref.py printed no %s/%s record", name, config)
}

// merge combines single-run torch_ref.py processes (--interleave) into one
// torchRun whose records have the median value over the processes, as one
// torch_ref.py run of that many runs would report.
func merge(runs []*torchRun) *torchRun {
	out := &torchRun{}
	type acc struct {
		rec       torchRecord
		vals      []float64
		foreign   []any
		disturbed float64
		waited    float64
	}
	accs := map[string]*acc{}
	var order []string
	for _, r := range runs {
		out.Args = r.Args
		out.MaxRSSKB = max(out.MaxRSSKB, r.MaxRSSKB)
		out.WallS += r.WallS
		if r.Error != "" && out.Error == "" {
			out.Error, out.Stderr = r.Error, r.Stderr
		}
		for _, rec := range r.Records {
			k := rec.str("name") + "/" + rec.str("config")
			a, ok := accs[k]
			if !ok {
				a = &acc{rec: rec}
				accs[k] = a
				order = append(order, k)
			}
			if v, ok := rec.num("value"); ok {
				a.vals = append(a.vals, v)
			}
			if f, ok := rec["foreign_cpu"].([]any); ok {
				a.foreign = append(a.foreign, f...)
			}
			d, _ := rec.num("disturbed_runs")
			a.disturbed += d
			w, _ := rec.num("waited_s")
			a.waited += w
		}
	}
	for _, k := range order {
		a := accs[k]
		rec := torchRecord{}
		for kk, v := range a.rec {
			rec[kk] = v
		}
		if len(a.vals) > 0 {
			rec["value"] = round2(median(a.vals))
			rec["runs"] = a.vals
		}
		if _, ok := a.rec["disturbed_runs"]; ok {
			rec["foreign_cpu"] = a.foreign
			rec["disturbed_runs"] = a.disturbed
			rec["waited_s"] = round2(a.waited)
			rec["interleaved_processes"] = len(runs)
			delete(rec, "step_ms_median")
		}
		out.Records = append(out.Records, rec)
	}
	return out
}
