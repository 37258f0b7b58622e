package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/hub"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// LoRA adapters as peft defines them (Hu et al. 2021, arXiv:2106.09685,
// Eq. 3): a frozen weight W gains a low-rank update, h = W x + (alpha/r)
// B A x, with A (r, in) and B (out, r) trained and W untouched; rsLoRA
// (Kalajdzievski 2023, arXiv:2312.03732) scales by alpha/sqrt(r) instead.
// Saved and loaded in peft's own layout (adapter_config.json,
// adapter_model.safetensors with base_model.model.<module>.lora_A.weight
// keys), so peft loads rl's adapters and rl loads peft's.

// Adapter file names, peft's (peft/utils/constants.py).
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
)

// LoraConfig is peft's LoraConfig, the fields rl reads and writes.
type LoraConfig struct {
	R       int     // r (TRL's lora_r, default 16)
	Alpha   float64 // lora_alpha (default 32)
	Dropout float64 // lora_dropout, on the adapter's input (default 0.05)
	// TargetModules are module names matched as peft matches a list: the
	// full name or its last components (q_proj matches
	// model.layers.0.self_attn.q_proj); ["all-linear"]: every linear layer
	// of the blocks (not the heads). Empty: peft's default for the family
	// (gpt2 c_attn; llama, mistral, qwen2, qwen3 q_proj and v_proj).
	TargetModules []string
	// ModulesToSave are modules trained in full and saved with the adapter
	// (TRL: ["score"] for reward and classifier heads).
	ModulesToSave []string
	UseRSLoRA     bool // use_rslora: scale alpha/sqrt(r)
	// UseDoRA is use_dora: DoRA (Liu et al. 2024, arXiv:2402.09353), a
	// trained magnitude per output row on top of the LoRA direction.
	UseDoRA  bool
	TaskType string // task_type: CAUSAL_LM or SEQ_CLS (default: from the model's head)
	// BaseModel is base_model_name_or_path: where the base is loaded from.
	BaseModel string
	// Raw keeps the other keys of a loaded adapter_config.json, written back.
	Raw map[string]any
}

// loraLayer is one adapted projection.
type loraLayer struct {
	module string         // HF module path, e.g. model.layers.0.self_attn.q_proj
	base   *tensor.Tensor // the frozen weight: (out, in), or (in, out) for GPT-2's Conv1D
	a, b   *tensor.Tensor // lora_A (r, in), lora_B (out, r)
	mag    *tensor.Tensor // DoRA's lora_magnitude_vector (out); nil for plain LoRA
	scale  float64
	conv1d bool // fan_in_fan_out
}

// adapters are a model's LoRA layers.
type adapters struct {
	cfg      LoraConfig
	layers   []*loraLayer
	byWeight map[*tensor.Tensor]*loraLayer
	saved    []string // parameter names of modules_to_save, trained in place
}

// HasAdapters reports whether m carries LoRA adapters.
func (m *Model) HasAdapters() bool { return m.lora != nil }

// LoraConfig returns the adapter settings (nil without adapters).
func (m *Model) LoraConfig() *LoraConfig {
	if m.lora == nil {
		return nil
	}
	c := m.lora.cfg
	return &c
}

// defaultTargets is peft's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
// for rl's families (peft/utils/constants.py).
func defaultTargets(modelType string) []string {
	switch modelType {
	case "gpt2":
		return []string{"c_attn"}
	case "phi3":
		return []string{"qkv_proj"}
	case "gemma2", "gemma3_text":
		return []string{"q_proj", "v_proj"}
	case "bert", "roberta", "xlm-roberta":
		return []string{"query", "value"}
	case "distilbert":
		return []string{"q_lin", "v_lin"}
	case "deberta-v2":
		return []string{"query_proj", "value_proj"}
	}
	return []string{"q_proj", "v_proj"}
}

