package train

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rlsuite/rl/shared/model"
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

	// PEFT (TRL's ModelConfig names and defaults).

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
	// UseDoRA is DoRA (Liu et al. 2024); not implemented yet: refused.
	UseDoRA bool `yaml:"use_dora" help:"Weight-decomposed LoRA (DoRA); not supported yet." category:"peft"`
}

// DefaultModelConfig returns TRL's ModelConfig defaults: lora_r 16,
// lora_alpha 32, lora_dropout 0.05.
func DefaultModelConfig() ModelConfig {
	return ModelConfig{LoraR: 16, LoraAlpha: 32, LoraDropout: 0.05}
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
	if m.UseDoRA {
		errs = append(errs, errors.New("use_dora: DoRA is not supported yet; train plain LoRA (use_peft) instead"))
	}
	if !m.UsePEFT {
		for key, set := range map[string]bool{"lora_target_modules": len(m.LoraTargetModules) > 0, "lora_modules_to_save": len(m.LoraModulesToSave) > 0, "use_rslora": m.UseRSLoRA} {
			if set {
				errs = append(errs, fmt.Errorf("%s is set but use_peft is not: add --use-peft to train LoRA adapters", key))
			}
		}
	}
	switch m.LoraTaskType {
	case "", "CAUSAL_LM", "SEQ_CLS":
	default:
		errs = append(errs, fmt.Errorf("lora_task_type %q: want CAUSAL_LM or SEQ_CLS", m.LoraTaskType))
	}
	return errors.Join(errs...)
}

// ModelLoadOptions adds the model-loading settings (the adapter's base) to o.
func (m *ModelConfig) ModelLoadOptions(o model.LoadOptions) model.LoadOptions {
	o.BaseModel = m.BaseModel
	return o
}

// PreparePEFT readies a loaded model for training: an adapter it was loaded
// with (model_name_or_path a peft folder) is merged into its base, so that
// it is the model training starts from (and the reference of DPO-like
// trainers); then, with use_peft, fresh LoRA adapters are added, whose
// base_model_name_or_path is model_name_or_path.
func (m *ModelConfig) PreparePEFT(mdl *model.Model) error {
	if mdl.HasAdapters() {
		if err := mdl.MergeAdapters(); err != nil {
			return err
		}
	}
	if !m.UsePEFT {
		return nil
	}
	base, err := filepath.Abs(m.Model)
	if err != nil {
		base = m.Model
	}
	if err := mdl.AddLora(model.LoraConfig{R: m.LoraR, Alpha: m.LoraAlpha, Dropout: m.LoraDropout, TargetModules: m.LoraTargetModules,
		ModulesToSave: m.LoraModulesToSave, UseRSLoRA: m.UseRSLoRA, TaskType: m.LoraTaskType, BaseModel: base}); err != nil {
		return fmt.Errorf("use_peft: %w", err)
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
