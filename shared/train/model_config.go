package train

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// ModelConfig is TRL's ModelConfig (trl/trainer/model_config.py): which
// model to start from and how to load it, the same fields and flags in every
// trainer. Embed it with `yaml:",inline"`.
type ModelConfig struct {
	// Model is model_name_or_path: a checkpoint directory (Hugging Face
	// layout: config.json and safetensors or pytorch_model.bin).
	Model string `yaml:"model_name_or_path" alias:"model" help:"Checkpoint directory to start from (Hugging Face layout)." category:"model"`
	// Tokenizer is rl's tokenizer_name_or_path (TRL takes the model's); "":
	// the model's.
	Tokenizer string `yaml:"tokenizer_name_or_path" alias:"tokenizer" help:"Tokenizer directory (default: the model's)." category:"model"`
	// DType is TRL's dtype: float32 or bfloat16 (bf16); "": train in
	// float32 and save in the source checkpoint's dtype.
	DType string `yaml:"dtype" help:"Parameter and saved dtype: float32 or bfloat16; unset: train in float32, save in the source checkpoint's dtype." category:"model"`
	// BaseModel is the base of a peft adapter given as model_name_or_path
	// (default: its base_model_name_or_path). rl's addition.
	BaseModel string `yaml:"base_model" help:"Base model folder of a peft adapter given as --model (default: the adapter's base_model_name_or_path)." category:"model"`

	PEFTConfig `yaml:",inline"`
}

// PEFTConfig is ModelConfig's LoRA and quantisation part (TRL's names and
// defaults), on its own for trainers whose models come from other flags
// (PPO's sft_model_path).
type PEFTConfig struct {

	// UsePEFT trains LoRA adapters instead of every weight; the output is
	// a peft adapter folder. Default false.
	UsePEFT bool `yaml:"use_peft" help:"Train LoRA adapters (peft) instead of every weight; the output folder is a peft adapter." category:"peft"`
	// LoraR is the adapters' rank (default 16).
	LoraR int `yaml:"lora_r" help:"LoRA rank." category:"peft" range:"[1,inf)"`
	// LoraAlpha scales the update by lora_alpha/lora_r (default 32).
	LoraAlpha float64 `yaml:"lora_alpha" help:"LoRA alpha: the update is scaled by lora_alpha/lora_r (lora_alpha/sqrt(lora_r) with use_rslora)." category:"peft" range:"(0,inf)"`
	// LoraDropout is the dropout on the adapters' input (default 0.05).
	LoraDropout float64 `yaml:"lora_dropout" help:"Dropout on the adapters' input." category:"peft" range:"[0,1)"`
	// LoraTargetModules names the adapted modules (default: peft's per
	// family: gpt2 c_attn; llama, mistral, qwen2, qwen3, gemma q_proj,v_proj;
	// phi3 qkv_proj); all-linear adapts every block projection.
	LoraTargetModules []string `yaml:"lora_target_modules" help:"Modules to adapt (e.g. q_proj,k_proj,v_proj,o_proj), or all-linear; default: peft's for the family (gpt2 c_attn, llama q_proj,v_proj)." category:"peft"`
	// LoraModulesToSave are trained in full and saved with the adapter
	// (TRL recommends score for reward models and classifiers).
	LoraModulesToSave []string `yaml:"lora_modules_to_save" help:"Modules trained in full and saved with the adapter (e.g. score for reward models)." category:"peft"`
	// LoraTaskType is peft's task_type (default CAUSAL_LM; SEQ_CLS for
	// score heads).
	LoraTaskType string `yaml:"lora_task_type" help:"peft task_type written to adapter_config.json (CAUSAL_LM; score-head models: SEQ_CLS)." category:"peft"`
	// UseRSLoRA scales by lora_alpha/sqrt(lora_r) (Kalajdzievski 2023).
	UseRSLoRA bool `yaml:"use_rslora" help:"Rank-stabilised LoRA: scale by lora_alpha/sqrt(lora_r)." category:"peft"`
	// UseDoRA is DoRA (Liu et al. 2024, arXiv:2402.09353): each adapted
	// projection also trains a magnitude per output row, peft's
	// lora_magnitude_vector. Default false.
	UseDoRA bool `yaml:"use_dora" help:"Weight-decomposed LoRA (DoRA): also train a magnitude per output row (peft's use_dora); needs use_peft." category:"peft"`

	// Quantised bases (QLoRA; TRL's ModelConfig names, bitsandbytes' formats).

	// LoadIn4bit stores the base's block projections in 4 bits (QLoRA);
	// needs use_peft.
	LoadIn4bit bool `yaml:"load_in_4bit" help:"Store the frozen base's projections in 4 bits (QLoRA, bitsandbytes' format); needs use_peft." category:"peft"`
	// LoadIn8bit stores them in 8 bits (row-wise absmax, weight-only).
	LoadIn8bit bool `yaml:"load_in_8bit" help:"Store the frozen base's projections in 8 bits (row-wise absmax int8, weight-only); needs use_peft." category:"peft"`
	// Bnb4bitQuantType is nf4 (default, QLoRA's NormalFloat) or fp4.
	Bnb4bitQuantType string `yaml:"bnb_4bit_quant_type" help:"4-bit data type: nf4 (NormalFloat, QLoRA's) or fp4." category:"peft"`
	// UseBnbNestedQuant quantises the 4-bit blocks' absmax too (double
	// quantisation). Default false.
	UseBnbNestedQuant bool `yaml:"use_bnb_nested_quant" help:"Double quantisation: store the 4-bit blocks' absmax in 8 bits too." category:"peft"`
}

