// Package metrics logs, averages, plots and reports the progress of the metrics every trainer records.
package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Options configures a Logger; the zero value starts a fresh log with no known total.
type Options struct {
	// TotalSteps is the number of optimiser steps of the run; 0 (the default)
	// means unknown, and the console line then shows no percentage or ETA.
	TotalSteps int
	// Resume appends to an existing metrics.jsonl instead of truncating it,
	// first dropping the entries with step > ResumeStep (default false).
	Resume bool
	// ResumeStep is the step the run resumes from; with Resume, step rates
	// and the ETA are measured from it (default 0).
	ResumeStep int
}

// Logger appends metric entries to dir/metrics.jsonl and prints one console line per entry.
// Its methods are safe for concurrent use.
type Logger struct {
	mu        sync.Mutex
	path      string
	f         *os.File
	log       zerolog.Logger
	opts      Options
	start     time.Time
	startStep int
	history   []Entry
	now       func() time.Time

	// last num_tokens seen and when, to derive tok/s between log points.
	lastTokens     float64
	lastTokensTime time.Time
	haveTokens     bool
}

// NewLogger creates dir if needed and opens dir/metrics.jsonl: truncated for a
// fresh run, or with opts.Resume kept up to opts.ResumeStep and appended to.
func NewLogger(dir string, log zerolog.Logger, opts Options) (*Logger, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	l := &Logger{
		path: filepath.Join(dir, FileName),
		log:  log,
		opts: opts,
		now:  time.Now,
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if opts.Resume {
		l.startStep = opts.ResumeStep
		if err := l.truncateForResume(); err != nil {
			return nil, err
		}
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(l.path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	l.f = f
	l.start = l.now()
	return l, nil
}

// truncateForResume loads the existing log, keeps the entries up to the
// resume step and rewrites the file with them (via a rename, so a crash
// leaves either the old or the new file).
func (l *Logger) truncateForResume() error {
	data, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	entries, dropped, err := readEntries(bytes.NewReader(data), l.path, true)
	if err != nil {
		return fmt.Errorf("metrics: resume: %w", err)
	}
	if dropped {
		l.log.Warn().Str("file", l.path).Msg("metrics: dropped a partly written last line")
	}
	kept := slices.DeleteFunc(entries, func(e Entry) bool { return e.Step > l.opts.ResumeStep })
	var buf bytes.Buffer
	for _, e := range kept {
		b, err := e.MarshalJSON()
		if err != nil {
			return fmt.Errorf("metrics: %s: %w", l.path, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if n := len(entries) - len(kept); n > 0 || dropped {
		l.log.Info().Msgf("metrics: resuming %s at step %d, dropped %d later entries", l.path, l.opts.ResumeStep, n)
	}
	l.history = kept
	return nil
}

// Path returns the path of the metrics.jsonl file.
func (l *Logger) Path() string { return l.path }

// Log appends {"step": step, ...values} to metrics.jsonl, written through at
// once so a killed run keeps its log, and prints a console line. A "step"
// key in values is ignored. Recognised keys: loss, learning_rate (shown as
// lr), epoch, tokens_per_second, or num_tokens (a running token count from
// which tok/s is derived between calls).
func (l *Logger) Log(step int, values map[string]float64) error {
	e := Entry{Step: step, Values: maps.Clone(values)}
	delete(e.Values, "step")
	if e.Values == nil {
		e.Values = map[string]float64{}
	}
	line, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("metrics: %s: %w", l.path, err)
	}
	line = append(line, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("metrics: %s: logger is closed", l.path)
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	l.history = append(l.history, e)
	l.log.Info().Msg(l.consoleLine(e, l.now()))
	return nil
}

// consoleLine renders e for the console, e.g.
// "step 120/500 (24%) loss 2.314 lr 4.8e-05 grad_norm 0.91 tok/s 3,120 elapsed 1m02s eta 2m10s".
func (l *Logger) consoleLine(e Entry, now time.Time) string {
	var b strings.Builder
	total := l.opts.TotalSteps
	if total > 0 {
		fmt.Fprintf(&b, "step %d/%d (%d%%)", e.Step, total, e.Step*100/total)
	} else {
		fmt.Fprintf(&b, "step %d", e.Step)
	}
	v := e.Values
	shown := map[string]bool{}
	show := func(key, label string) {
		if x, ok := v[key]; ok {
			fmt.Fprintf(&b, " %s %s", label, formatValue(x))
			shown[key] = true
		}
	}
	show("epoch", "epoch")
	show("loss", "loss")
	show("learning_rate", "lr")

	var tokRate float64
	haveRate := false
	if r, ok := v["tokens_per_second"]; ok {
		tokRate, haveRate = r, true
		shown["tokens_per_second"] = true
	} else if n, ok := v["num_tokens"]; ok {
		if l.haveTokens && now.After(l.lastTokensTime) && n >= l.lastTokens {
			tokRate, haveRate = (n-l.lastTokens)/now.Sub(l.lastTokensTime).Seconds(), true
		}
		l.lastTokens, l.lastTokensTime, l.haveTokens = n, now, true
		shown["num_tokens"] = true
	}

	rest := slices.Sorted(maps.Keys(v))
	for _, k := range rest {
		if !shown[k] {
			fmt.Fprintf(&b, " %s %s", k, formatValue(v[k]))
		}
	}
	if haveRate && !math.IsNaN(tokRate) && !math.IsInf(tokRate, 0) {
		fmt.Fprintf(&b, " tok/s %s", formatRate(tokRate))
	}
	elapsed := now.Sub(l.start)
	fmt.Fprintf(&b, " elapsed %s", FormatDuration(elapsed))
	if eta, ok := ETA(e.Step-l.startStep, total-l.startStep, elapsed); ok && total > 0 {
		fmt.Fprintf(&b, " eta %s", FormatDuration(eta))
	}
	return b.String()
}

// ETA estimates the time left for total units of work when done of them took
// elapsed, assuming a constant rate; ok is false when it cannot tell yet.
func ETA(done, total int, elapsed time.Duration) (eta time.Duration, ok bool) {
	if done <= 0 || total <= 0 || elapsed <= 0 {
		return 0, false
	}
	if done >= total {
		return 0, true
	}
	perUnit := float64(elapsed) / float64(done)
	return time.Duration(perUnit * float64(total-done)), true
}

// History returns a copy of the entries logged so far, including those kept
// from the previous run when resuming.
func (l *Logger) History() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, len(l.history))
	for i, e := range l.history {
		out[i] = Entry{Step: e.Step, Values: maps.Clone(e.Values)}
	}
	return out
}

// Close closes metrics.jsonl; later calls to Log fail and History still works.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
