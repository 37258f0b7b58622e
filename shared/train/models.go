package train

import (
	"fmt"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// Single trains one model; Extra (optional) writes companion files such as
// the tokenizer into every saved directory.
type Single struct {
	M     *model.Model
	Extra func(dir string) error
}

func (s *Single) Params() []model.Param { return s.M.Params() }

func (s *Single) Save(dir string) error {
	if err := s.M.Save(dir); err != nil {
		return err
	}
	if s.Extra != nil {
		return s.Extra(dir)
	}
	return nil
}

func (s *Single) Load(dir string) error { return LoadWeights(s.M, dir) }

// SaveModels implements Models.
func (s *Single) SaveModels() []*model.Model { return []*model.Model{s.M} }

// LoadWeights copies the weights saved in dir into m's parameters in place.
func LoadWeights(m *model.Model, dir string) (err error) {
	defer tensor.Recover(&err, "load weights "+dir)
	f, err := safetensors.ReadModelDir(dir)
	if err != nil {
		return err
	}
	tensor.NoGrad(func() {
		for _, p := range m.Params() {
			st, ok := f.Tensors[p.Name]
			if !ok {
				err = fmt.Errorf("%s lacks %s", dir, p.Name)
				return
			}
			tensor.Tidy(func() {
				var dt tensor.DType
				switch st.DType {
				case safetensors.F32:
					dt = tensor.Float32
				case safetensors.BF16:
					dt = tensor.BFloat16
				case safetensors.F16:
					dt = tensor.Float16
				default:
					err = fmt.Errorf("%s: %s has dtype %s", dir, p.Name, st.DType)
					return
				}
				src := tensor.FromBytes(st.Data, st.Shape, dt).To(p.T.DType(), p.T.Device())
				p.T.Copy_(src)
			})
			if err != nil {
				return
			}
		}
	})
	return err
}
