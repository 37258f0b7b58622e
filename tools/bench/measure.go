package main

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rlsuite/rl/shared/tensor"
)

// This file mirrors torch_ref.py's measurement exactly (LoadMeter,
// wait_quiet, measure): warm-up steps, then runs of steps; before each run
// wait (up to quietWait s) for the machine to be quiet and redo a run that
// other processes disturbed (foreign CPU > quietThresh cores), up to retries
// times; per run value = units * steps / sum(step seconds); value = median.

// clkTck is USER_HZ, the unit of /proc/stat (100 on every Linux ABI Go runs on).
const clkTck = 100

// measureParams are the knobs torch_ref.py takes on its command line.
type measureParams struct {
	Warmup      int
	Runs        int
	Steps       int
	Retries     int
	QuietThresh float64
	QuietWait   float64
	// AfterRun, when set, is called after each timed run (--interleave
	// runs one PyTorch run there, so that both sides see the same load).
	AfterRun func() `json:"-"`
}

// Stats is one measurement, with the fields torch_ref.py emits.
type Stats struct {
	Value         float64   `json:"value"`
	Runs          []float64 `json:"runs"`
	StepMsMedian  float64   `json:"step_ms_median"`
	ForeignCPU    []float64 `json:"foreign_cpu"`
	DisturbedRuns int       `json:"disturbed_runs"`
	WaitedS       float64   `json:"waited_s"`
}

// busyTicks is the machine's busy CPU time in ticks (all but idle and iowait).
func busyTicks() int64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(line)
	var v []int64
	for _, s := range fields[1:] {
		n, _ := strconv.ParseInt(s, 10, 64)
		v = append(v, n)
	}
	if len(v) < 8 {
		return 0
	}
	var sum int64
	for _, n := range v[:8] {
		sum += n
	}
	return sum - v[3] - v[4]
}

// selfCPU is this process's user+system CPU seconds (every thread).
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return tvSec(ru.Utime) + tvSec(ru.Stime)
}

func tvSec(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// loadMeter measures wall time, this process's cores and other processes' cores.
type loadMeter struct {
	t0           time.Time
	b0           int64
	s0           float64
	Wall         float64
	OwnCores     float64
	ForeignCores float64
}

func startMeter() *loadMeter {
	return &loadMeter{t0: time.Now(), b0: busyTicks(), s0: selfCPU()}
}

func (m *loadMeter) stop() {
	m.Wall = time.Since(m.t0).Seconds()
	busy := float64(busyTicks()-m.b0) / clkTck
	own := selfCPU() - m.s0
	m.OwnCores = own / m.Wall
	m.ForeignCores = max(0, busy-own) / m.Wall
}

// waitQuiet blocks until other processes use < thresh cores over a 1 s probe
// window, or maxWait seconds pass; returns the seconds waited.
func waitQuiet(thresh, maxWait float64) float64 {
	t0 := time.Now()
	for {
		m := startMeter()
		time.Sleep(time.Second)
		m.stop()
		if m.ForeignCores < thresh || time.Since(t0).Seconds() > maxWait {
			return time.Since(t0).Seconds()
		}
	}
}

// measure runs step warmup times, then p.Runs runs of p.Steps timed steps.
func measure(step func(), unitsPerStep float64, p measureParams) Stats {
	for i := 0; i < p.Warmup; i++ {
		step()
	}
	var st Stats
	var stepSec, vals []float64
	for r := 0; r < p.Runs; r++ {
		var times []float64
		var m *loadMeter
		for attempt := 0; attempt <= p.Retries; attempt++ {
			st.WaitedS += waitQuiet(p.QuietThresh, p.QuietWait)
			times = times[:0]
			m = startMeter()
			for s := 0; s < p.Steps; s++ {
				t := time.Now()
				step()
				times = append(times, time.Since(t).Seconds())
			}
			m.stop()
			if m.ForeignCores <= p.QuietThresh {
				break
			}
		}
		if m.ForeignCores > p.QuietThresh {
			st.DisturbedRuns++
		}
		var sum float64
		for _, t := range times {
			sum += t
		}
		vals = append(vals, unitsPerStep*float64(p.Steps)/sum)
		st.Runs = append(st.Runs, round2(vals[len(vals)-1]))
		st.ForeignCPU = append(st.ForeignCPU, round2(m.ForeignCores))
		stepSec = append(stepSec, times...)
		if p.AfterRun != nil {
			p.AfterRun()
			// The PyTorch run just finished warmed its own process up first;
			// warm rl up again too (its caches and pages are cold after
			// another process ran), or interleaving favours PyTorch.
			if r+1 < p.Runs {
				for i := 0; i < p.Warmup; i++ {
					step()
				}
			}
		}
	}
	st.Value = median(vals)
	st.StepMsMedian = round2(1000 * median(stepSec))
	st.WaitedS = float64(int(st.WaitedS*10+0.5)) / 10
	return st
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func round2(v float64) float64 {
	if v < 0 {
		return -float64(int64(-v*100+0.5)) / 100
	}
	return float64(int64(v*100+0.5)) / 100
}

// ---------------------------------------------------------------- /proc

// procStatusKB reads a "Key:   N kB" line of /proc/self/status (VmRSS, VmHWM).
func procStatusKB(key string) int64 { return statusKB("/proc/self/status", key) }

// statusKB reads a "Key:   N kB" line of a /proc/PID/status file.
func statusKB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key+":") {
			f := strings.Fields(line[len(key)+1:])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func rssKB() int64 { return procStatusKB("VmRSS") }
func hwmKB() int64 { return procStatusKB("VmHWM") }

// resetHWM trims the heap and sets VmHWM back to the current RSS (Linux >= 4.0); false when
// the kernel refuses, and the high-water mark is then the whole process's.
func resetHWM() bool {
	// the heap keeps the previous workload's freed pages (rl's malloc
	// set-up never trims): give them back first, or they count as this one's
	tensor.MallocTrim()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// blasInUse lists the libblas files mapped into this process, resolved
// through the alternatives links, as torch_ref.py's blas_in_use does.
func blasInUse() string {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return "unknown"
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p := f[len(f)-1]
		if strings.Contains(p, "libblas") && strings.HasPrefix(p, "/") {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				p = r
			}
			seen[p] = true
		}
	}
	var libs []string
	for p := range seen {
		libs = append(libs, p)
	}
	sort.Strings(libs)
	if len(libs) == 0 {
		return "none"
	}
	return strings.Join(libs, ",")
}
