package model

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/rlsuite/rl/shared/tensor"
)

// Frozen 4-bit and 8-bit base weights, as bitsandbytes stores them for
// QLoRA (Dettmers et al. 2023, arXiv:2305.14314): each block projection's
// weight (out, in) is quantised once, and dequantised in every forward to
// the compute dtype; gradients flow to the activations and the LoRA
// adapters only.
//
// 4-bit (bitsandbytes' quantize_4bit, backends/default/ops.py @95f9af3):
// the flattened weight in blocks of 64, each scaled by its absmax (float32)
// into [-1, 1] and rounded to the nearest of 16 code values (NF4: the
// quantiles of N(0, 1), Section 3 of the paper; or FP4), two codes a byte,
// the first in the high nibble. Double quantisation (Section 3, "Double
// Quantization"; compress_statistics) stores the absmax themselves in 8
// bits: offset = mean(absmax), then absmax - offset in blocks of 256 on the
// signed dynamic 8-bit map (Dettmers 2015, arXiv:1511.04561).
//
// 8-bit: LLM.int8()'s row-wise absmax quantisation of the weight (Dettmers
// et al. 2022, arXiv:2208.07339, Eq. 1: round(127 W / rowmax)), without the
// outlier decomposition and with float activations (weight-only).

// QuantConfig says how the base is quantised (TRL's ModelConfig:
// load_in_4bit, load_in_8bit, bnb_4bit_quant_type, use_bnb_nested_quant).
type QuantConfig struct {
	Bits        int    // 4 or 8
	QuantType   string // 4-bit: nf4 or fp4
	DoubleQuant bool   // 4-bit: quantise the absmax too
}

const (
	quantBlock  = 64  // bitsandbytes' default 4-bit blocksize
	nestedBlock = 256 // the blocksize of the nested absmax
)

// nf4Code and fp4Code are bitsandbytes' 4-bit code tables
// (backends/utils.py _NF4_QUANT_TABLE, _FP4_QUANT_TABLE).
var (
	nf4Code = []float32{-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
		-0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
		0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
		0.7229568362236023, 1.0}
	fp4Code = []float32{0.0, 0.0052, 0.6667, 1.0, 0.3333, 0.5, 0.1667, 0.25,
		0.0, -0.0052, -0.6667, -1.0, -0.3333, -0.5, -0.1667, -0.25}
)

// dynamicMap is the signed dynamic 8-bit data type (functional.py
// create_dynamic_map(signed=True)): for each exponent e < 7, the midpoints
// of an even split of [0.1, 1] into 2^e parts times 10^(e-6), both signs;
// then 0 and 1, sorted. Computed with torch.linspace's float32 arithmetic.
func dynamicMap() []float32 {
	var v []float32
	for e := 0; e < 7; e++ {
		n := 1<<e + 1
		edges := linspace32(0.1, 1, n)
		// a Python float times a float32 tensor: the scalar in float32, a
		// float32 product
		scale := float32([]float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1}[e])
		for i := 0; i+1 < n; i++ {
			mid := (edges[i] + edges[i+1]) / 2
			v = append(v, scale*mid, -scale*mid)
		}
	}
	v = append(v, 0, 1)
	for len(v) < 256 {
		v = append(v, 0)
	}
	slices.Sort(v)
	return v
}

// linspace32 is torch.linspace(start, end, n, float32) as libtorch's AVX2
// CPU kernel computes it (RangeFactoriesKernel.cpp, the kernel Debian's
// torch and most x86 builds dispatch to): step in float32; element i is
// start + step*i in the first half and end - step*(n-1-i) in the second,
// each one fused multiply-add (compiled with -mfma); runs of two 8-wide
// vectors instead compute base + k*step (unfused) from each vector's first
// element. Checked against torch.linspace for every n the map uses
// (tools/goldens/nf4.py); an AVX-512 torch build could differ in the last
// bit of a few map entries.
func linspace32(start, end float32, n int) []float32 {
	const width = 8
	out := make([]float32, n)
	step := (end - start) / float32(n-1)
	half := n / 2
	scalar := func(i int) float32 {
		if i < half {
			return float32(math.FMA(float64(step), float64(i), float64(start)))
		}
		return float32(math.FMA(-float64(step), float64(n-1-i), float64(end)))
	}
	i := 0
	for ; i+2*width <= n; i += 2 * width {
		for _, v := range []int{i, i + width} {
			base := scalar(v)
			for k := 0; k < width; k++ {
				out[v+k] = base + float32(float32(k)*step) // the conversion stops Go fusing it
			}
		}
	}
	for ; i < n; i++ {
		out[i] = scalar(i)
	}
	return out
}

