package dist

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rlsuite/rl/shared/dist/disttest"
	"github.com/rlsuite/rl/shared/tensor"
)

// The tests start this test binary again as the ranks of a world (gloo
// ranks cannot share one process easily): TestMain runs the worker named
// by RL_DIST_TEST_WORKER instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("RL_DIST_TEST_WORKER") != "" {
		tensor.SetNumThreads(1)
		disttest.Worker(workers)
	}
	os.Exit(m.Run())
}

var workers = map[string]func() error{
	"collectives": collectivesWorker,
	"dead":        deadWorker,
	"stuck":       stuckWorker,
}

func openFromEnv(timeout time.Duration) (*Group, error) {
	env, err := ReadEnv()
	if err != nil {
		return nil, err
	}
	// a generous rendezvous: the ranks start slowly on a loaded machine
	return Open(env, Options{Timeout: timeout, JoinTimeout: time.Minute})
}

func f64s(t *tensor.Tensor) (v []float64) {
	tensor.Tidy(func() { v = t.To(tensor.Float64, tensor.CPU).Float64s() })
	return v
}

func gradF64s(t *tensor.Tensor) (v []float64) {
	tensor.Tidy(func() { v = t.Grad().To(tensor.Float64, tensor.CPU).Float64s() })
	return v
}

func closeTo(got, want []float64, tol float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			return fmt.Errorf("got %v, want %v", got, want)
		}
	}
	return nil
}

// collectivesWorker checks every collective against values computed from
// the formula: rank r holds r+1 scaled tensors, so the world's mean is
// (world+1)/2 times the base.
func collectivesWorker() error {
	g, err := openFromEnv(20 * time.Second)
	if err != nil {
		return err
	}
	defer g.Close()
	r, w := float64(g.Rank), float64(g.WorldSize)
	meanScale := (w + 1) / 2
	// all-reduce (average and sum) of two dtypes and two shapes: one bucket
	// per dtype, each flattened
	a := tensor.FromFloat32s([]float32{1 * float32(r+1), 2 * float32(r+1), 3 * float32(r+1)}, 3)
	b := tensor.FromFloat32s([]float32{-1 * float32(r+1), 0.5 * float32(r+1), 4 * float32(r+1), 8 * float32(r+1)}, 2, 2)
	c := tensor.FromFloat32s([]float32{10 * float32(r+1)}, 1).To(tensor.Float64, tensor.CPU)
	defer a.Free()
	defer b.Free()
	defer c.Free()
	if err := g.AllReduce([]*tensor.Tensor{a, b, c}, true); err != nil {
		return err
	}
	for _, cs := range []struct {
		name string
		t    *tensor.Tensor
		want []float64
	}{{"a", a, []float64{1, 2, 3}}, {"b", b, []float64{-1, 0.5, 4, 8}}, {"c", c, []float64{10}}} {
		got := f64s(cs.t)
		for i := range cs.want {
			cs.want[i] *= meanScale
		}
		if err := closeTo(got, cs.want, 1e-6); err != nil {
			return fmt.Errorf("all_reduce avg %s: %w", cs.name, err)
		}
	}
	if err := g.AllReduce([]*tensor.Tensor{c}, false); err != nil {
		return err
	}
	if err := closeTo(c.Float64s(), []float64{10 * meanScale * w}, 1e-9); err != nil {
		return fmt.Errorf("all_reduce sum: %w", err)
	}
	// gradients: only rank 0 has one; the others contribute zeros
	p := tensor.FromFloat32s([]float32{1, 2}, 2)
	defer p.Free()
	p.SetRequiresGrad(true)
	if g.Rank == 0 {
		tensor.Tidy(func() { p.Mul(p).Sum().Backward() }) // grad 2p = [2 4]
	}
	if err := g.AllReduceGrads([]*tensor.Tensor{p}); err != nil {
		return err
	}
	if err := closeTo(gradF64s(p), []float64{2 / w, 4 / w}, 1e-6); err != nil {
		return fmt.Errorf("all_reduce grads: %w", err)
	}
	// broadcast from rank 0 into a parameter that requires grad
	q := tensor.FromFloat32s([]float32{float32(r) + 5, float32(r) * 7}, 2)
	defer q.Free()
	q.SetRequiresGrad(true)
	if err := g.Broadcast([]*tensor.Tensor{q}, 0); err != nil {
		return err
	}
	if err := closeTo(f64s(q), []float64{5, 0}, 0); err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	// all-gather of scalars
	all, err := g.AllGather([]float64{r, r * 10, -r})
	if err != nil {
		return err
	}
	for k, v := range all {
		if err := closeTo(v, []float64{float64(k), float64(k) * 10, -float64(k)}, 0); err != nil {
			return fmt.Errorf("all_gather rank %d: %w", k, err)
		}
	}
	m, err := g.Mean([]float64{r})
	if err != nil {
		return err
	}
	if err := closeTo(m, []float64{(w - 1) / 2}, 1e-12); err != nil {
		return fmt.Errorf("mean: %w", err)
	}
	return g.Barrier()
}

// deadWorker: the last rank leaves right after joining; the others' next
// all-reduce must fail with an error, not hang.
func deadWorker() error {
	g, err := openFromEnv(5 * time.Second)
	if err != nil {
		return err
	}
	if g.Rank == g.WorldSize-1 {
		os.Exit(0) // dies without a word
	}
	t := tensor.FromFloat32s([]float32{1}, 1)
	defer t.Free()
	began := time.Now()
	err = g.AllReduce([]*tensor.Tensor{t}, true)
	if err == nil {
		return fmt.Errorf("all_reduce with a dead peer succeeded")
	}
	fmt.Printf("DEAD-PEER-ERROR after %.1fs: %v\n", time.Since(began).Seconds(), err)
	return nil
}

