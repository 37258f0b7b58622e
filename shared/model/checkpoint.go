package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// LoadOptions says how to build a model from a checkpoint directory.
type LoadOptions struct {
	// Head is the head wanted. Loading a causal-LM checkpoint with
	// ScoreHead drops lm_head and initialises score.weight (as
	// AutoModelForSequenceClassification.from_pretrained does).
	Head Head
	// NumLabels for a new score head; default 1 (reward and value models).
	NumLabels int
	// DType of the parameters; default Float32. When set, Save writes the
	// weights in it too; when zero, Save writes them in the source's
	// torch_dtype (Model.SaveDType).
	DType tensor.DType
	// Device; default CPU.
	Device tensor.Device
	// BaseModel is the base of a peft adapter folder (default: its
	// adapter_config.json's base_model_name_or_path).
	BaseModel string
	// MergeAdapters folds an adapter folder's adapter into its base after
	// loading (a frozen reference or a model trained in full).
	MergeAdapters bool
	// Quant, when set, stores the block projections in 4 or 8 bits as they
	// are read (Model.Quantize's format and bytes), so no float copy of
	// them is ever built: QLoRA's load_in_4bit / load_in_8bit. Ignored for
	// adapter folders, which load onto a float base.
	Quant *QuantConfig
}

var safetensorsToTorch = map[safetensors.DType]tensor.DType{
	safetensors.F32: tensor.Float32, safetensors.F16: tensor.Float16, safetensors.BF16: tensor.BFloat16,
	safetensors.F64: tensor.Float64, safetensors.I64: tensor.Int64, safetensors.I32: tensor.Int32,
}

var torchToSafetensors = map[tensor.DType]safetensors.DType{
	tensor.Float32: safetensors.F32, tensor.Float16: safetensors.F16, tensor.BFloat16: safetensors.BF16,
	tensor.Float64: safetensors.F64, tensor.Int64: safetensors.I64, tensor.Int32: safetensors.I32,
}

// torchDtypeName is config.json's torch_dtype spelling.
var torchDtypeName = map[tensor.DType]string{tensor.Float32: "float32", tensor.BFloat16: "bfloat16", tensor.Float16: "float16"}

// ParseDType reads a trainer's dtype option into LoadOptions.DType: ""
// (the trainers' default) gives zero, which trains in float32 and saves
// in the source checkpoint's dtype; a name ("float32", "bfloat16") is
// explicit, for the parameters and the saved weights alike.
func ParseDType(s string) (tensor.DType, error) {
	if s == "" {
		return 0, nil
	}
	return ParamDType(s)
}