// linearModules lists the block projections of m that LoRA can adapt:
// module path and whether it is a Conv1D (GPT-2).
func (m *Model) linearModules() []string {
	var out []string
	for _, p := range m.params {
		if !isProjection(p.Name, m.weightShape(p.T)) {
			continue // embeddings, norms, heads
		}
		out = append(out, strings.TrimSuffix(p.Name, ".weight"))
	}
	return out
}

// matchesTarget is peft's check_target_module_exists for a list: the key
// equals a target or ends with "." + target.
func matchesTarget(module string, targets []string) bool {
	for _, t := range targets {
		if module == t || strings.HasSuffix(module, "."+t) {
			return true
		}
	}
	return false
}

// AddLora adds fresh adapters to m as peft's get_peft_model does: lora_A
// Kaiming-uniform (a = sqrt(5), so U(-1/sqrt(in), 1/sqrt(in))), lora_B
// zeros, so the model's outputs are unchanged until training. The base
// weights stay frozen; Trainable returns the adapters (and modules_to_save).
func (m *Model) AddLora(c LoraConfig) (err error) {
	defer tensor.Recover(&err, "add LoRA adapters")
	if m.lora != nil {
		return errors.New("model: the model already has LoRA adapters")
	}
	if c.R <= 0 {
		return fmt.Errorf("lora_r must be > 0, got %d", c.R)
	}
	if !(c.Alpha > 0) {
		return fmt.Errorf("lora_alpha must be > 0, got %g", c.Alpha)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return fmt.Errorf("lora_dropout must be in [0, 1), got %g", c.Dropout)
	}
	if len(c.TargetModules) == 0 {
		c.TargetModules = defaultTargets(m.Config.ModelType)
	}
	if c.TaskType == "" {
		c.TaskType = "CAUSAL_LM"
		if m.Head == ScoreHead {
			c.TaskType = "SEQ_CLS"
		}
	}
	all := slices.Equal(c.TargetModules, []string{"all-linear"})
	var modules []string
	for _, mod := range m.linearModules() {
		if all || matchesTarget(mod, c.TargetModules) {
			modules = append(modules, mod)
		}
	}
	if len(modules) == 0 {
		return fmt.Errorf("lora_target_modules %v match no module of this %s model (its block projections end in: %s)",
			c.TargetModules, m.Config.ModelType, strings.Join(m.projectionNames(), ", "))
	}
	ad := &adapters{cfg: c, byWeight: map[*tensor.Tensor]*loraLayer{}}
	for _, mod := range modules {
		w := m.byName[mod+".weight"]
		conv := m.Config.Family() == GPT2
		ws := m.weightShape(w)
		in, out := ws[1], ws[0]
		if conv {
			in, out = out, in
		}
		l := &loraLayer{module: mod, base: w, conv1d: conv, scale: loraScale(c.Alpha, c.R, c.UseRSLoRA)}
		tensor.NoGrad(func() {
			tensor.Tidy(func() {
				bound := 1 / math.Sqrt(float64(in))
				// drawn on the CPU from its generator, then moved: the
				// same seed gives the same adapters on every device (as
				// peft's nn.Linear init on the CPU before .to(device))
				a := tensor.ZerosOn([]int64{int64(c.R), in}, m.DType, tensor.CPU)
				a.Uniform_(-bound, bound)
				l.a = a.To(m.DType, m.Device).Keep()
				l.b = tensor.ZerosOn([]int64{out, int64(c.R)}, m.DType, m.Device).Keep()
				if c.UseDoRA {
					// peft's DoraLinearLayer.update_layer: the norm of W + s B A
					// with B = 0, so the outputs are unchanged at the start
					l.mag = m.doraNorm(l).Keep()
				}
			})
		})
		ad.layers = append(ad.layers, l)
		ad.byWeight[w] = l
	}
	if head := m.headModule(); m.Head == ScoreHead && !slices.Contains(c.ModulesToSave, head) {
		// PeftModelForSequenceClassification trains the new head in full
		// (its classifier_module_names: classifier, score)
		c.ModulesToSave = append(slices.Clone(c.ModulesToSave), head)
		ad.cfg.ModulesToSave = c.ModulesToSave
	}
	if ad.saved, err = m.modulesToSave(c.ModulesToSave); err != nil {
		ad.free()
		return err
	}
	m.lora = ad
	return nil
}

