package tensor

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssKB reads the resident set size from /proc/self/statm.
func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()) / 1024
}

// BenchmarkOpOverhead measures an 8x256 float add plus free through this
// package (the brief's yardstick: ts.Tensor 11-12 us, libtch 0.7 us), and
// the RSS growth over 1,000,000 ops (target under 1 MB).
func BenchmarkOpOverhead(b *testing.B) {
	SetNumThreads(1)
	x := Ones([]int64{8, 256}, Float32, CPU)
	y := Ones([]int64{8, 256}, Float32, CPU)
	defer x.Free()
	defer y.Free()
	for i := 0; i < 10000; i++ { // warm up allocator caches
		x.Add(y).Free()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.Add(y).Free()
	}
	b.StopTimer()
	const n = 1_000_000
	before := rssKB()
	start := time.Now()
	Tidy(func() {})
	for i := 0; i < n; i++ {
		x.Add(y).Free()
	}
	el := time.Since(start)
	growth := rssKB() - before
	b.ReportMetric(float64(el.Nanoseconds())/n/1000, "us/op_1M")
	b.ReportMetric(float64(growth)/1024, "MB_rss_growth_1M")
	b.Logf("1,000,000 adds: %.2f us/op, RSS growth %d KB (targets: < 2 us, < 1 MB)", float64(el.Nanoseconds())/n/1000, growth)
}

// BenchmarkOpOverheadTidy is the same through a Tidy scope per 100 ops, as
// a training step frees its temporaries.
func BenchmarkOpOverheadTidy(b *testing.B) {
	SetNumThreads(1)
	x := Ones([]int64{8, 256}, Float32, CPU)
	y := Ones([]int64{8, 256}, Float32, CPU)
	defer x.Free()
	defer y.Free()
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		Tidy(func() {
			for j := 0; j < 100; j++ {
				x.Add(y)
			}
		})
	}
}