// Load reads a Hugging Face checkpoint directory: config.json and
// model.safetensors (or a sharded model.safetensors.index.json).
func Load(dir string, opts LoadOptions) (m *Model, err error) {
	defer tensor.Recover(&err, "model: load "+dir)
	saveDType := opts.DType
	if opts.DType == 0 {
		opts.DType = tensor.Float32
	}
	if opts.DType != tensor.Float32 && opts.DType != tensor.BFloat16 && opts.DType != tensor.Float16 {
		return nil, fmt.Errorf("model: load %s: unsupported dtype %s", dir, opts.DType)
	}
	if opts.NumLabels == 0 {
		opts.NumLabels = 1
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("model: load: %w", err)
	}
	if IsAdapterDir(dir) {
		return loadAdapterDir(dir, opts, saveDType)
	}
	cfg, err := ReadConfig(configPath(dir))
	if err != nil {
		return nil, err
	}
	// The safetensors file (or each shard) mapped, not read: every tensor
	// is copied (or quantised, opts.Quant) and its pages given back one at
	// a time, so neither a float load nor quantise-while-loading holds the
	// whole checkpoint besides the model. pytorch_model.bin is read whole.
	mapped, err := safetensors.MapModelDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer mapped.Close() // after assemble: every tensor is copied by then
	f := mapped.File
	prefix := cfg.prefix()
	names := map[string]string{} // HF full name -> name in file
	for _, n := range f.Names() {
		full := n
		if !strings.HasPrefix(n, prefix) && n != "lm_head.weight" && n != "score.weight" && !strings.HasPrefix(n, "score.") && !(cfg.Encoder() && cfg.isEncoderHead(n)) {
			full = prefix + n // a base model (GPT2Model, LlamaModel, BertModel) saved without prefix
		}
		if cfg.Encoder() {
			full = legacyNorm(full)
		}
		names[full] = n
	}
	_, hasScore := names["score.weight"]
	if cfg.Encoder() {
		if opts.Head == LMHead {
			return nil, fmt.Errorf("model: load %s: %w", dir, errNoLMHead)
		}
		hasScore = false
		for full := range names {
			hasScore = hasScore || strings.HasPrefix(full, "classifier.")
		}
		if hasScore {
			// num_labels from the classifier's output rows
			out := "classifier.weight"
			if cfg.Family() == RoBERTa {
				out = "classifier.out_proj.weight"
			}
			n, ok := names[out]
			if !ok || len(f.Tensors[n].Shape) != 2 {
				return nil, fmt.Errorf("model: load %s: a %s classifier needs %s of shape (num_labels, hidden)", dir, cfg.ModelType, out)
			}
			rows := int(f.Tensors[n].Shape[0])
			if cfg.NumLabels > 0 && cfg.NumLabels != rows {
				// from_pretrained fails on the size mismatch too
				return nil, fmt.Errorf("model: load %s: config.json has %d labels (num_labels / id2label) but %s has shape %v: the config and the weights disagree", dir, cfg.NumLabels, out, f.Tensors[n].Shape)
			}
			cfg.NumLabels = rows
		} else {
			cfg.NumLabels = opts.NumLabels
		}
	}
	switch {
	case cfg.Encoder():
	case opts.Head == LMHead && hasScore:
		return nil, fmt.Errorf("model: load %s: a sequence-classification checkpoint (score.weight) has no LM head", dir)
	case opts.Head == LMHead && !cfg.TieWordEmbeddings:
		if _, ok := names["lm_head.weight"]; !ok {
			return nil, fmt.Errorf("model: load %s: tie_word_embeddings is false but there is no lm_head.weight", dir)
		}
	case opts.Head == ScoreHead && hasScore:
		shape := f.Tensors[names["score.weight"]].Shape
		if len(shape) != 2 {
			return nil, fmt.Errorf("model: load %s: score.weight has shape %v, want (num_labels, hidden)", dir, shape)
		}
		cfg.NumLabels = int(shape[0])
	case opts.Head == ScoreHead:
		cfg.NumLabels = opts.NumLabels
	}
	if err := checkMemory(cfg, opts.Head); err != nil {
		return nil, fmt.Errorf("model: load %s: %w", dir, err)
	}
	want := paramShapes(cfg, opts.Head)
	if err := matchFile(cfg, want, names, f); err != nil {
		return nil, fmt.Errorf("model: load %s: %w", dir, err)
	}
	if q := opts.Quant; q != nil && q.Bits != 4 && q.Bits != 8 {
		return nil, fmt.Errorf("model: load %s: quantize: %d bits: want 4 or 8", dir, q.Bits)
	}
	tensors := map[string]*tensor.Tensor{}
	pre := map[string]*quantized{} // projections quantised as read (opts.Quant)
	defer func() {
		if err != nil {
			for _, t := range tensors {
				t.Free()
			}
			for _, qw := range pre {
				qw.free()
			}
		}
	}()
	for _, full := range sortedKeys(want) { // sorted: the first missing tensor named is always the same
		n, ok := names[full]
		if !ok {
			if full == "score.weight" || cfg.Encoder() && newHeadParam(cfg, full) {
				// a new head, as from_pretrained initialises it (BERT's
				// _init_weights: N(0, initializer_range), zero biases)
				t := tensor.ZerosOn(want[full], tensor.Float32, tensor.CPU).Keep()
				if !strings.HasSuffix(full, ".bias") {
					t.Normal_(0, cfg.InitializerRange)
				}
				tensors[full] = t
				continue
			}
			return nil, fmt.Errorf("model: load %s: weights lack %s", dir, full)
		}
		st := f.Tensors[n]
		dt, ok := safetensorsToTorch[st.DType]
		if !ok {
			return nil, fmt.Errorf("model: load %s: tensor %s has dtype %s, which rl cannot use", dir, n, st.DType)
		}
		// checked tensor by tensor, as it is copied (mapped pages are read once)
		if err := CheckFinite(&safetensors.File{Tensors: map[string]safetensors.Tensor{n: st}}, "model: load "+dir); err != nil {
			return nil, err
		}
		if opts.Quant != nil && isProjection(full, want[full]) {
			// quantised now, from the model dtype's values (as Quantize
			// after a float load would), and the float copy freed at once
			var qw *quantized
			var qerr error
			tensor.Tidy(func() {
				w := tensor.FromBytes(st.Data, st.Shape, dt)
				if dt != opts.DType {
					w = w.ToDType(opts.DType)
				}
				qw, qerr = quantizeOne(full, w, cfg.Family() == GPT2, *opts.Quant, opts.Device)
			})
			if qerr != nil {
				return nil, fmt.Errorf("model: load %s: %w", dir, qerr)
			}
			pre[full] = qw
			mapped.Release(n) // its pages are not kept resident
			continue
		}
		tensors[full] = tensor.FromBytes(st.Data, st.Shape, dt).Keep()
		mapped.Release(n)
	}
	gen, err := readGenerationJSON(dir)
	if err != nil {
		return nil, err
	}
	if saveDType == 0 {
		saveDType = dtypeByName[cfg.TorchDtype] // zero when unset or unknown: the parameters' dtype
	}
	cfg.Architectures = []string{architecture(cfg, opts.Head)}
	m, err = assemble(cfg, opts.Head, tensors, pre, opts.DType, opts.Device)
	pre = nil // the model owns them now (or assemble freed them)
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", dir, err)
	}
	m.SaveDType, m.Generation = saveDType, gen
	if m.quant != nil {
		m.quantCfg = *opts.Quant
	}
	// the file's bytes (read into Go memory) are garbage now: give them
	// back, so a 1B model's peak is not twice its weights
	debug.FreeOSMemory()
	return m, nil
}