// projectionNames lists the distinct last components of m's block
// projections (for error messages).
func (m *Model) projectionNames() []string { return lastComponents(m.linearModules()) }

// lastComponents lists the distinct last dotted components of mods, in
// first-seen order (q_proj for model.layers.0.self_attn.q_proj).
func lastComponents(mods []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, mod := range mods {
		n := mod[strings.LastIndex(mod, ".")+1:]
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// modulesToSave returns the parameter names of the modules named (matched
// as target modules are), an error naming one that matches nothing.
func (m *Model) modulesToSave(mods []string) ([]string, error) {
	var names []string
	for _, mod := range mods {
		n := 0
		for _, p := range m.params {
			module := p.Name[:max(0, strings.LastIndex(p.Name, "."))]
			// the module or one inside it (RoBERTa's classifier.dense)
			if matchesTarget(module, []string{mod}) || strings.HasPrefix(module, mod+".") || strings.Contains(module, "."+mod+".") {
				names = append(names, p.Name)
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("lora_modules_to_save %q matches no module of this model (a %s model with %s)", mod, m.Config.ModelType, headName(m.Head))
		}
	}
	return names, nil
}

// headModule is the sequence-classification head's module: score, or an
// encoder's classifier.
func (m *Model) headModule() string {
	if m.Config.Encoder() {
		return "classifier"
	}
	return "score"
}

func headName(h Head) string {
	if h == ScoreHead {
		return "a score head (score)"
	}
	return "an LM head"
}

// loraScale is alpha/r, or alpha/sqrt(r) with rsLoRA (peft's
// LoraLayer.update_layer).
func loraScale(alpha float64, r int, rs bool) float64 {
	if rs {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

func (a *adapters) free() {
	for _, l := range a.layers {
		l.a.Free()
		l.b.Free()
		if l.mag != nil {
			l.mag.Free()
		}
	}
}

// Trainable returns what training updates: the adapters' A and B (named as
// peft saves them) and the modules_to_save parameters when m has adapters,
// else every parameter.
func (m *Model) Trainable() []Param {
	if m.lora == nil {
		return m.params
	}
	var out []Param
	for _, l := range m.lora.layers {
		out = append(out, Param{Name: loraKey(l.module, "A"), T: l.a}, Param{Name: loraKey(l.module, "B"), T: l.b})
		if l.mag != nil {
			out = append(out, Param{Name: magnitudeKey(l.module), T: l.mag})
		}
	}
	for _, n := range m.lora.saved {
		out = append(out, Param{Name: "base_model.model." + n, T: m.byName[n]})
	}
	return out
}

// loraKey is peft's on-disk key of lora_A or lora_B for a module.
func loraKey(module, ab string) string {
	return "base_model.model." + module + ".lora_" + ab + ".weight"
}

// magnitudeKey is peft's on-disk key of a module's DoRA magnitude (peft's
// save_and_load drops the in-memory ".weight" of lora_magnitude_vector).
func magnitudeKey(module string) string {
	return "base_model.model." + module + ".lora_magnitude_vector"
}

// denseWeight is the layer's base weight as (out, in), in the training
// dtype: dequantised for a 4- or 8-bit base (peft's
// dequantize_module_weight), transposed for Conv1D (transpose(weight,
// fan_in_fan_out)).
func (m *Model) denseWeight(l *loraLayer) *tensor.Tensor {
	w := m.baseWeight(l.base).ToDType(m.DType)
	if l.conv1d {
		w = w.Transpose(0, 1)
	}
	return w
}

// doraNorm is peft's DoraLinearLayer.get_weight_norm: the 2-norm of each
// output row of W + s B A (out), detached (DoRA Sec. 4.3 treats
// ||V + dV||_c as a constant in the gradient).
func (m *Model) doraNorm(l *loraLayer) *tensor.Tensor {
	var n *tensor.Tensor
	tensor.NoGrad(func() {
		w := m.denseWeight(l).Add(l.b.Matmul(l.a).MulScalar(l.scale))
		n = w.Mul(w).SumDim(1, false).Sqrt().Detach()
	})
	return n
}

// proj applies a block projection: x W^T + b (Linear), or x W + b for
// GPT-2's Conv1D, plus the LoRA update scale * B A dropout(x) when the
// weight is adapted and in does not disable adapters.
func (m *Model) proj(in *Input, x, w, b *tensor.Tensor) *tensor.Tensor {
	var y *tensor.Tensor
	gpt2 := m.Config.Family() == GPT2
	if p := m.packedWeight(in, x, w, !gpt2); p != nil { // a generation step: w packed once
		n := w.Size(0)
		if gpt2 {
			n = w.Size(1)
		}
		y = tensor.PackedLinear(x, p, b, n)
	} else if qw := m.quant[w]; qw != nil && !m.UnfusedQuant && (b == nil || !b.RequiresGrad()) {
		y = qw.linear(x, b, m.DType) // dequantised again in backward
	} else if gpt2 {
		y = conv1d(x, m.baseWeight(w), b)
	} else {
		y = x.Linear(m.baseWeight(w), b)
	}
	if m.lora == nil || in.DisableAdapters {
		return y
	}
	l := m.lora.byWeight[w]
	if l == nil {
		return y
	}
	xd := m.dropout(in, x, m.lora.cfg.Dropout)
	d := xd.Linear(l.a, nil).Linear(l.b, nil)
	if l.mag == nil {
		return y.Add(d.MulScalar(l.scale))
	}
	// DoRA (Liu et al. 2024, Eq. 5), as peft's DoraLinearLayer.forward adds
	// it to the base output y = x W^T + bias:
	//   y + (m/||W + sBA|| - 1) * dropout(x) W^T + m/||W + sBA|| * s B A dropout(x)
	// with the norm detached; without dropout this is m/||W + sBA|| *
	// x (W + sBA)^T + bias. The base term reuses y - bias when dropout is
	// off (peft's base_result), and recomputes dropout(x) W^T when it is on.
	ms := l.mag.Div(m.doraNorm(l)) // (out)
	var base *tensor.Tensor
	if xd == x {
		base = y
		if b != nil {
			base = y.Sub(b)
		}
	} else {
		base = xd.Linear(m.denseWeight(l), nil)
	}
	return y.Add(base.Mul(ms.AddScalar(-1))).Add(d.Mul(ms).MulScalar(l.scale))
}

// delta is the layer's weight update in the base weight's layout:
// scale * B A, transposed for Conv1D (peft's get_delta_weight).
func (l *loraLayer) delta() *tensor.Tensor {
	d := l.b.Matmul(l.a).MulScalar(l.scale) // (out, in)
	if l.conv1d {
		d = d.Transpose(0, 1)
	}
	return d
}

// MergeAdapters adds each adapter's update into its base weight and drops
// the adapters (peft's merge_and_unload): the model then computes what the
// adapted model computed, with no adapters.
func (m *Model) MergeAdapters() (err error) {
	defer tensor.Recover(&err, "merge LoRA adapters")
	if m.lora == nil {
		return errors.New("model: no adapters to merge")
	}
	if m.quant != nil {
		return errors.New("model: merging adapters into a 4- or 8-bit base changes its outputs (peft#2321): load the base in float (without load_in_4bit/load_in_8bit) and merge there, as rl merge does")
	}
	tensor.NoGrad(func() {
		for _, l := range m.lora.layers {
			tensor.Tidy(func() {
				w := l.base.ToDType(tensor.Float32).Add(l.delta().ToDType(tensor.Float32))
				if l.mag != nil {
					// peft's Linear.merge with DoRA: W' = m/||W + sBA|| * (W + sBA),
					// the factor per output row (per column of a Conv1D weight)
					f := l.mag.ToDType(tensor.Float32).Div(m.doraNorm(l).ToDType(tensor.Float32))
					if l.conv1d {
						w = w.Mul(f.Unsqueeze(0))
					} else {
						w = w.Mul(f.Unsqueeze(1))
					}
				}
				l.base.Copy_(w.ToDType(l.base.DType()))
			})
		}
	})
	m.lora.free()
	m.lora = nil
	return nil
}

// SaveAdapter writes the adapters as peft does: adapter_config.json and
// adapter_model.safetensors (A, B and modules_to_save, in the training
// dtype or SaveDType), each written atomically. An adapter with no tensors,
// or with non-finite values, is refused.
func (m *Model) SaveAdapter(dir string) (err error) {
	defer tensor.Recover(&err, "save adapter "+dir)
	if m.lora == nil {
		return errors.New("model: no adapters to save")
	}
	params := m.Trainable()
	if len(params) == 0 {
		return errors.New("model: refusing to save an adapter with no tensors")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dt := m.SaveDType
	if dt == 0 {
		dt = m.DType
	}
	sdt, ok := torchToSafetensors[dt]
	if !ok {
		return fmt.Errorf("model: save adapter: dtype %s", dt)
	}
	f := &safetensors.File{Tensors: map[string]safetensors.Tensor{}, Metadata: map[string]string{"format": "pt"}}
	var bad []string
	tensor.NoGrad(func() {
		for _, p := range params {
			tensor.Tidy(func() {
				t := p.T.ToDType(dt).To(dt, tensor.CPU)
				if t.ToDType(tensor.Float32).IsFinite().LogicalNot().Sum().Item() > 0 {
					bad = append(bad, p.Name)
				}
				f.Tensors[p.Name] = safetensors.Tensor{DType: sdt, Shape: t.Shape(), Data: t.Contiguous().Bytes()}
			})
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("model: refusing to save adapter tensors with NaN or Inf: %s", strings.Join(bad, ", "))
	}
	if err := safetensors.WriteFile(filepath.Join(dir, AdapterWeightsFile), f); err != nil {
		return err
	}
	b, err := m.adapterConfigJSON()
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(dir, AdapterConfigFile), append(b, '\n'), 0o644)
}

// adapterConfigJSON is adapter_config.json with peft's LoraConfig fields.
func (m *Model) adapterConfigJSON() ([]byte, error) {
	c := m.lora.cfg
	out := map[string]any{}
	for k, v := range c.Raw {
		out[k] = v
	}
	var mods []string
	for _, l := range m.lora.layers {
		mods = append(mods, l.module)
	}
	modules := lastComponents(mods)
	sort.Strings(modules)
	var toSave any
	if len(c.ModulesToSave) > 0 {
		toSave = c.ModulesToSave
	}
	for k, v := range map[string]any{
		"peft_type": "LORA", "task_type": c.TaskType, "r": c.R, "lora_alpha": c.Alpha, "lora_dropout": c.Dropout,
		"target_modules": modules, "modules_to_save": toSave, "fan_in_fan_out": m.Config.Family() == GPT2,
		"bias": "none", "use_rslora": c.UseRSLoRA, "use_dora": c.UseDoRA, "base_model_name_or_path": c.BaseModel,
		"init_lora_weights": true, "inference_mode": true,
	} {
		out[k] = v
	}
	for k, v := range map[string]any{"layers_to_transform": nil, "layers_pattern": nil, "rank_pattern": map[string]any{}, "alpha_pattern": map[string]any{}, "revision": nil} {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return json.MarshalIndent(out, "", "  ")
}

// IsAdapterDir reports whether dir holds a peft adapter (adapter_config.json).
func IsAdapterDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, AdapterConfigFile))
	return err == nil
}

// ReadLoraConfig reads dir's adapter_config.json, refusing what rl cannot
// apply exactly (other peft types, per-module rank or alpha patterns,
// trained biases), naming the file and field.
func ReadLoraConfig(dir string) (*LoraConfig, error) {
	path := filepath.Join(dir, AdapterConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: read adapter config: %w", err)
	}
	raw := map[string]any{}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("model: %s: invalid JSON: %w", path, err)
	}
	bad := func(format string, v ...any) error {
		return fmt.Errorf("model: %s: %s", path, fmt.Sprintf(format, v...))
	}
	if t, _ := raw["peft_type"].(string); t != "LORA" {
		return nil, bad("peft_type %v: rl loads LORA adapters only", raw["peft_type"])
	}
	c := &LoraConfig{Raw: raw}
	r, ok := raw["r"].(float64)
	if !ok || r < 1 || r != math.Trunc(r) {
		return nil, bad("r %v: want a positive integer", raw["r"])
	}
	c.R = int(r)
	if c.Alpha, ok = raw["lora_alpha"].(float64); !ok || !(c.Alpha > 0) {
		return nil, bad("lora_alpha %v: want a positive number", raw["lora_alpha"])
	}
	c.Dropout, _ = raw["lora_dropout"].(float64)
	c.UseRSLoRA, _ = raw["use_rslora"].(bool)
	c.TaskType, _ = raw["task_type"].(string)
	c.BaseModel, _ = raw["base_model_name_or_path"].(string)
	c.UseDoRA, _ = raw["use_dora"].(bool)
	if bias, _ := raw["bias"].(string); bias != "" && bias != "none" {
		return nil, bad("bias %q: adapters that train biases are not supported (bias none is)", bias)
	}
	for _, k := range []string{"rank_pattern", "alpha_pattern"} {
		if p, ok := raw[k].(map[string]any); ok && len(p) > 0 {
			return nil, bad("%s %v: per-module ranks or alphas are not supported yet", k, p)
		}
	}
	switch t := raw["target_modules"].(type) {
	case []any:
		for _, v := range t {
			if s, ok := v.(string); ok {
				c.TargetModules = append(c.TargetModules, s)
			}
		}
	case string:
		c.TargetModules = []string{t}
	}
	if l, ok := raw["modules_to_save"].([]any); ok {
		for _, v := range l {
			if s, ok := v.(string); ok {
				c.ModulesToSave = append(c.ModulesToSave, s)
			}
		}
	}
	for _, k := range []string{"peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "target_modules", "modules_to_save",
		"fan_in_fan_out", "bias", "use_rslora", "use_dora", "base_model_name_or_path", "init_lora_weights", "inference_mode"} {
		delete(c.Raw, k)
	}
	return c, nil
}

var loraKeyRE = regexp.MustCompile(`^base_model\.model\.(.+)\.lora_([AB])\.weight$`)

// LoadAdapter reads a peft adapter folder onto base model m: a LoRA layer
// for each module the file has lora_A/lora_B for (peft's own keys, with or
// without the ".default" adapter name), modules_to_save copied into the
// base's parameters. Every key must name a module of m with the shapes
// peft would give it; anything else is an error naming the file and key.
func (m *Model) LoadAdapter(dir string) (err error) {
	defer tensor.Recover(&err, "load adapter "+dir)
	if m.lora != nil {
		return errors.New("model: the model already has adapters")
	}
	c, err := ReadLoraConfig(dir)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, AdapterWeightsFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "adapter_model.bin")); serr == nil {
			return fmt.Errorf("model: %s has adapter_model.bin only: save the adapter as safetensors (peft's save_pretrained default)", dir)
		}
		return err
	}
	ad := &adapters{cfg: *c, byWeight: map[*tensor.Tensor]*loraLayer{}}
	ok := false
	defer func() {
		if !ok {
			ad.free()
		}
	}()
	layers := map[string]*loraLayer{}
	var problems []string
	type pending struct {
		dst *tensor.Tensor
		st  safetensors.Tensor
	}
	var copies []pending
	for _, name := range f.Names() {
		key := strings.Replace(name, ".default.weight", ".weight", 1) // in-memory names
		if mod, isMag := strings.CutSuffix(strings.TrimSuffix(key, ".weight"), ".lora_magnitude_vector"); isMag {
			mod = strings.TrimPrefix(mod, "base_model.model.")
			w := m.byName[mod+".weight"]
			if w == nil || len(m.weightShape(w)) != 2 {
				problems = append(problems, fmt.Sprintf("%s adapts %s, which the base model (%s) lacks", name, mod, m.Config.ModelType))
				continue
			}
			if !c.UseDoRA {
				problems = append(problems, fmt.Sprintf("%s is a DoRA magnitude but adapter_config.json's use_dora is not true", name))
				continue
			}
			l := layers[mod]
			if l == nil {
				l = &loraLayer{module: mod, base: w, conv1d: m.Config.Family() == GPT2}
				layers[mod] = l
			}
			st := f.Tensors[name]
			l.mag = tensor.FromBytes(st.Data, st.Shape, safetensorsToTorch[st.DType]).To(m.DType, m.Device).Keep()
			continue
		}
		mt := loraKeyRE.FindStringSubmatch(key)
		if mt == nil {
			base, found := strings.CutPrefix(key, "base_model.model.")
			if p := m.byName[base]; found && p != nil {
				if !slices.Equal(f.Tensors[name].Shape, p.Shape()) {
					problems = append(problems, fmt.Sprintf("%s has shape %v, the base's %s is %v", name, f.Tensors[name].Shape, base, p.Shape()))
					continue
				}
				ad.saved = append(ad.saved, base)
				copies = append(copies, pending{p, f.Tensors[name]})
				continue
			}
			problems = append(problems, fmt.Sprintf("%s is neither a lora_A/lora_B weight nor a parameter of the base model", name))
			continue
		}
		mod, ab := mt[1], mt[2]
		w := m.byName[mod+".weight"]
		if w == nil || len(m.weightShape(w)) != 2 {
			problems = append(problems, fmt.Sprintf("%s adapts %s, which the base model (%s) lacks", name, mod, m.Config.ModelType))
			continue
		}
		l := layers[mod]
		if l == nil {
			l = &loraLayer{module: mod, base: w, conv1d: m.Config.Family() == GPT2}
			layers[mod] = l
		}
		st := f.Tensors[name]
		t := tensor.FromBytes(st.Data, st.Shape, safetensorsToTorch[st.DType]).To(m.DType, m.Device).Keep()
		if ab == "A" {
			l.a = t
		} else {
			l.b = t
		}
	}
	mods := make([]string, 0, len(layers))
	for mod := range layers {
		mods = append(mods, mod)
	}
	sort.Strings(mods)
	for _, mod := range mods {
		l := layers[mod]
		ad.layers = append(ad.layers, l)
		if l.a == nil || l.b == nil {
			problems = append(problems, fmt.Sprintf("%s has only one of lora_A and lora_B", mod))
			continue
		}
		bs := m.weightShape(l.base)
		in, out := bs[1], bs[0]
		if l.conv1d {
			in, out = out, in
		}
		r := l.a.Size(0)
		if l.a.Dim() != 2 || l.b.Dim() != 2 || l.a.Size(1) != in || l.b.Size(0) != out || l.b.Size(1) != r {
			problems = append(problems, fmt.Sprintf("%s: lora_A %v and lora_B %v do not fit the base weight %v (want [r, %d] and [%d, r])", mod, l.a.Shape(), l.b.Shape(), bs, in, out))
			continue
		}
		if int(r) != c.R {
			problems = append(problems, fmt.Sprintf("%s: rank %d, adapter_config.json's r is %d", mod, r, c.R))
			continue
		}
		if c.UseDoRA && l.mag == nil {
			problems = append(problems, fmt.Sprintf("%s: use_dora is true but the file has no %s", mod, magnitudeKey(mod)))
			continue
		}
		if l.mag != nil && (l.mag.Dim() != 1 || l.mag.Size(0) != out) {
			problems = append(problems, fmt.Sprintf("%s: lora_magnitude_vector %v does not fit the base weight %v (want [%d])", mod, l.mag.Shape(), bs, out))
			continue
		}
		l.scale = loraScale(c.Alpha, c.R, c.UseRSLoRA)
		ad.byWeight[l.base] = l
	}
	if len(ad.layers) == 0 && len(copies) == 0 {
		problems = append(problems, "no lora_A/lora_B tensors")
	}
	if len(problems) > 0 {
		const show = 6
		more := ""
		if len(problems) > show {
			more = fmt.Sprintf("; and %d more", len(problems)-show)
			problems = problems[:show]
		}
		return fmt.Errorf("model: %s does not fit the base model: %s%s", path, strings.Join(problems, "; "), more)
	}
	if err := CheckFinite(f, dir); err != nil {
		return err
	}
	tensor.NoGrad(func() {
		for _, p := range copies {
			tensor.Tidy(func() {
				p.dst.Copy_(tensor.FromBytes(p.st.Data, p.st.Shape, safetensorsToTorch[p.st.DType]).To(p.dst.DType(), p.dst.Device()))
			})
		}
	})
	if c.TaskType == "" {
		ad.cfg.TaskType = "CAUSAL_LM"
		if m.Head == ScoreHead {
			ad.cfg.TaskType = "SEQ_CLS"
		}
	}
	m.lora = ad
	ok = true
	return nil
}

// AdapterBase returns the base model folder of adapter folder dir: base
// when set, else adapter_config.json's base_model_name_or_path, which must
// be a folder here (a Hub id is not yet resolved: name the folder).
func AdapterBase(dir, base string) (string, error) {
	c, err := ReadLoraConfig(dir)
	if err != nil {
		return "", err
	}
	from := "--base-model"
	if base == "" {
		base, from = c.BaseModel, "its base_model_name_or_path"
	}
	if base == "" {
		return "", fmt.Errorf("model: %s is a peft adapter without base_model_name_or_path: give the base model with --base-model", dir)
	}
	what := "--base-model"
	if from != what {
		what = "base_model_name_or_path"
	}
	if base, err = hub.ResolveModel(context.Background(), what, base); err != nil { // a Hub id, as peft writes it
		return "", fmt.Errorf("model: base of the peft adapter %s: %w; or give the base model's folder with --base-model", dir, err)
	}
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		return "", fmt.Errorf("model: %s is a peft adapter whose base (%s, %s) is not a folder here: give the base model's folder with --base-model", dir, base, from)
	}
	return base, nil
}

