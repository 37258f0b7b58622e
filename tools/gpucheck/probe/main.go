// Command probe is gpu-check's helper, built against the CUDA libtorch
// next to rl (tools/gpucheck builds it): checks that need rl's packages
// in-process. Each prints lines "PASS|FAIL|INFO name: detail".
//
//	probe gpus [DEV]        the number of CUDA devices libtorch sees
//	probe nccl [DEV]        a 1-process group (NCCL on cuda, gloo on cpu): collectives of known tensors
//	probe throughput [DEV]  SFT training tokens/s, tiny and gpt2s shapes
//
// DEV is cuda (cuda:0, the default) or cpu (gpu-check's --as-cuda).
package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/train"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: probe gpus|nccl|throughput [cuda|cpu]")
		os.Exit(2)
	}
	dev := tensor.CUDA(0)
	if len(os.Args) == 3 && os.Args[2] == "cpu" {
		dev = tensor.CPU
	}
	var err error
	switch os.Args[1] {
	case "gpus":
		fmt.Println(tensor.CUDADeviceCount())
	case "nccl":
		err = ncclCheck(dev)
	case "throughput":
		err = throughput(dev)
	default:
		err = fmt.Errorf("unknown probe %q", os.Args[1])
	}
	if err != nil {
		fmt.Println("FAIL " + os.Args[1] + ": " + err.Error())
		os.Exit(1)
	}
}

// ncclCheck is dist.SelfCheck on dev (NCCL for a CUDA device).
func ncclCheck(dev tensor.Device) error {
	if dev.IsCUDA() && !dist.NCCLBuilt() {
		return fmt.Errorf("this probe was built without NCCL (a CPU libtorch)")
	}
	summary, err := dist.SelfCheck(dev)
	if err != nil {
		return err
	}
	fmt.Println("PASS nccl 1-process group: " + summary)
	return nil
}

// shape is one of tools/bench's SFT shapes.
type shape struct {
	name, preset     string
	vocab, seq, rows int
}

var shapes = []shape{
	{"tiny", "tiny", 8192, 128, 8},
	{"gpt2s", "gpt2-small", 50257, 128, 4},
}

// throughput times rl's SFT step (forward, cross-entropy, backward, AdamW,
// loss.item() each step, which waits for the GPU) on random tokens: the
// mean over 20 steps after 3 warm-up steps.
func throughput(dev tensor.Device) (err error) {
	defer tensor.Recover(&err, "throughput")
	for _, s := range shapes {
		for _, bf16 := range []bool{false, true} {
			tps, loss, err := sftTokensPerSecond(s, dev, bf16)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			mode := "float32"
			if bf16 {
				mode = "bf16 autocast"
			}
			fmt.Printf("INFO throughput sft %s %s: %.0f tokens/s on %s (batch %d x %d tokens, last loss %.4f)\n", s.name, mode, tps, dev, s.rows, s.seq, loss)
		}
	}
	return nil
}

func sftTokensPerSecond(s shape, dev tensor.Device, bf16 bool) (tps, loss float64, err error) {
	cfg, err := model.Preset(s.preset, s.vocab)
	if err != nil {
		return 0, 0, err
	}
	cfg.MaxPositions = s.seq
	tensor.ManualSeed(0)
	m, err := model.New(cfg, model.LMHead, tensor.Float32, dev)
	if err != nil {
		return 0, 0, err
	}
	defer m.Free()
	m.SetRequiresGrad(true)
	a := train.DefaultArgs()
	opt := train.NewAdamW(m.Params(), &a)
	defer opt.Free()
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int64, s.rows*(s.seq+1))
	for i := range ids {
		ids[i] = int64(rng.IntN(s.vocab))
	}
	xs, ys := make([]int64, 0, s.rows*s.seq), make([]int64, 0, s.rows*s.seq)
	for r := 0; r < s.rows; r++ {
		row := ids[r*(s.seq+1) : (r+1)*(s.seq+1)]
		xs, ys = append(xs, row[:s.seq]...), append(ys, row[1:]...)
	}
	x := tensor.Int64sOn(xs, dev, int64(s.rows), int64(s.seq)).Keep()
	y := tensor.Int64sOn(ys, dev, int64(s.rows*s.seq)).Keep()
	defer x.Free()
	defer y.Free()
	step := func() float64 {
		var l float64
		tensor.Tidy(func() {
			var lt *tensor.Tensor
			fwd := func() {
				logits := m.Forward(&model.Input{IDs: x})
				lt = logits.View(-1, logits.Size(-1)).CrossEntropy(y, -100, tensor.ReduceMean)
			}
			if bf16 {
				tensor.Autocast(tensor.BFloat16, fwd)
			} else {
				fwd()
			}
			l = lt.Item()
			lt.Backward()
		})
		opt.Update(1e-4)
		opt.ZeroGrad()
		return l
	}
	for i := 0; i < 3; i++ {
		step()
	}
	const n = 20
	began := time.Now()
	for i := 0; i < n; i++ {
		loss = step()
	}
	el := time.Since(began).Seconds()
	if math.IsNaN(loss) {
		return 0, loss, fmt.Errorf("loss is NaN")
	}
	return float64(n*s.rows*s.seq) / el, loss, nil
}