// dtypeByName reads config.json's torch_dtype / dtype.
var dtypeByName = map[string]tensor.DType{"float32": tensor.Float32, "bfloat16": tensor.BFloat16, "float16": tensor.Float16}

// readGenerationJSON reads dir/generation_config.json with every field;
// nil when there is none.
func readGenerationJSON(dir string) (map[string]any, error) {
	path := filepath.Join(dir, "generation_config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var g map[string]any
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	return g, nil
}

// matchFile compares the tensors of the weight file with the names and
// shapes config.json calls for, before anything is allocated: every
// wanted tensor must be there with its exact shape, and every tensor there
// must be wanted (or one transformers keeps besides the parameters).
func matchFile(cfg *Config, want map[string][]int64, names map[string]string, f *safetensors.File) error {
	var problems []string
	for _, full := range sortedKeys(want) {
		n, ok := names[full]
		if !ok {
			continue // reported (or initialised) by the caller
		}
		if got := f.Tensors[n].Shape; !equalShape(got, want[full]) {
			problems = append(problems, fmt.Sprintf("%s has shape %v in the weights, config.json wants %v", n, got, want[full]))
		}
	}
	for _, full := range sortedKeys(names) {
		if _, ok := want[full]; ok || ignorable(cfg, full) {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s is in the weights but not in a model of config.json's sizes", names[full]))
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
	return fmt.Errorf("the weights do not match config.json (%d layers, width %d, vocab %d): %s%s; the config and the weights come from different models",
		cfg.NumLayers, cfg.HiddenSize, cfg.VocabSize, strings.Join(problems, "; "), more)
}

// ignorable reports tensors a checkpoint may hold besides the parameters:
// GPT-2's attention-mask buffers, rotary inverse frequencies, an lm_head
// tied to the embedding (or dropped for a score head).
func ignorable(cfg *Config, name string) bool {
	switch {
	case strings.HasSuffix(name, ".attn.bias"), strings.HasSuffix(name, ".attn.masked_bias"),
		strings.HasSuffix(name, "rotary_emb.inv_freq"), name == "lm_head.weight", cfg.encoderIgnorable(name):
		return true
	}
	return false
}

// architecture is the transformers class name for the family and head.
func architecture(c *Config, h Head) string {
	if c.Encoder() {
		base := map[string]string{"bert": "Bert", "distilbert": "DistilBert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta", "deberta-v2": "DebertaV2"}[c.ModelType]
		if h == ScoreHead {
			return base + "ForSequenceClassification"
		}
		return base + "Model"
	}
	base := map[string]string{"gpt2": "GPT2", "llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3", "phi3": "Phi3", "gemma2": "Gemma2", "gemma3_text": "Gemma3"}[c.ModelType]
	if h == ScoreHead {
		return base + "ForSequenceClassification"
	}
	if c.ModelType == "gpt2" {
		return "GPT2LMHeadModel"
	}
	return base + "ForCausalLM"
}

// Save writes config.json, model.safetensors and generation_config.json
// into dir (created if needed), each file atomically. Tied weights are
// stored once, as transformers does. For an all-or-nothing directory, wrap
// it in fsutil.WriteDir.
func (m *Model) Save(dir string) (err error) {
	defer tensor.Recover(&err, "model: save "+dir)
	if m.quant != nil {
		return fmt.Errorf("model: save %s: the base is quantised to %d bits (%s, ...): save its adapter, or merge into a float base with rl merge", dir, m.quantCfg.Bits, strings.SplitN(m.quantNames(), ",", 2)[0])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	cfg := m.Config.Clone()
	cfg.Architectures = []string{architecture(cfg, m.Head)}
	saveDType := m.SaveDType
	if saveDType == 0 {
		saveDType = m.DType
	}
	if name, ok := torchDtypeName[saveDType]; ok {
		cfg.TorchDtype = name
	} else {
		saveDType = m.DType
	}
	if m.Head == ScoreHead {
		cfg.NumLabels = m.Config.NumLabels
		cfg.ID2Label = m.Config.ID2Label
	} else {
		cfg.NumLabels = 0
		delete(cfg.Raw, "id2label")
		delete(cfg.Raw, "label2id")
		delete(cfg.Raw, "num_labels")
	}
	cj, err := cfg.JSON()
	if err != nil {
		return fmt.Errorf("model: save %s: %w", dir, err)
	}
	f := &safetensors.File{Metadata: map[string]string{"format": "pt"}, Tensors: map[string]safetensors.Tensor{}}
	for _, p := range m.params {
		t := p.T
		if _, float := torchDtypeName[t.DType()]; float && t.DType() != saveDType {
			t = t.ToDType(saveDType)
		}
		dt, ok := torchToSafetensors[t.DType()]
		if !ok {
			return fmt.Errorf("model: save %s: %s has dtype %s", dir, p.Name, t.DType())
		}
		f.Tensors[p.Name] = safetensors.Tensor{DType: dt, Shape: t.Shape(), Data: t.Contiguous().Bytes()}
		if t != p.T {
			t.Free()
		}
	}
	if err := safetensors.WriteSharded(dir, f, 5<<30); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	if err := fsutil.WriteFile(configPath(dir), append(cj, '\n'), 0o644); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	if m.Config.Encoder() {
		return nil // an encoder does not generate: transformers writes no generation_config.json
	}
	gen := m.Generation
	if gen == nil { // transformers' GenerationConfig.from_model_config
		gen = map[string]any{"_from_model_config": true}
		if cfg.BOSTokenID != nil {
			gen["bos_token_id"] = *cfg.BOSTokenID
		}
		if eos := cfg.eosValue(); eos != nil {
			gen["eos_token_id"] = eos
		}
		if cfg.PadTokenID != nil {
			gen["pad_token_id"] = *cfg.PadTokenID
		}
	}
	gj, err := json.MarshalIndent(gen, "", "  ")
	if err != nil {
		return fmt.Errorf("model: save %s: generation_config.json: %w", dir, err)
	}
	if err := fsutil.WriteFile(filepath.Join(dir, "generation_config.json"), append(gj, '\n'), 0o644); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	return nil
}

// GenerationConfig is the part of generation_config.json rl reads.
type GenerationConfig struct {
	BOSTokenID *int `json:"bos_token_id"`
	EOSTokenID any  `json:"eos_token_id"` // int or list
	PadTokenID *int `json:"pad_token_id"`
}

// ReadGenerationConfig reads dir/generation_config.json; a missing file is not an error.
func ReadGenerationConfig(dir string) (*GenerationConfig, error) {
	b, err := os.ReadFile(filepath.Join(dir, "generation_config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &GenerationConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	var g GenerationConfig
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("model: %s: %w", filepath.Join(dir, "generation_config.json"), err)
	}
	return &g, nil
}

// EOSIDs lists the eos ids of a generation config.
func (g *GenerationConfig) EOSIDs() []int {
	switch v := g.EOSTokenID.(type) {
	case float64:
		return []int{int(v)}
	case int:
		return []int{v}
	case []int:
		return v
	case []any:
		var ids []int
		for _, x := range v {
			switch x := x.(type) {
			case float64:
				ids = append(ids, int(x))
			case int:
				ids = append(ids, x)
			}
		}
		return ids
	}
	return nil
}

// StopIDs lists the eos ids generation stops at, as transformers' generate
// takes them: generation_config.json's eos_token_id (one id or a list, such
// as Llama-3.1's [128001, 128008, 128009]) when the source has one, else
// config.json's, followed by extra ids (the tokenizer's eos) not already
// listed; negative extras are left out.
func (m *Model) StopIDs(extra ...int) []int {
	ids := (&GenerationConfig{EOSTokenID: m.Generation["eos_token_id"]}).EOSIDs()
	if len(ids) == 0 {
		ids = m.Config.StopIDs()
	}
	ids = slices.Clone(ids)
	for _, id := range extra {
		if id >= 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}
