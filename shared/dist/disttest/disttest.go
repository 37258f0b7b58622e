// Package disttest starts a test binary again as the ranks of a
// data-parallel world (gloo ranks cannot share one process easily): the
// test's TestMain calls Worker, which runs the worker named by
// RL_DIST_TEST_WORKER instead of the tests, and a test calls World. It is
// imported by tests only.
package disttest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Worker runs the worker of workers that RL_DIST_TEST_WORKER names and
// exits (3 when it fails), or returns when the variable is unset.
func Worker(workers map[string]func() error) {
	w := os.Getenv("RL_DIST_TEST_WORKER")
	if w == "" {
		return
	}
	if err := workers[w](); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

// FreePort is a TCP port free on the loopback now.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Rank is one rank's output (stdout and stderr), exit error and time.
type Rank struct {
	Out  string
	Err  error
	Took time.Duration
}

// World runs worker as world processes of this test binary with
// torchrun's environment (one thread each) and returns each rank's
// result; it fails the test when they do not all finish within limit.
func World(t *testing.T, worker string, world int, limit time.Duration) []Rank {
	t.Helper()
	port := FreePort(t)
	cmds := make([]*exec.Cmd, world)
	outs := make([]*bytes.Buffer, world)
	for r := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "RL_DIST_TEST_WORKER="+worker, "OMP_NUM_THREADS=1",
			"RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world), "LOCAL_RANK="+strconv.Itoa(r),
			"LOCAL_WORLD_SIZE="+strconv.Itoa(world), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		outs[r] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outs[r], outs[r]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[r] = cmd
	}
	res := make([]Rank, world)
	began := time.Now()
	done := make(chan int, world)
	for r := range cmds {
		go func() { res[r].Err = cmds[r].Wait(); res[r].Took = time.Since(began); done <- r }()
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for range cmds {
		select {
		case <-done:
		case <-timer.C:
			for _, c := range cmds {
				_ = c.Process.Kill()
			}
			t.Fatalf("the world of %d did not finish within %s", world, limit)
		}
	}
	for r := range res {
		res[r].Out = outs[r].String()
	}
	return res
}
