package model

import (
	"fmt"
	"syscall"

	"github.com/rlsuite/rl/shared/safetensors"
)

// maxLayers and maxDim bound config.json's sizes before anything is built
// from them: far above any real model, low enough that shapes cannot
// overflow and a typo (n_layer 1e18) is an error rather than a hang.
const (
	maxLayers = 1 << 12
	maxDim    = 1 << 24
)

// NumParamsFor is the parameter count of a model built from c with head h,
// computed without building it (in float64, so that absurd sizes do not
// overflow).
func NumParamsFor(c *Config, h Head) float64 {
	count := func(layers int) float64 {
		cc := *c
		cc.NumLayers = layers
		var n float64
		for _, s := range paramShapes(&cc, h) {
			p := 1.0
			for _, d := range s {
				p *= float64(d)
			}
			n += p
		}
		return n
	}
	base, one := count(0), count(1)
	return base + float64(c.NumLayers)*(one-base)
}

// memoryBytes is the machine's physical memory, 0 when unknown.
var memoryBytes = func() float64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	return float64(si.Totalram) * float64(si.Unit)
}

// checkMemory refuses a model whose float32 parameters alone would not fit in the machine's memory, before any of it is allocated.
func checkMemory(c *Config, h Head) error {
	n := NumParamsFor(c, h)
	mem := memoryBytes()
	if mem <= 0 || 4*n <= mem {
		return nil
	}
	return fmt.Errorf("config.json's sizes (%d layers, width %d, intermediate %d, vocab %d, %d positions) make %.3g parameters, %s in float32: more than this machine's %s of memory; check the sizes in config.json",
		c.NumLayers, c.HiddenSize, c.IntermediateSize, c.VocabSize, c.MaxPositions, n, humanBytes(4*n), humanBytes(mem))
}

func humanBytes(b float64) string {
	for _, u := range []string{"B", "KB", "MB", "GB", "TB", "PB"} {
		if b < 1000 {
			return fmt.Sprintf("%.3g %s", b, u)
		}
		b /= 1000
	}
	return fmt.Sprintf("%.3g EB", b)
}

// CheckFinite reports the first tensor of f (in name order) that holds a
// NaN or an infinity: such weights give NaN logits and empty completions.
func CheckFinite(f *safetensors.File, where string) error {
	for _, n := range f.Names() {
		if i := f.Tensors[n].FirstNonFinite(); i >= 0 {
			return fmt.Errorf("%s: tensor %s holds a non-finite value (NaN or Inf) at element %d: the weights are corrupt (a diverged run?); use an earlier checkpoint", where, n, i)
		}
	}
	return nil
}
