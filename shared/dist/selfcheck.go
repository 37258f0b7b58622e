package dist

import (
	"fmt"
	"net"
	"time"

	"github.com/rlsuite/rl/shared/tensor"
)

// SelfCheck opens a process group of one (this process, rank 0, hosting
// the store on a free loopback port) for tensors on dev, gloo for the CPU
// and NCCL for CUDA as the trainers choose, and checks each collective
// against its formula: in a world of one the mean of x is x, broadcast
// from rank 0 keeps x, all-gather returns [vals]. It returns what it
// checked. `go tool task gpu-check` runs it on cuda:0; the tests on the CPU.
func SelfCheck(dev tensor.Device) (summary string, err error) {
	defer tensor.Recover(&err, "dist: self-check")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("dist: self-check: a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	g, err := Open(Env{WorldSize: 1, LocalWorldSize: 1, MasterAddr: "127.0.0.1", MasterPort: port},
		Options{Timeout: time.Minute, NCCL: dev.IsCUDA(), Device: dev.Index()})
	if err != nil {
		return "", err
	}
	defer g.Close()
	want := []float32{1, -2, 3.5, 4}
	var got, gotB []float32
	tensor.Tidy(func() {
		x := tensor.Float32sOn(want, tensor.Float32, dev, 2, 2)
		y := tensor.Float32sOn(want, tensor.Float32, dev, 4)
		if err = g.AllReduce([]*tensor.Tensor{x, y}, true); err != nil {
			return
		}
		if err = g.Broadcast([]*tensor.Tensor{y}, 0); err != nil {
			return
		}
		if x.Device() != dev || y.Device() != dev {
			err = fmt.Errorf("dist: self-check: the collectives moved the tensors from %s to %s", dev, x.Device())
			return
		}
		got, gotB = x.Float32s(), y.Float32s()
	})
	if err != nil {
		return "", err
	}
	for i := range want {
		if got[i] != want[i] || gotB[i] != want[i] {
			return "", fmt.Errorf("dist: self-check: all_reduce(avg) and broadcast of %v on %s gave %v and %v", want, dev, got, gotB)
		}
	}
	all, err := g.AllGather([]float64{0.25, 7})
	if err != nil {
		return "", err
	}
	if len(all) != 1 || len(all[0]) != 2 || all[0][0] != 0.25 || all[0][1] != 7 {
		return "", fmt.Errorf("dist: self-check: all_gather of [0.25 7] gave %v", all)
	}
	if err := g.Barrier(); err != nil {
		return "", err
	}
	backend := "gloo"
	if dev.IsCUDA() {
		backend = "NCCL"
	}
	return fmt.Sprintf("%s world of 1 on %s: all_reduce(avg) and broadcast of %v exact, all_gather [0.25 7] exact, barrier", backend, dev, want), nil
}
