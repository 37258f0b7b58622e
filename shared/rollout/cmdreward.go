package rollout

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultRewardTimeout bounds how long a reward program may take to answer
// one completion before the run stops with an error naming it.
const DefaultRewardTimeout = 60 * time.Second

// cmdProc is a running reward program: started once, fed one JSON line per
// completion, answering one line per completion, in order.
type cmdProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // its stdout, line by line; closed at EOF
	stderr *tailWriter
	done   chan struct{} // closed when it has exited
	err    error         // its exit status, once done
}

// tailWriter keeps the last 2 KB written (a program's stderr, for errors).
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > 2048 {
		w.buf = w.buf[len(w.buf)-2048:]
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(string(w.buf))
}

// start runs the program.
func (r *Reward) start() (*cmdProc, error) {
	if r.proc != nil {
		return r.proc, nil
	}
	p := &cmdProc{cmd: exec.Command(r.Cmd[0], r.Cmd[1:]...), lines: make(chan string, 64), stderr: &tailWriter{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	// its own process group, so that killing it kills what it started; and
	// Wait returns soon after it exits even if a child still holds stdout
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 2 * time.Second
	pr, pw := io.Pipe()
	p.cmd.Stdout = pw
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("reward program %s: %w", r.cmdLine(), err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		pr.CloseWithError(io.EOF)
	}()
	go func() {
		p.err = p.cmd.Wait() // waits for its stdout to be copied (or WaitDelay)
		pw.Close()
		close(p.done)
	}()
	r.proc = p
	return p, nil
}

func (r *Reward) cmdLine() string { return strings.Join(r.Cmd, " ") }

// stop closes the program's input and waits for it (killing it after a
// grace period).
func (r *Reward) stop() {
	p := r.proc
	if p == nil {
		return
	}
	r.proc = nil
	p.stdin.Close()
	go func() {
		for range p.lines { // answers nobody asked for
		}
	}()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// kill ends the program and its process group at once (after an error).
func (r *Reward) kill() {
	p := r.proc
	if p == nil {
		return
	}
	r.proc = nil
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	go func() {
		for range p.lines {
		}
	}()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// runCmd scores cs with the external program (CmdPrefix): one JSON object
// per completion in, one answer per completion out, each within the
// timeout. A program that exits, hangs or answers something else stops the
// run with an error naming it, the completion, and its stderr's tail.
func (r *Reward) runCmd(cs []*Completion) (out []float64, err error) {
	p, err := r.start()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			r.kill()
		}
	}()
	payload := make([][]byte, len(cs))
	for i, c := range cs {
		row := map[string]any{}
		for k, v := range c.Prompt.Row {
			row[k] = v
		}
		row["prompt"], row["completion"] = c.Prompt.Text, c.Text
		if payload[i], err = json.Marshal(row); err != nil {
			return nil, fmt.Errorf("reward %s: %w", r.Name, err)
		}
	}
	werr := make(chan error, 1)
	go func() { // write while reading: a program may answer line by line
		for _, b := range payload {
			if _, err := p.stdin.Write(append(b, '\n')); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultRewardTimeout
	}
	out = make([]float64, len(cs))
	for i := range cs {
		select {
		case l, ok := <-p.lines:
			if !ok {
				select {
				case <-p.done:
				case <-time.After(5 * time.Second):
				}
				return nil, fmt.Errorf("reward program %s exited (%v) after answering %d of %d completions%s", r.cmdLine(), exitStatus(p.err), i, len(cs), stderrTail(p))
			}
			v, perr := parseReward(l)
			if perr != nil {
				return nil, fmt.Errorf("reward program %s: answer %d is %q: %v", r.cmdLine(), i+1, truncate(l, 80), perr)
			}
			out[i] = v
		case <-time.After(timeout):
			return nil, fmt.Errorf("reward program %s gave no answer for completion %d of %d within %s (reward_timeout)%s", r.cmdLine(), i+1, len(cs), timeout, stderrTail(p))
		}
	}
	if err := <-werr; err != nil {
		return nil, fmt.Errorf("reward program %s: writing its input: %w", r.cmdLine(), err)
	}
	return out, nil
}

// parseReward reads one answer: a number, null, or {"reward": number|null}.
func parseReward(l string) (float64, error) {
	l = strings.TrimSpace(l)
	if strings.HasPrefix(l, "{") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			return 0, fmt.Errorf("not JSON: %v", err)
		}
		v, ok := obj["reward"]
		if !ok {
			return 0, errors.New(`an object needs a "reward" field`)
		}
		if v == nil {
			return math.NaN(), nil
		}
		f, ok := v.(float64)
		if !ok || math.IsInf(f, 0) {
			return 0, errors.New(`"reward" must be a finite number or null`)
		}
		return f, nil
	}
	if l == "null" || l == "None" {
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(l, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errors.New(`want a finite number, null, or {"reward": ...}`)
	}
	return v, nil
}

func exitStatus(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func stderrTail(p *cmdProc) string {
	if s := p.stderr.String(); s != "" {
		return "; its stderr ends: " + truncate(s, 500)
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
