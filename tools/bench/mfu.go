package main

import (
	"fmt"
	"slices"

	"github.com/rlsuite/rl/shared/tensor"
)

// Model FLOPs utilisation (MFU): a training row's achieved FLOP/s (its
// throughput times the model FLOPs of one unit: a token, a pair) over this
// machine's peak for the row's precision, measured in the same run with a
// large GEMM (the gemm bench). The model FLOPs are the PaLM convention
// (Chowdhery et al., 2022, appendix B): 6N per token for the forward and
// backward matmuls of N weights, plus 12·L·T·d for attention (QKᵀ and AV,
// forward and backward, the causal half counted too, as both sides compute
// it). N counts every weight a matmul reads: GPT-2's tied wte once (the
// LM head), not the position embeddings, which are a lookup.

// gemmN is the side of the square GEMMs that measure the peaks.
const gemmN = 2048

// Precisions of the peaks a row is compared with.
const (
	fp32 = "fp32"
	bf16 = "bf16"
)

// trainFlopsPerToken is one training token's model FLOPs: 6N + 12·L·T·d.
func trainFlopsPerToken(n int64, s shape) float64 {
	return 6*float64(n) + 12*float64(s.Layers*s.SeqLen*s.Width)
}

// forwardFlopsPerToken is a forward pass's share: 2N + 4·L·T·d.
func forwardFlopsPerToken(n int64, s shape) float64 {
	return 2*float64(n) + 4*float64(s.Layers*s.SeqLen*s.Width)
}

// matmulParams is N for a shape from its parameter count: for GPT-2 all
// but the position embeddings (SeqLen x Width rows of wpe); for a Llama
// shape (untied head) all but the input embeddings (Vocab x Width).
func matmulParams(params int64, s shape) int64 {
	if s.ConfigJSON != "" {
		return params - int64(s.Vocab*s.Width)
	}
	return params - int64(s.SeqLen*s.Width)
}

// rlGEMM measures the peaks: float32 (what fp32 training's matmuls run on,
// libtorch's BLAS) and bfloat16 (oneDNN, AVX512-BF16 or AMX) GEMMs of
// gemmN x gemmN x gemmN through rl's tensor handle.
func rlGEMM(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "gemm")
	flops := 2 * float64(gemmN) * gemmN * gemmN
	p.Runs, p.Steps = max(p.Runs, 3), max(p.Steps, 3) // a peak needs a few tries whatever --runs says
	for _, prec := range []string{fp32, bf16} {
		dt := tensor.Float32
		if prec == bf16 {
			dt = tensor.BFloat16
		}
		var a, b *tensor.Tensor
		tensor.Tidy(func() {
			a = tensor.Randn([]int64{gemmN, gemmN}, tensor.Float32, tensor.CPU).ToDType(dt).Keep()
			b = tensor.Randn([]int64{gemmN, gemmN}, tensor.Float32, tensor.CPU).ToDType(dt).Keep()
		})
		st := measure(func() { a.Matmul(b).Free() }, flops, p)
		a.Free()
		b.Free()
		best := slices.Max(st.Runs) // the peak: the best run (the median is in rl_stats)
		res = append(res, &Result{Name: "gemm_peak_" + prec, Config: fmt.Sprintf("%dx%dx%d", gemmN, gemmN, gemmN),
			Unit: "GFLOP/s", Better: higher, RL: round2(best / 1e9), RLStats: &st,
			Extra: map[string]any{"note": "matmul of two random square matrices, best of the runs; the peak MFU is measured against"}})
	}
	return res, nil
}

// gemmParams: a second of warm-up, five runs of five GEMMs.
func gemmParams(string) measureParams {
	return measureParams{Warmup: 3, Runs: 5, Steps: 5, Retries: 2, QuietThresh: 0.15, QuietWait: 30}
}

// fillMFU sets every training row's MFU (rl's and PyTorch's) from the peaks
// in the results, measuring the peaks first when the run has none.
func fillMFU(e *env, rep *report) {
	peaks := map[string]float64{}
	find := func() {
		for _, r := range rep.Results {
			switch r.Name {
			case "gemm_peak_" + fp32:
				peaks[fp32] = r.RL * 1e9
			case "gemm_peak_" + bf16:
				peaks[bf16] = r.RL * 1e9
			}
		}
	}
	find()
	need := false
	for _, r := range rep.Results {
		need = need || r.FlopsPerUnit > 0
	}
	if need && (peaks[fp32] == 0 || peaks[bf16] == 0) {
		fmt.Println("-- gemm (for MFU)")
		res, err := rlGEMM(e, "", e.opts.params(gemmParams(""), "gemm"))
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("gemm: %v", err))
		}
		rep.Results = append(rep.Results, res...)
		find()
	}
	for _, r := range rep.Results {
		if r.FlopsPerUnit == 0 {
			continue
		}
		if pk := peaks[r.Precision]; pk > 0 {
			v := round3(r.RL * r.FlopsPerUnit / pk)
			r.MFU = &v
			if r.minMFU > 0 {
				ok := v >= r.minMFU
				r.Pass = &ok
			}
		}
		tp := r.TorchPrecision
		if tp == "" {
			tp = r.Precision
		}
		if pk := peaks[tp]; pk > 0 && r.Torch != nil {
			v := round3(*r.Torch * r.FlopsPerUnit / pk)
			r.TorchMFU = &v
		}
	}
}

// mfuCell is a table cell: rl's MFU / PyTorch's, in percent.
func mfuCell(r *Result) string {
	if r.MFU == nil {
		return "-"
	}
	s := fmt.Sprintf("%.0f%% %s", 100**r.MFU, r.Precision)
	if r.TorchMFU != nil {
		tp := r.TorchPrecision
		if tp == "" {
			tp = r.Precision
		}
		s += fmt.Sprintf(" / %.0f%% %s", 100**r.TorchMFU, tp)
	}
	return s
}