// bucketize is torch.bucketize(x, bounds): the number of bounds < x.
func bucketize(x float32, bounds []float32) int {
	i := 0
	for i < len(bounds) && bounds[i] < x {
		i++
	}
	return i
}

// blockScale returns each block's absmax and the values scaled into
// [-1, 1] as bitsandbytes computes them: full blocks times the reciprocal
// of the absmax (clamped to 1e-38), the last partial block divided by its.
func blockScale(x []float32, block int) (absmax, scaled []float32) {
	n := len(x)
	full := n - n%block
	scaled = make([]float32, n)
	clamp := func(v float32) float32 { return min(max(v, -1), 1) }
	for lo := 0; lo < n; lo += block {
		hi := min(lo+block, n)
		var am float32
		for _, v := range x[lo:hi] {
			am = max(am, float32(math.Abs(float64(v))))
		}
		absmax = append(absmax, am)
		am = max(am, 1e-38)
		if lo < full {
			inv := 1 / am
			for i := lo; i < hi; i++ {
				scaled[i] = clamp(x[i] * inv)
			}
		} else {
			for i := lo; i < hi; i++ {
				scaled[i] = clamp(x[i] / am)
			}
		}
	}
	return absmax, scaled
}

// quantBlockwise is quantize_blockwise(x, code, block): 8-bit codes into a
// sorted 256-value code, nearest by midpoints.
func quantBlockwise(x []float32, code []float32, block int) (q []uint8, absmax []float32) {
	absmax, scaled := blockScale(x, block)
	bounds := make([]float32, len(code)-1)
	for i := range bounds {
		bounds[i] = (code[i] + code[i+1]) / 2
	}
	q = make([]uint8, len(x))
	for i, v := range scaled {
		q[i] = uint8(bucketize(v, bounds))
	}
	return q, absmax
}

// quant4 is one weight's 4-bit storage.
type quant4 struct {
	n      int            // elements
	packed *tensor.Tensor // uint8, two codes a byte (ceil(n/2))
	absmax *tensor.Tensor // float32 per block (dequantised from the nested form when double-quantised)
	code   *tensor.Tensor // float32 (16)
	// nested absmax, kept for size accounting and tests: the 8-bit codes,
	// their absmax and the offset
	qabsmax []uint8
	absmax2 []float32
	offset  float32
}

// quantizeWeight4 quantises w (float32 values of an (out, in) weight) as
// bitsandbytes' quantize_4bit does.
func quantizeWeight4(w []float32, qt string, double bool, dev tensor.Device) (*quant4, error) {
	code := nf4Code
	switch qt {
	case "", "nf4":
	case "fp4":
		code = fp4Code
	default:
		return nil, fmt.Errorf("bnb_4bit_quant_type %q: want nf4 or fp4", qt)
	}
	// codes sorted, with their indices (FP4's table is not sorted)
	order := make([]int, len(code))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(code[a], code[b]) })
	bounds := make([]float32, len(code)-1)
	for i := range bounds {
		bounds[i] = (code[order[i]] + code[order[i+1]]) / 2
	}
	absmax, scaled := blockScale(w, quantBlock)
	if len(scaled)%2 == 1 {
		scaled = append(scaled, 0)
	}
	packed := make([]byte, len(scaled)/2)
	for i := range packed {
		hi := order[bucketize(scaled[2*i], bounds)]
		lo := order[bucketize(scaled[2*i+1], bounds)]
		packed[i] = byte(hi<<4 | lo)
	}
	q := &quant4{n: len(w)}
	if double {
		var off float32
		tensor.Tidy(func() { off = float32(tensor.FromFloat32s(absmax, int64(len(absmax))).Mean().Item()) })
		shifted := make([]float32, len(absmax))
		for i, a := range absmax {
			shifted[i] = a - off
		}
		dm := dynamicMap()
		qa, a2 := quantBlockwise(shifted, dm, nestedBlock)
		for i := range absmax { // dequantize_blockwise + offset, in float32
			absmax[i] = float32(dm[qa[i]]*a2[i/nestedBlock]) + off // two roundings, as two torch ops
		}
		q.qabsmax, q.absmax2, q.offset = qa, a2, off
	}
	tensor.Tidy(func() {
		q.packed = tensor.FromBytes(packed, []int64{int64(len(packed))}, tensor.Uint8).To(tensor.Uint8, dev).Keep()
		q.absmax = tensor.FromFloat32s(absmax, int64(len(absmax))).To(tensor.Float32, dev).Keep()
		q.code = tensor.FromFloat32s(code, int64(len(code))).To(tensor.Float32, dev).Keep()
	})
	return q, nil
}

