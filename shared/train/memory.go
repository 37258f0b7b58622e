package train

import (
	"fmt"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// MemoryPlan is what a run holds before its first step, in bytes: the
// models' weights (quantised bases at their stored size), the gradients
// and AdamW's two moments of the trainable tensors (float32), the frozen
// models beside the trained one (a DPO reference), and a rough activation
// estimate for one micro-batch.
type MemoryPlan struct {
	Weights, Gradients, Optimizer, Frozen, Activations int64
}

// Total sums the plan.
func (p MemoryPlan) Total() int64 {
	return p.Weights + p.Gradients + p.Optimizer + p.Frozen + p.Activations
}

// planMemory estimates a run's memory. Activations are estimated per
// token as a decoder layer keeps them for backward (about 16 widths and
// 4 attention rows per head in float32; one width per layer with gradient
// checkpointing, plus one layer's worth) plus the logits (3 copies of the
// vocabulary: logits, log-softmax, its gradient).
func planMemory(models []*model.Model, trainable []model.Param, a *Args, tokensPerMicro int) MemoryPlan {
	var p MemoryPlan
	trained := map[*model.Model]bool{}
	isTrainable := map[*tensor.Tensor]bool{}
	for _, t := range trainable {
		isTrainable[t.T] = true
		n := int64(t.T.Numel())
		p.Gradients += 4 * n
		p.Optimizer += 8 * n
	}
	seen := map[*model.Model]bool{}
	for _, m := range models {
		if m == nil || seen[m] {
			continue
		}
		seen[m] = true
		var w int64
		for _, q := range m.Params() {
			w += int64(q.T.Numel()) * int64(q.T.DType().Size())
			if isTrainable[q.T] {
				trained[m] = true
			}
		}
		stored, _ := m.QuantizedBytes()
		w += stored
		if m.HasAdapters() {
			trained[m] = true
			for _, q := range m.Trainable() {
				w += 4 * int64(q.T.Numel())
			}
		}
		if trained[m] {
			p.Weights += w
			c := m.Config
			H, L, V, T := int64(c.HiddenSize), int64(c.NumLayers), int64(c.VocabSize), int64(a.PerDeviceTrainBatchSize)
			perLayer := 16*H + 4*int64(c.NumHeads)*int64(tokensPerMicro)/max(T, 1)
			layers := L * perLayer
			if a.GradientCheckpointing {
				layers = L*H + perLayer
			}
			p.Activations += 4 * int64(tokensPerMicro) * (layers + 3*V)
		} else {
			p.Frozen += w
		}
	}
	return p
}

// peakRSS is the process's peak resident set size in bytes (getrusage's
// ru_maxrss, KB on Linux), 0 when unknown.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

func gib(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }

func (p MemoryPlan) log(l zerolog.Logger) {
	l.Info().Str("weights", gib(p.Weights)).Str("gradients", gib(p.Gradients)).Str("optimizer", gib(p.Optimizer)).
		Str("frozen_models", gib(p.Frozen)).Str("activations_estimate", gib(p.Activations)).Str("total", gib(p.Total())).
		Msg("memory plan")
}
