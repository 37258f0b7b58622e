package reference

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// maskValue is the score given to a disallowed (future or padding) key:
// torch.finfo(torch.float32).min, the value HF's eager attention adds to the
// scores. It is finite on purpose; see the package documentation.
const maskValue = -math.MaxFloat32

// layerNorm is torch.nn.LayerNorm over the whole vector: the variance is the
// biased (divide by n) one, and eps is added to it inside the square root.
func layerNorm(x, w, b []float64, eps float64) []float64 {
	n := float64(len(x))
	mean := 0.0
	for _, v := range x {
		mean += v
	}
	mean /= n
	variance := 0.0
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= n
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (v-mean)/math.Sqrt(variance+eps)*w[i] + b[i]
	}
	return out
}

// rmsNorm is HF's LlamaRMSNorm: x / sqrt(mean(x²) + eps) * w.
func rmsNorm(x, w []float64, eps float64) []float64 {
	meanSquare := 0.0
	for _, v := range x {
		meanSquare += v * v
	}
	meanSquare /= float64(len(x))
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v / math.Sqrt(meanSquare+eps) * w[i]
	}
	return out
}

// geluTanh is HF's "gelu_new" (GPT-2's activation), the tanh approximation
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// silu is x·sigmoid(x) (Llama's "silu" activation).
func silu(x float64) float64 {
	return x / (1 + math.Exp(-x))
}

// softmax returns exp(s_i - max) / Σ exp(s_j - max).
func softmax(s []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range s {
		m = math.Max(m, v)
	}
	out := make([]float64, len(s))
	sum := 0.0
	for i, v := range s {
		out[i] = math.Exp(v - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// ropeInvFreq returns HF's inverse frequencies theta^(-2j/headDim) for
// j < headDim/2.
func ropeInvFreq(headDim int, theta float64) []float64 {
	f := make([]float64, headDim/2)
	for j := range f {
		f[j] = math.Pow(theta, -2*float64(j)/float64(headDim))
	}
	return f
}

// rotateHalf is HF's rotate_half: cat(-x[half:], x[:half]).
func rotateHalf(x []float64) []float64 {
	half := len(x) / 2
	out := make([]float64, 0, len(x))
	for _, v := range x[half:] {
		out = append(out, -v)
	}
	return append(out, x[:half]...)
}

// rope applies HF's rotary embedding (rotate_half convention) to one head
// vector x at position pos: x·cos + rotate_half(x)·sin, where the angles
// pos·inv_freq are duplicated to the full head width as cat(freqs, freqs).
// So dimension i is paired with i + headDim/2, not with its neighbour.
func rope(x []float64, pos int, theta float64) []float64 {
	return ropeFreq(x, pos, ropeInvFreq(len(x), theta))
}

// ropeFreq is rope with given inverse frequencies (len(x)/2).
func ropeFreq(x []float64, pos int, invFreq []float64) []float64 {
	return ropeScaled(x, pos, invFreq, 1)
}

// ropeScaled is rope on the first 2*len(invFreq) channels of x (the rest
// passed through: partial rotary, as Phi-3's apply_rotary_pos_emb), with
// cos and sin multiplied by amp (the attention factor of yarn and
// longrope).
func ropeScaled(x []float64, pos int, invFreq []float64, amp float64) []float64 {
	rd := 2 * len(invFreq)
	cos := make([]float64, rd)
	sin := make([]float64, rd)
	for j, f := range invFreq {
		angle := float64(pos) * f
		cos[j], cos[j+rd/2] = amp*math.Cos(angle), amp*math.Cos(angle)
		sin[j], sin[j+rd/2] = amp*math.Sin(angle), amp*math.Sin(angle)
	}
	rot := rotateHalf(x[:rd])
	out := slices.Clone(x)
	for i := 0; i < rd; i++ {
		out[i] = x[i]*cos[i] + rot[i]*sin[i]
	}
	return out
}

// attention computes one head of causal self-attention,
// softmax(q·kᵀ/√d + mask)·v, for q, k, v of shape [T, d]. Query t may see
// key j iff j <= t and keyMask[j] == 1; other scores are set to maskValue.
func attention(q, k, v mat.Matrix, keyMask []int) *mat.Dense {
	return windowAttention(q, k, v, keyMask, 0)
}

// windowAttention is attention where query t also sees only keys j with
// t - j < window (Mistral's sliding_window, on sequence indices); window
// 0 means no limit.
func windowAttention(q, k, v mat.Matrix, keyMask []int, window int) *mat.Dense {
	T, d := q.Dims()
	var scores mat.Dense
	scores.Mul(q, k.T())
	probs := mat.NewDense(T, T, nil)
	for t := 0; t < T; t++ {
		row := make([]float64, T)
		for j := range row {
			if j <= t && keyMask[j] == 1 && (window == 0 || t-j < window) {
				row[j] = scores.At(t, j) / math.Sqrt(float64(d))
			} else {
				row[j] = maskValue
			}
		}
		probs.SetRow(t, softmax(row))
	}
	var out mat.Dense
	out.Mul(probs, v)
	return &out
}

// conv1D is HF's Conv1D (GPT-2): y = x·W + b with W stored [in, out].
func conv1D(x mat.Matrix, w *mat.Dense, b []float64) *mat.Dense {
	_, in := x.Dims()
	if r, _ := w.Dims(); r != in {
		panic(fmt.Sprintf("reference: conv1D: input width %d, weight has %d rows", in, r))
	}
	var y mat.Dense
	y.Mul(x, w)
	addBias(&y, b)
	return &y
}

// linear is torch's nn.Linear: y = x·Wᵀ + b with W stored [out, in]. b may
// be nil.
func linear(x mat.Matrix, w *mat.Dense, b []float64) *mat.Dense {
	_, in := x.Dims()
	if _, c := w.Dims(); c != in {
		panic(fmt.Sprintf("reference: linear: input width %d, weight has %d columns", in, c))
	}
	var y mat.Dense
	y.Mul(x, w.T())
	addBias(&y, b)
	return &y
}

// addBias adds b to every row of y; a nil b adds nothing.
func addBias(y *mat.Dense, b []float64) {
	if b == nil {
		return
	}
	r, c := y.Dims()
	if len(b) != c {
		panic(fmt.Sprintf("reference: bias of length %d for width %d", len(b), c))
	}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			y.Set(i, j, y.At(i, j)+b[j])
		}
	}
}

// mapRows returns a matrix whose row i is f(row i of x).
func mapRows(x mat.Matrix, f func([]float64) []float64) *mat.Dense {
	r, c := x.Dims()
	var out *mat.Dense
	for i := 0; i < r; i++ {
		row := make([]float64, c)
		mat.Row(row, i, x)
		y := f(row)
		if out == nil {
			out = mat.NewDense(r, len(y), nil)
		}
		out.SetRow(i, y)
	}
	return out
}

// mapElements applies f to every element of x in place.
func mapElements(x *mat.Dense, f func(float64) float64) {
	r, c := x.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			x.Set(i, j, f(x.At(i, j)))
		}
	}
}

// columns returns columns [lo, hi) of x as a new matrix.
func columns(x *mat.Dense, lo, hi int) *mat.Dense {
	r, _ := x.Dims()
	out := mat.NewDense(r, hi-lo, nil)
	out.Copy(x.Slice(0, r, lo, hi))
	return out
}

// setColumns copies src into columns [lo, lo+width(src)) of dst.
func setColumns(dst *mat.Dense, lo int, src *mat.Dense) {
	r, c := src.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			dst.Set(i, lo+j, src.At(i, j))
		}
	}
}
