package tensor

import (
	"fmt"
	"sync"
	"time"
)

// MatmulGFLOPs is this CPU's throughput for an n×n by n×n matmul in dtype on
// the intra-op threads, in GFLOP/s: the best of reps timed matmuls after
// one warm-up. n = 1024 takes about 0.1 s in all on 2 cores.
func MatmulGFLOPs(dtype DType, n int64, reps int) (gflops float64, err error) {
	if n < 1 || reps < 1 {
		return 0, fmt.Errorf("timing a matmul: want n and reps >= 1, have %d and %d", n, reps)
	}
	defer Recover(&err, fmt.Sprintf("timing a %d×%d matmul in %v", n, n, dtype))
	best := time.Duration(1<<63 - 1)
	Tidy(func() {
		// constant operands: the time does not depend on the values, and
		// Randn would advance the generator a training run has seeded
		a := Ones([]int64{n, n}, dtype, CPU).MulScalar(0.5)
		b := Ones([]int64{n, n}, dtype, CPU).MulScalar(0.25)
		for i := 0; i <= reps; i++ {
			t := time.Now()
			a.Matmul(b).Free()
			if d := time.Since(t); i > 0 && d < best {
				best = d
			}
		}
	})
	return 2 * float64(n) * float64(n) * float64(n) / best.Seconds() / 1e9, nil
}

// BF16Speed compares bfloat16 with float32 matmuls on this CPU (1024³,
// best of 3 each, measured once a process): --bf16 is faster only where
// the CPU multiplies bfloat16 faster (AMX, or AVX512-BF16 on AMD Zen 4/5;
// an Intel Xeon without AMX, as some VMs expose, runs them slower).
func BF16Speed() (bf16, fp32 float64, err error) {
	bf16Once.Do(func() {
		if bf16Rate[1], bf16Err = MatmulGFLOPs(Float32, 1024, 3); bf16Err == nil {
			bf16Rate[0], bf16Err = MatmulGFLOPs(BFloat16, 1024, 3)
		}
	})
	return bf16Rate[0], bf16Rate[1], bf16Err
}

var (
	bf16Once sync.Once
	bf16Rate [2]float64
	bf16Err  error
)