// dequant returns the weight's float32 values (n): code[q] * absmax of its
// block (dequantize_4bit).
func (q *quant4) dequant() *tensor.Tensor {
	p := q.packed.ToDType(tensor.Int64)
	codes := tensor.Stack([]*tensor.Tensor{p.BitwiseRightShift(4), p.BitwiseAndScalar(15)}, 1).Reshape(-1) // high nibble first
	nb := q.absmax.Size(0)
	if pad := nb*quantBlock - codes.Size(0); pad > 0 {
		codes = tensor.Cat([]*tensor.Tensor{codes, tensor.ZerosOn([]int64{pad}, tensor.Int64, codes.Device())}, 0)
	}
	v := q.code.IndexSelect(0, codes.Narrow(0, 0, nb*quantBlock)).View(nb, quantBlock).Mul(q.absmax.View(nb, 1))
	return v.Reshape(-1).Narrow(0, 0, int64(q.n))
}

func (q *quant4) free() {
	q.packed.Free()
	q.absmax.Free()
	q.code.Free()
}

// bytes is the storage the quantised weight takes (packed codes and
// absmax, 8-bit absmax when double-quantised).
func (q *quant4) bytes() int64 {
	b := q.packed.Size(0)
	if q.qabsmax != nil {
		return b + int64(len(q.qabsmax)) + 4*int64(len(q.absmax2)) + 4
	}
	return b + 4*q.absmax.Size(0)
}

// quant8 is one weight's 8-bit storage: int8 codes (out, in) and each
// row's absmax.
type quant8 struct {
	q      *tensor.Tensor // int8 (out, in)
	rowmax *tensor.Tensor // float32 (out)
}

// quantizeWeight8 is int8_vectorwise_quant without outliers:
// round(W * 127 / rowmax).
func quantizeWeight8(w *tensor.Tensor) *quant8 {
	q := &quant8{}
	tensor.Tidy(func() {
		wf := w.ToDType(tensor.Float32)
		rowmax, _ := wf.Abs().MaxDim(1, false)
		q.q = wf.Mul(rowmax.Reciprocal().MulScalar(127).Unsqueeze(1)).Round().ToDType(tensor.Int8).Keep()
		q.rowmax = rowmax.Keep()
	})
	return q
}

// dequant is q * (rowmax / 127), float32 (out, in).
func (q *quant8) dequant() *tensor.Tensor {
	return q.q.ToDType(tensor.Float32).Mul(q.rowmax.DivScalar(127).Unsqueeze(1))
}

// quantized is a base weight stored in 4 or 8 bits.
type quantized struct {
	name   string
	shape  []int64 // the weight's own shape ((in, out) for GPT-2's Conv1D)
	conv1d bool    // stored transposed: quantised as (out, in), as bitsandbytes' Linear4bit holds it
	q4     *quant4
	q8     *quant8
}

// weight returns the dequantised weight in the model's layout and dtype.
func (qw *quantized) weight(dt tensor.DType) *tensor.Tensor {
	var w *tensor.Tensor
	if qw.q4 != nil {
		rows, cols := qw.shape[0], qw.shape[1]
		if qw.conv1d {
			rows, cols = cols, rows
		}
		w = qw.q4.dequant().View(rows, cols)
	} else {
		w = qw.q8.dequant()
	}
	if qw.conv1d {
		w = w.Transpose(0, 1)
	}
	if dt != tensor.Float32 {
		w = w.ToDType(dt)
	}
	return w
}

// linear is x W^T + b through tensor.QuantLinear: W is dequantised in
// forward and again in backward (bitsandbytes' MatMul4Bit), so autograd
// keeps no float copy of it. GPT-2's Conv1D weight is stored as (out, in)
// already, so it is a Linear here too.
func (qw *quantized) linear(x, b *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	rows, cols := qw.shape[0], qw.shape[1]
	if qw.conv1d {
		rows, cols = cols, rows
	}
	if qw.q4 != nil {
		q := []*tensor.Tensor{qw.q4.packed, qw.q4.absmax, qw.q4.code}
		return tensor.QuantLinear(x, b, q, int64(qw.q4.n), rows, cols, quantBlock, dt)
	}
	return tensor.QuantLinear(x, b, []*tensor.Tensor{qw.q8.q, qw.q8.rowmax}, rows*cols, rows, cols, quantBlock, dt)
}

func (qw *quantized) free() {
	if qw.q4 != nil {
		qw.q4.free()
	}
	if qw.q8 != nil {
		qw.q8.q.Free()
		qw.q8.rowmax.Free()
	}
}