// loadAdapterDir loads an adapter folder's base, then the adapter on it.
func loadAdapterDir(dir string, opts LoadOptions, saveDType tensor.DType) (*Model, error) {
	base, err := AdapterBase(dir, opts.BaseModel)
	if err != nil {
		return nil, err
	}
	o := opts
	o.DType, o.BaseModel = saveDType, ""
	o.Quant = nil // the adapter is merged or applied onto a float base; PEFTConfig.Prepare quantises after
	m, err := Load(base, o)
	if err != nil {
		return nil, fmt.Errorf("model: base of adapter %s: %w", dir, err)
	}
	if m.HasAdapters() { // an adapter trained on an adapted model (SFT LoRA, then DPO LoRA): stacked, merged
		if err := m.MergeAdapters(); err != nil {
			m.Free()
			return nil, err
		}
	}
	if err := m.LoadAdapter(dir); err != nil {
		m.Free()
		return nil, err
	}
	m.lora.cfg.BaseModel = base
	if opts.MergeAdapters {
		if err := m.MergeAdapters(); err != nil {
			m.Free()
			return nil, err
		}
	}
	return m, nil
}

// NumTrainable counts the elements of Trainable (peft's
// print_trainable_parameters).
func (m *Model) NumTrainable() int64 {
	var n int64
	for _, p := range m.Trainable() {
		n += int64(p.T.Numel())
	}
	return n
}

// Merged is o with MergeAdapters: an adapter folder loads merged into its
// base (a frozen reference, or a model trained in full).
func (o LoadOptions) Merged() LoadOptions {
	o.MergeAdapters = true
	o.Quant = nil // merged into a float base (peft#2321)
	return o
}