// DefaultModelConfig returns TRL's ModelConfig defaults: lora_r 16,
// lora_alpha 32, lora_dropout 0.05, bnb_4bit_quant_type nf4.
func DefaultModelConfig() ModelConfig {
	return ModelConfig{PEFTConfig: DefaultPEFTConfig()}
}

// DefaultPEFTConfig is DefaultModelConfig's PEFT part.
func DefaultPEFTConfig() PEFTConfig {
	return PEFTConfig{LoraR: 16, LoraAlpha: 32, LoraDropout: 0.05, Bnb4bitQuantType: "nf4"}
}

// Validate checks the dtype's spelling (the model itself is checked when
// it loads, with its file named).
func (m *ModelConfig) Validate() error {
	var errs []error
	if m.DType != "" {
		if _, err := model.ParamDType(m.DType); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.PEFTConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate checks the PEFT settings together.
func (m *PEFTConfig) Validate() error {
	var errs []error
	if !m.UsePEFT {
		for key, set := range map[string]bool{"lora_target_modules": len(m.LoraTargetModules) > 0, "lora_modules_to_save": len(m.LoraModulesToSave) > 0, "use_rslora": m.UseRSLoRA, "use_dora": m.UseDoRA} {
			if set {
				errs = append(errs, fmt.Errorf("%s is set but use_peft is not: add --use-peft to train LoRA adapters", key))
			}
		}
	}
	if (m.LoadIn4bit || m.LoadIn8bit) && !m.UsePEFT {
		errs = append(errs, errors.New("load_in_4bit / load_in_8bit freeze the base in few bits: train adapters on it with use_peft"))
	}
	if m.LoadIn4bit && m.LoadIn8bit {
		errs = append(errs, errors.New("load_in_4bit and load_in_8bit: choose one"))
	}
	switch m.Bnb4bitQuantType {
	case "", "nf4", "fp4":
	default:
		errs = append(errs, fmt.Errorf("bnb_4bit_quant_type %q: want nf4 or fp4", m.Bnb4bitQuantType))
	}
	switch m.LoraTaskType {
	case "", "CAUSAL_LM", "SEQ_CLS":
	default:
		errs = append(errs, fmt.Errorf("lora_task_type %q: want CAUSAL_LM or SEQ_CLS", m.LoraTaskType))
	}
	return errors.Join(errs...)
}

// Device is where trainers put their models (and so their batches,
// optimizer state, reference, reward and value models, and generation):
// rl's global --device. CPU unless set.
var Device = tensor.CPU

// ModelLoadOptions adds the model-loading settings (the adapter's base,
// and Device unless o names one) to o.
func (m *ModelConfig) ModelLoadOptions(o model.LoadOptions) model.LoadOptions {
	o.BaseModel = m.BaseModel
	o.Quant = m.PEFTConfig.quant() // quantised as read: no float copy of the projections (Merged drops it)
	if o.Device == tensor.CPU {
		o.Device = Device
	}
	return o
}

// PreparePEFT readies a loaded model for training: an adapter it was loaded
// with (model_name_or_path a peft folder) is merged into its base, so that
// it is the model training starts from (and the reference of DPO-like
// trainers); then, with use_peft, fresh LoRA adapters are added, drawn
// from seed (as TRL seeds before get_peft_model), whose
// base_model_name_or_path is model_name_or_path.
func (m *ModelConfig) PreparePEFT(mdl *model.Model, seed int64) error {
	return m.PEFTConfig.Prepare(mdl, m.Model, seed)
}

// Prepare is ModelConfig.PreparePEFT for a model loaded from path.
func (m *PEFTConfig) Prepare(mdl *model.Model, path string, seed int64) error {
	if mdl.HasAdapters() {
		if err := mdl.MergeAdapters(); err != nil {
			return err
		}
	}
	if !m.UsePEFT {
		return nil
	}
	if path == "" {
		return errors.New("use_peft: LoRA adapts a saved base model; give model_name_or_path (rl init writes one from a preset)")
	}
	base, err := filepath.Abs(path)
	if err != nil {
		base = path
	}
	if q := m.quant(); q != nil && !mdl.Quantized() { // else quantised while loading (ModelLoadOptions)
		if err := mdl.Quantize(*q); err != nil {
			return err
		}
	}
	tensor.ManualSeed(seed)
	if err := mdl.AddLora(model.LoraConfig{R: m.LoraR, Alpha: m.LoraAlpha, Dropout: m.LoraDropout, TargetModules: m.LoraTargetModules,
		ModulesToSave: m.LoraModulesToSave, UseRSLoRA: m.UseRSLoRA, UseDoRA: m.UseDoRA, TaskType: m.LoraTaskType, BaseModel: base}); err != nil {
		return fmt.Errorf("use_peft: %w", err)
	}
	return nil
}

// quant is the base's quantisation (load_in_4bit / load_in_8bit with
// use_peft), nil for a float base.
func (m *PEFTConfig) quant() *model.QuantConfig {
	switch {
	case !m.UsePEFT:
		return nil
	case m.LoadIn4bit:
		return &model.QuantConfig{Bits: 4, QuantType: m.Bnb4bitQuantType, DoubleQuant: m.UseBnbNestedQuant}
	case m.LoadIn8bit:
		return &model.QuantConfig{Bits: 8}
	}
	return nil
}

// TokenizerPath is the tokenizer's directory: Tokenizer, else the model's.
func (m *ModelConfig) TokenizerPath() string {
	if m.Tokenizer != "" {
		return m.Tokenizer
	}
	return m.Model
}

// IsEncoder reports whether the run's model is an encoder (BERT, RoBERTa,
// ...), read from --model's config.json or from init (a preset name or a
// config.json) without loading weights; false when that cannot be told.
func (c ModelConfig) IsEncoder(init string) bool {
	var mc *model.Config
	switch {
	case c.Model != "":
		mc, _ = model.ReadConfig(filepath.Join(c.Model, "config.json"))
	case strings.HasSuffix(init, ".json"):
		mc, _ = model.ReadConfig(init)
	case init != "":
		mc, _ = model.Preset(init, 1<<10)
	}
	return mc != nil && mc.Encoder()
}