// Quantize stores every block projection of m in 4 or 8 bits (not the
// embeddings, norms or heads, as bitsandbytes' replace_with_bnb_linear
// skips lm_head and score): their float weights are freed, and the forward
// dequantises them. Quantise before adding adapters; a quantised model
// trains adapters only and cannot be saved in full (merge into a float
// base instead).
func (m *Model) Quantize(c QuantConfig) (err error) {
	defer tensor.Recover(&err, "quantize the base model")
	if c.Bits != 4 && c.Bits != 8 {
		return fmt.Errorf("quantize: %d bits: want 4 or 8", c.Bits)
	}
	if m.quant != nil {
		return errors.New("quantize: the model is already quantised")
	}
	if m.lora != nil {
		return errors.New("quantize: quantise the base before adding adapters")
	}
	conv := m.Config.Family() == GPT2
	targets := map[string]bool{}
	for _, mod := range m.linearModules() {
		targets[mod+".weight"] = true
	}
	m.quant = map[*tensor.Tensor]*quantized{}
	for i, p := range m.params {
		if !targets[p.Name] {
			continue
		}
		qw, err := quantizeOne(p.Name, p.T, conv, c, m.Device)
		if err != nil {
			return err
		}
		ph := m.placeholder(qw)
		m.byName[p.Name] = ph
		m.params[i].T = ph
		p.T.Free()
	}
	m.quantCfg = c
	return m.rebind()
}

// isProjection reports whether a parameter is a block projection, the
// weights LoRA adapts and Quantize stores in few bits: a 2-D weight inside
// the decoder (or encoder) layers, not an embedding, norm or head.
func isProjection(name string, shape []int64) bool {
	mod, ok := strings.CutSuffix(name, ".weight")
	return ok && len(shape) == 2 && (strings.Contains(mod, ".h.") || strings.Contains(mod, ".layers.") || strings.Contains(mod, ".layer."))
}

// quantizeOne stores weight w (its values as w holds them: the model's
// dtype) in c's format on dev; w itself is left to the caller.
func quantizeOne(name string, w *tensor.Tensor, conv bool, c QuantConfig, dev tensor.Device) (qw *quantized, err error) {
	qw = &quantized{name: name, shape: w.Shape(), conv1d: conv}
	tensor.NoGrad(func() {
		tensor.Tidy(func() {
			wf := w.ToDType(tensor.Float32)
			if conv {
				wf = wf.Transpose(0, 1).Contiguous()
			}
			if c.Bits == 4 {
				qw.q4, err = quantizeWeight4(wf.To(tensor.Float32, tensor.CPU).Float32s(), c.QuantType, c.DoubleQuant, dev)
			} else {
				qw.q8 = quantizeWeight8(wf.To(tensor.Float32, dev))
			}
		})
	})
	if err != nil {
		return nil, err
	}
	// the weight's float32 copies in Go are garbage now: collect them
	// before the next weight, or a 1B model's Go heap grows by gigabytes
	debug.FreeOSMemory()
	return qw, nil
}

// placeholder records qw in m.quant under a new 0-element tensor, which
// stands for the weight in m.params and the typed views (their pointer is
// the key).
func (m *Model) placeholder(qw *quantized) *tensor.Tensor {
	if m.quant == nil {
		m.quant = map[*tensor.Tensor]*quantized{}
	}
	var ph *tensor.Tensor
	tensor.Tidy(func() { ph = tensor.ZerosOn([]int64{0}, m.DType, m.Device).Keep() })
	m.quant[ph] = qw
	return ph
}

// Quantized reports whether m's base is stored in 4 or 8 bits.
func (m *Model) Quantized() bool { return m.quant != nil }

// QuantizedBytes is the storage of the quantised weights, and the float32
// bytes they replaced.
func (m *Model) QuantizedBytes() (stored, float32Bytes int64) {
	for _, qw := range m.quant {
		n := qw.shape[0] * qw.shape[1]
		float32Bytes += 4 * n
		if qw.q4 != nil {
			stored += qw.q4.bytes()
		} else {
			stored += n + 4*qw.shape[0]
		}
	}
	return stored, float32Bytes
}

// baseWeight is w itself, or its dequantised value when w stands for a
// quantised weight.
func (m *Model) baseWeight(w *tensor.Tensor) *tensor.Tensor {
	if m.quant == nil {
		return w
	}
	if qw := m.quant[w]; qw != nil {
		return qw.weight(m.DType)
	}
	return w
}

func (m *Model) freeQuant() {
	for _, qw := range m.quant {
		qw.free() // the placeholders are in m.params, freed with them
	}
	m.quant = nil
}

// weightShape is w's shape, or the quantised weight's it stands for.
func (m *Model) weightShape(w *tensor.Tensor) []int64 {
	if qw := m.quant[w]; qw != nil {
		return qw.shape
	}
	return w.Shape()
}

// quantNames lists the quantised weights (for errors).
func (m *Model) quantNames() string {
	var n []string
	for _, qw := range m.quant {
		n = append(n, qw.name)
	}
	return strings.Join(n, ", ")
}
