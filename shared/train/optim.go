package train

import (
	"fmt"
	"strconv"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// AdamW is PyTorch's AdamW (decoupled weight decay, bias-corrected moments),
// written over the tensor ops so that its state can be saved and a run
// resumed exactly. Weight decay skips 1-D parameters (biases and norm
// weights), as transformers' Trainer does.
type AdamW struct {
	params            []model.Param
	decay             []bool
	expAvg, expAvgSq  []*tensor.Tensor // lazily created on the first step
	Step              int              // steps taken
	Beta1, Beta2, Eps float64
	WeightDecay       float64
}

// NewAdamW makes the optimizer for params.
func NewAdamW(params []model.Param, a *Args) *AdamW {
	o := &AdamW{params: params, Beta1: a.AdamBeta1, Beta2: a.AdamBeta2, Eps: a.AdamEpsilon, WeightDecay: a.WeightDecay}
	for _, p := range params {
		o.decay = append(o.decay, p.T.Dim() >= 2)
	}
	o.expAvg = make([]*tensor.Tensor, len(params))
	o.expAvgSq = make([]*tensor.Tensor, len(params))
	return o
}

// Free releases the optimizer state.
func (o *AdamW) Free() {
	for i := range o.expAvg {
		o.expAvg[i].Free()
		o.expAvgSq[i].Free()
		o.expAvg[i], o.expAvgSq[i] = nil, nil
	}
}

// ZeroGrad clears every parameter's gradient.
func (o *AdamW) ZeroGrad() {
	for _, p := range o.params {
		p.T.ZeroGrad()
	}
}

// ClipGradNorm scales gradients so their global 2-norm is at most max
// (when max > 0) and returns the norm before clipping, as
// torch.nn.utils.clip_grad_norm_ does.
func (o *AdamW) ClipGradNorm(max float64) float64 {
	var total float64
	tensor.Tidy(func() {
		var norms []*tensor.Tensor
		var grads []*tensor.Tensor
		for _, p := range o.params {
			if g := p.T.Grad(); g != nil {
				norms = append(norms, g.Norm())
				grads = append(grads, g)
			}
		}
		if len(norms) == 0 {
			return
		}
		total = tensor.Stack(norms, 0).Norm().ItemF64()
		if max > 0 {
			coef := max / (total + 1e-6)
			if coef < 1 {
				for _, g := range grads {
					g.MulScalar_(coef)
				}
			}
		}
	})
	return total
}

// Update applies one AdamW step with learning rate lr: torch.optim.AdamW's
// formula, fused into one pass per parameter (tensor.AdamWStep).
func (o *AdamW) Update(lr float64) {
	o.Step++
	tensor.Tidy(func() {
		var ps []tensor.AdamWParam
		for i, p := range o.params {
			g := p.T.Grad()
			if g == nil {
				continue
			}
			if o.expAvg[i] == nil {
				o.expAvg[i] = tensor.ZerosOn(p.T.Shape(), p.T.DType(), p.T.Device()).Keep()
				o.expAvgSq[i] = tensor.ZerosOn(p.T.Shape(), p.T.DType(), p.T.Device()).Keep()
			}
			ps = append(ps, tensor.AdamWParam{Param: p.T, Grad: g, ExpAvg: o.expAvg[i], ExpAvgSq: o.expAvgSq[i], Decay: o.decay[i]})
		}
		tensor.AdamWStep(ps, lr, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.Step)
	})
}

// State returns the moments as a safetensors file (exp_avg.NAME, exp_avg_sq.NAME)
// with the step count in the metadata.
func (o *AdamW) State() (f *safetensors.File, err error) {
	defer tensor.Recover(&err, "optimizer state")
	f = &safetensors.File{Metadata: map[string]string{"step": strconv.Itoa(o.Step), "optimizer": "adamw"}, Tensors: map[string]safetensors.Tensor{}}
	for i, p := range o.params {
		if o.expAvg[i] == nil {
			continue
		}
		for prefix, t := range map[string]*tensor.Tensor{"exp_avg.": o.expAvg[i], "exp_avg_sq.": o.expAvgSq[i]} {
			f.Tensors[prefix+p.Name] = safetensors.Tensor{DType: safetensors.F32, Shape: t.Shape(), Data: t.ToDType(tensor.Float32).Contiguous().Bytes()}
		}
	}
	return f, nil
}

// LoadState restores what State saved.
func (o *AdamW) LoadState(f *safetensors.File) (err error) {
	defer tensor.Recover(&err, "optimizer load state")
	step, err := strconv.Atoi(f.Metadata["step"])
	if err != nil {
		return fmt.Errorf("optimizer state: bad step %q", f.Metadata["step"])
	}
	if step < 0 {
		return fmt.Errorf("optimizer state: step %d is negative (AdamW's bias correction needs step >= 0): the checkpoint is damaged", step)
	}
	o.Free()
	for i, p := range o.params {
		m, ok1 := f.Tensors["exp_avg."+p.Name]
		v, ok2 := f.Tensors["exp_avg_sq."+p.Name]
		if !ok1 || !ok2 {
			if step > 0 && p.T.RequiresGrad() {
				return fmt.Errorf("optimizer state lacks the moments of %s", p.Name)
			}
			continue
		}
		dt, dev := p.T.DType(), p.T.Device()
		o.expAvg[i] = tensor.FromBytes(m.Data, m.Shape, tensor.Float32).To(dt, dev).Keep()
		o.expAvgSq[i] = tensor.FromBytes(v.Data, v.Shape, tensor.Float32).To(dt, dev).Keep()
	}
	o.Step = step
	return nil
}
