package train

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rlsuite/rl/shared/safetensors"
)

// killEnv names the output dir of the child run TestKillHelper does.
const killEnv = "RL_TEST_KILL_RUN_DIR"

// killRun is the run the kill test interrupts: a checkpoint after every
// step, so that a SIGKILL at a random moment often falls inside a save.
func killRun(t *testing.T, dir string) {
	m := tinyLM(t)
	defer m.Free()
	tr := newTrainer(t, dir, m)
	tr.Args.MaxSteps, tr.Args.SaveSteps, tr.Args.EvalStrategy = 12, 1, "no"
	if cks, err := Checkpoints(dir); err == nil && len(cks) > 0 {
		tr.Args.ResumeFromCheckpoint = "last"
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestKillHelper is the child process of TestSIGKILLDuringSavesResumesExactly.
func TestKillHelper(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("the child of TestSIGKILLDuringSavesResumesExactly")
	}
	killRun(t, dir)
}

func weights(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	f, err := safetensors.ReadModelDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for name, ten := range f.Tensors {
		out[name] = ten.Data
	}
	return out
}

// TestSIGKILLDuringSavesResumesExactly: a run killed with SIGKILL at
// random moments (a checkpoint is written every step, so many kills land
// in a save) and resumed with resume_from_checkpoint last, as often as it
// takes, ends with the weights of an uninterrupted run, bit for bit.
func TestSIGKILLDuringSavesResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	full := t.TempDir()
	killRun(t, full)
	want := weights(t, full)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := func(dir string) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^TestKillHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), killEnv+"="+dir)
		return cmd
	}
	// how long a whole child run takes, to spread the kills over it
	began := time.Now()
	if out, err := child(t.TempDir()).CombinedOutput(); err != nil {
		t.Fatalf("child run: %v\n%s", err, out)
	}
	span := time.Since(began)
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 3 {
		dir := t.TempDir()
		kills := 0
		for range 4 { // up to 4 kills, then let it finish
			cmd := child(dir)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("trial %d: child failed: %v", trial, err)
				}
			case <-time.After(time.Duration(float64(span) * (0.3 + 0.6*rng.Float64()))):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				kills++
				continue
			}
			break
		}
		if out, err := child(dir).CombinedOutput(); err != nil {
			t.Fatalf("trial %d: resuming after %d kills: %v\n%s", trial, kills, err, out)
		}
		got := weights(t, dir)
		if len(got) != len(want) {
			t.Fatalf("trial %d: %d tensors, want %d", trial, len(got), len(want))
		}
		for name, w := range want {
			if !slices.Equal(got[name], w) {
				t.Errorf("trial %d (%d kills): %s differs from the uninterrupted run", trial, kills, name)
			}
		}
		leftovers, _ := filepath.Glob(filepath.Join(dir, "checkpoint-*.tmp"))
		t.Logf("trial %d: %d kills, final weights bit-identical; %d partial dirs left", trial, kills, len(leftovers))
	}
}
