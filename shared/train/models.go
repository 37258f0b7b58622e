package train

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

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

// Params are the model's trainable tensors: its LoRA adapters (and
// modules_to_save) when it has them, else every parameter.
func (s *Single) Params() []model.Param { return s.M.Trainable() }

// Save writes the model, or only its adapter when it has one (peft's
// save_pretrained), and the Extra files.
func (s *Single) Save(dir string) error {
	if err := SaveModel(s.M, dir); err != nil {
		return err
	}
	if s.Extra != nil {
		return s.Extra(dir)
	}
	return nil
}

func (s *Single) Load(dir string) error { return LoadWeights(s.M, dir) }

// SaveModel writes m's weights, or its adapter alone when it has one.
func SaveModel(m *model.Model, dir string) error {
	if m.HasAdapters() {
		return m.SaveAdapter(dir)
	}
	return m.Save(dir)
}

// SaveModels implements Models.
func (s *Single) SaveModels() []*model.Model { return []*model.Model{s.M} }

// LoadWeights copies the weights saved in dir into m's parameters in place.
// The checkpoint must hold exactly m's tensors, with the same shapes (a
// checkpoint of another model size is an error naming the tensors and both
// shapes, never a partial load or a broadcast), all finite.
//
// For a model with adapters, dir holds the adapter (adapter_model.safetensors,
// as SaveModel writes it) and its tensors are matched against Trainable.
func LoadWeights(m *model.Model, dir string) (err error) {
	defer tensor.Recover(&err, "load weights "+dir)
	params := m.Params()
	var f *safetensors.File
	if m.HasAdapters() {
		params = m.Trainable()
		f, err = safetensors.ReadFile(filepath.Join(dir, model.AdapterWeightsFile))
	} else {
		f, err = safetensors.ReadModelDir(dir)
	}
	if err != nil {
		return err
	}
	if err := matchParams(m, params, f, dir); err != nil {
		return err
	}
	if err := model.CheckFinite(f, dir); err != nil {
		return err
	}
	tensor.NoGrad(func() {
		for _, p := range params {
			st := f.Tensors[p.Name]
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

// matchParams compares the names and shapes of the checkpoint's tensors
// with m's parameters exactly, as model.Load does.
func matchParams(m *model.Model, params []model.Param, f *safetensors.File, dir string) error {
	var problems []string
	have := map[string]bool{}
	for _, p := range params {
		have[p.Name] = true
		st, ok := f.Tensors[p.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("lacks %s %v", p.Name, p.T.Shape()))
			continue
		}
		if !slices.Equal(st.Shape, p.T.Shape()) {
			problems = append(problems, fmt.Sprintf("%s has shape %v, the model's is %v", p.Name, st.Shape, p.T.Shape()))
		}
	}
	for _, n := range f.Names() {
		if !have[n] {
			problems = append(problems, fmt.Sprintf("has %s %v, which the model lacks", n, f.Tensors[n].Shape))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	const show = 6
	more := ""
	if len(problems) > show {
		more = fmt.Sprintf("; and %d more", len(problems)-show)
		problems = problems[:show]
	}
	c := m.Config
	return fmt.Errorf("%s does not fit the model being trained (%d layers, width %d, vocab %d): it %s%s; resume with the model (and config) the checkpoint was saved from",
		dir, c.NumLayers, c.HiddenSize, c.VocabSize, strings.Join(problems, "; it "), more)
}