// stuckWorker: the last rank stays alive but never joins the all-reduce;
// the others must fail at the group's timeout (2 s).
func stuckWorker() error {
	g, err := openFromEnv(2 * time.Second)
	if err != nil {
		return err
	}
	if g.Rank == g.WorldSize-1 {
		time.Sleep(4 * time.Second)
		os.Exit(0)
	}
	t := tensor.FromFloat32s([]float32{1}, 1)
	defer t.Free()
	began := time.Now()
	if err := g.AllReduce([]*tensor.Tensor{t}, true); err == nil {
		return fmt.Errorf("all_reduce with a stuck peer succeeded")
	} else {
		fmt.Printf("STUCK-PEER-ERROR after %.1fs: %v\n", time.Since(began).Seconds(), err)
	}
	return nil
}

// FreePort asks the kernel for a free TCP port on loopback.
func TestCollectivesTwoRanks(t *testing.T) {
	for r, res := range disttest.World(t, "collectives", 2, 60*time.Second) {
		if res.Err != nil {
			t.Errorf("rank %d: %v\n%s", r, res.Err, res.Out)
		}
	}
}

func TestDeadPeerFailsInsteadOfHanging(t *testing.T) {
	res := disttest.World(t, "dead", 2, 60*time.Second)
	r0 := res[0]
	if r0.Err != nil {
		t.Fatalf("rank 0: %v\n%s", r0.Err, r0.Out)
	}
	if !strings.Contains(r0.Out, "DEAD-PEER-ERROR") || !strings.Contains(r0.Out, "dist: rank 0 of 2: all_reduce") {
		t.Fatalf("rank 0's error does not name the rank and the operation:\n%s", r0.Out)
	}
	if strings.Contains(r0.Out, "frame #") {
		t.Errorf("the error carries a C++ stack trace:\n%s", r0.Out)
	}
	if r0.Took > 30*time.Second {
		t.Errorf("rank 0 took %s to notice its dead peer (timeout 5s)", r0.Took)
	}
	t.Logf("rank 0: %s", strings.TrimSpace(r0.Out))
}

func TestReadEnv(t *testing.T) {
	vars := []string{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"}
	for _, v := range vars {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	e, err := ReadEnv()
	if err != nil || e.WorldSize != 1 {
		t.Fatalf("no env: %+v, %v; want a world of 1", e, err)
	}
	set := func(kv ...string) {
		for _, v := range vars {
			os.Unsetenv(v)
		}
		for i := 0; i < len(kv); i += 2 {
			os.Setenv(kv[i], kv[i+1])
		}
	}
	set("WORLD_SIZE", "4", "RANK", "3", "LOCAL_RANK", "1", "LOCAL_WORLD_SIZE", "2", "MASTER_ADDR", "node0", "MASTER_PORT", "1234", "TORCHELASTIC_USE_AGENT_STORE", "True", "TORCHELASTIC_RESTART_COUNT", "2")
	e, err = ReadEnv()
	want := Env{Rank: 3, WorldSize: 4, LocalRank: 1, LocalWorldSize: 2, MasterAddr: "node0", MasterPort: 1234, AgentStore: true, RestartCount: 2}
	if err != nil || e != want {
		t.Fatalf("got %+v, %v; want %+v", e, err, want)
	}
	for _, bad := range []struct {
		kv   []string
		want string
	}{
		{[]string{"WORLD_SIZE", "two"}, "WORLD_SIZE"},
		{[]string{"WORLD_SIZE", "2"}, "RANK is not set"},
		{[]string{"WORLD_SIZE", "2", "RANK", "2"}, "RANK=2 is not below WORLD_SIZE=2"},
		{[]string{"WORLD_SIZE", "2", "RANK", "1", "MASTER_PORT", "70000"}, "MASTER_PORT"},
		{[]string{"WORLD_SIZE", "2", "RANK", "-1"}, "RANK"},
	} {
		set(bad.kv...)
		if _, err := ReadEnv(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: got %v, want an error containing %q", bad.kv, err, bad.want)
		}
	}
}

func TestStuckPeerTimesOut(t *testing.T) {
	res := disttest.World(t, "stuck", 2, 60*time.Second)
	r0 := res[0]
	if r0.Err != nil {
		t.Fatalf("rank 0: %v\n%s", r0.Err, r0.Out)
	}
	if !strings.Contains(r0.Out, "STUCK-PEER-ERROR") || !strings.Contains(r0.Out, "dist: rank 0 of 2: all_reduce") ||
		!strings.Contains(r0.Out, "timeout 2s") {
		t.Fatalf("rank 0's error does not name the rank, the operation and the timeout:\n%s", r0.Out)
	}
	t.Logf("rank 0: %s", strings.TrimSpace(r0.Out))
}

// TestSelfCheckWorldOfOne: a process group of one on the CPU (gloo) runs
// every collective with the results of their formulas (dist.SelfCheck;
// gpu-check runs the same on cuda:0 with NCCL), and NCCL is refused with
// a clear error by a CPU-only build.
func TestSelfCheckWorldOfOne(t *testing.T) {
	summary, err := SelfCheck(tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(summary, "gloo world of 1 on cpu") {
		t.Errorf("summary %q", summary)
	}
	if NCCLBuilt() {
		return
	}
	_, err = Open(Env{WorldSize: 1, LocalWorldSize: 1, MasterAddr: "127.0.0.1", MasterPort: 1}, Options{NCCL: true})
	if err == nil || !strings.Contains(err.Error(), "NCCL (CUDA tensors) asked for, but this rl was built against a CPU libtorch") {
		t.Errorf("NCCL on a CPU build: %v", err)
	}
}
