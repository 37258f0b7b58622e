package model

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/rlsuite/rl/shared/tensor"
)

// Encoders: the bidirectional families (BERT, DistilBERT, RoBERTa and
// XLM-RoBERTa, DeBERTa-v2/v3; bert.go, distilbert.go, roberta.go, deberta.go) as transformers builds
// them for sequence classification. What they share lives here: config
// fields, the bidirectional padding mask, the activation, the problem_type
// loss. They are fine-tuned with a classification head only: an encoder has
// no LM head, so generation and causal-LM training refuse it (New and Load
// with LMHead).

// Encoder reports whether c is an encoder family.
func (c *Config) Encoder() bool {
	switch c.Family() {
	case BERT, DistilBERT, RoBERTa, DeBERTaV2:
		return true
	}
	return false
}

// problem_type values (transformers' PretrainedConfig.problem_type).
const (
	SingleLabel = "single_label_classification"
	MultiLabel  = "multi_label_classification"
	Regression  = "regression"
)

// parseEncoder reads the sizes of BertConfig / RobertaConfig /
// XLMRobertaConfig (hidden_size, ..., type_vocab_size, layer_norm_eps) or
// DistilBertConfig (dim, n_layers, n_heads, hidden_dim), with their
// defaults (bert-base's and distilbert-base's sizes).
func (c *Config) parseEncoder(r *reader) error {
	c.NumKVHeads = 0
	if c.Family() == DistilBERT {
		c.VocabSize = r.int("vocab_size", 30522)
		c.HiddenSize = r.int("dim", 768)
		c.NumLayers = r.int("n_layers", 6)
		c.NumHeads = r.int("n_heads", 12)
		c.IntermediateSize = r.int("hidden_dim", 4*768)
		c.MaxPositions = r.int("max_position_embeddings", 512)
		c.NormEps = 1e-12 // DistilBERT's LayerNorm eps is fixed
		c.HiddenAct = r.str("activation")
		if c.HiddenAct == "" {
			c.HiddenAct = "gelu"
		}
		c.EmbdDropout = r.float("dropout", 0.1)
		c.ResidDropout = c.EmbdDropout
		c.AttnDropout = r.float("attention_dropout", 0.1)
		c.ClassifierDropout = r.float("seq_classif_dropout", 0.2)
		if c.PadTokenID == nil {
			pad := 0
			c.PadTokenID = &pad
		}
	} else {
		c.readBertSizes(r, bertSizes{vocab: 30522, hidden: 768, layers: 12, heads: 12, inter: 3072, types: 2, eps: 1e-12})
		c.ClassifierDropout = r.float("classifier_dropout", c.EmbdDropout)
		defPad := 0
		if c.Family() == RoBERTa {
			defPad = 1
		}
		if c.PadTokenID == nil {
			c.PadTokenID = &defPad
		}
		if pe := r.str("position_embedding_type"); pe != "" && pe != "absolute" {
			return fmt.Errorf("position_embedding_type %q: rl's %s supports absolute", pe, c.ModelType)
		}
		if r.bool("is_decoder", false) || r.bool("add_cross_attention", false) {
			return fmt.Errorf("is_decoder/add_cross_attention: rl builds %s as an encoder only", c.ModelType)
		}
	}
	c.NumKVHeads = c.NumHeads
	c.TieWordEmbeddings = r.bool("tie_word_embeddings", true)
	switch c.HiddenAct {
	case "gelu", "relu", "gelu_new", "gelu_pytorch_tanh":
	default:
		return fmt.Errorf("hidden_act %q: rl's %s supports gelu, relu, gelu_new and gelu_pytorch_tanh", c.HiddenAct, c.ModelType)
	}
	return nil
}

// bertSizes are a family's defaults for BertConfig's size fields.
type bertSizes struct {
	vocab, hidden, layers, heads, inter, types int
	eps                                        float64
}

// readBertSizes reads the fields BertConfig, RobertaConfig and
// DebertaV2Config share (vocab_size, hidden_size, num_hidden_layers,
// num_attention_heads, intermediate_size, max_position_embeddings 512,
// type_vocab_size, layer_norm_eps, hidden_act gelu, hidden_dropout_prob
// and attention_probs_dropout_prob 0.1) with the family's defaults d.
func (c *Config) readBertSizes(r *reader, d bertSizes) {
	c.VocabSize = r.int("vocab_size", d.vocab)
	c.HiddenSize = r.int("hidden_size", d.hidden)
	c.NumLayers = r.int("num_hidden_layers", d.layers)
	c.NumHeads = r.int("num_attention_heads", d.heads)
	c.NumKVHeads = c.NumHeads
	c.IntermediateSize = r.int("intermediate_size", d.inter)
	c.MaxPositions = r.int("max_position_embeddings", 512)
	c.TypeVocabSize = r.int("type_vocab_size", d.types)
	c.NormEps = r.float("layer_norm_eps", d.eps)
	c.HiddenAct = r.str("hidden_act")
	if c.HiddenAct == "" {
		c.HiddenAct = "gelu"
	}
	c.EmbdDropout = r.float("hidden_dropout_prob", 0.1)
	c.ResidDropout = c.EmbdDropout
	c.AttnDropout = r.float("attention_probs_dropout_prob", 0.1)
}

// writeBertSizes writes what readBertSizes reads under its names.
func (c *Config) writeBertSizes(out map[string]any) {
	out["hidden_size"] = c.HiddenSize
	out["num_hidden_layers"] = c.NumLayers
	out["num_attention_heads"] = c.NumHeads
	out["intermediate_size"] = c.IntermediateSize
	out["max_position_embeddings"] = c.MaxPositions
	out["type_vocab_size"] = c.TypeVocabSize
	out["layer_norm_eps"] = c.NormEps
	out["hidden_act"] = c.HiddenAct
	out["hidden_dropout_prob"] = c.EmbdDropout
	out["attention_probs_dropout_prob"] = c.AttnDropout
}

// validateEncoder checks what only encoders have.
func (c *Config) validateEncoder() []error {
	var errs []error
	if c.TypeVocabSize < 0 || c.TypeVocabSize > maxDim {
		errs = append(errs, fmt.Errorf("type_vocab_size must be in [0, %d], got %d", maxDim, c.TypeVocabSize))
	}
	if c.PadTokenID != nil && (*c.PadTokenID < 0 || *c.PadTokenID >= c.VocabSize) && c.VocabSize > 0 {
		errs = append(errs, fmt.Errorf("pad_token_id %d is not in the vocabulary [0, %d)", *c.PadTokenID, c.VocabSize))
	}
	if c.Family() == RoBERTa && c.PadTokenID != nil && c.MaxPositions <= *c.PadTokenID+1 {
		errs = append(errs, fmt.Errorf("max_position_embeddings %d leaves no position after padding_idx %d (RoBERTa's positions start at pad_token_id + 1)", c.MaxPositions, *c.PadTokenID))
	}
	for name, p := range map[string]float64{"dropout": c.EmbdDropout, "attention dropout": c.AttnDropout, "classifier dropout": c.ClassifierDropout} {
		if !(p >= 0 && p < 1) {
			errs = append(errs, fmt.Errorf("%s must be in [0, 1), got %g", name, p))
		}
	}
	return errs
}

// encoderJSON writes the sizes under the family's config.json names.
func (c *Config) encoderJSON(out map[string]any) {
	delete(out, "tie_word_embeddings")
	if !c.TieWordEmbeddings {
		out["tie_word_embeddings"] = false
	}
	if c.Family() == DistilBERT {
		out["dim"] = c.HiddenSize
		out["n_layers"] = c.NumLayers
		out["n_heads"] = c.NumHeads
		out["hidden_dim"] = c.IntermediateSize
		out["max_position_embeddings"] = c.MaxPositions
		out["activation"] = c.HiddenAct
		out["dropout"] = c.EmbdDropout
		out["attention_dropout"] = c.AttnDropout
		out["seq_classif_dropout"] = c.ClassifierDropout
		return
	}
	c.writeBertSizes(out)
	if _, ok := out["position_embedding_type"]; !ok {
		out["position_embedding_type"] = "absolute"
	}
	if c.ClassifierDropout != c.EmbdDropout {
		out["classifier_dropout"] = c.ClassifierDropout
	} else if _, ok := out["classifier_dropout"]; !ok {
		out["classifier_dropout"] = nil
	}
}

// encoderShapes adds the parameters of an encoder family and its
// sequence-classification head to s.
func encoderShapes(c *Config, h Head, s map[string][]int64) {
	switch c.Family() {
	case BERT, RoBERTa:
		bertShapes(c, h, s)
	case DistilBERT:
		distilbertShapes(c, h, s)
	case DeBERTaV2:
		debertaShapes(c, h, s)
	}
}

// encoderHeadNames are the top-level modules of the families'
// sequence-classification heads (besides the base model's prefix).
var encoderHeadNames = []string{"classifier.", "pre_classifier."}

// encoderIgnorable are the tensors of encoder checkpoints that are no
// parameter of a sequence classifier: the pretraining heads (BERT's cls.,
// RoBERTa's lm_head., DistilBERT's vocab_ projections, DeBERTa's
// lm_predictions. and mask_predictions.) and the position_ids /
// token_type_ids buffers.
func (c *Config) encoderIgnorable(name string) bool {
	if c.Family() == DeBERTaV2 && c.debertaIgnorable(name) {
		return true
	}
	if c.isEncoderHead(name) && !strings.HasPrefix(name, "classifier.") && !strings.HasPrefix(name, "pre_classifier.") {
		return true
	}
	return strings.HasSuffix(name, "embeddings.position_ids") || strings.HasSuffix(name, "embeddings.token_type_ids")
}

// encoderMask is the bidirectional attention pattern (B, 1, 1 or T, T): a
// query sees every key that is not padding (and, with SegmentIDs, of its
// own segment). nil means everything is allowed.
func encoderMask(in *Input) *tensor.Tensor {
	var ok *tensor.Tensor
	if in.AttentionMask != nil {
		ok = in.AttentionMask.NeScalar(0).Unsqueeze(1).Unsqueeze(1) // (B, 1, 1, T)
	}
	if in.SegmentIDs != nil {
		seg := in.SegmentIDs
		same := seg.Unsqueeze(2).Eq(seg.Unsqueeze(1)).Unsqueeze(1) // (B, 1, T, T)
		if ok == nil {
			ok = same
		} else {
			ok = ok.LogicalAnd(same)
		}
	}
	return ok
}

// errEncoderCache is the panic of an encoder forward given a KV cache.
var errEncoderCache = errors.New("model: an encoder (bert, distilbert, roberta, deberta-v2) has no KV cache: it does not generate")

// errNoLMHead is the error of an encoder asked for an LM head.
var errNoLMHead = errors.New("an encoder (bert, distilbert, roberta, deberta-v2) has no LM head: rl fine-tunes encoders with a classification head (rl classify, rl reward, rl score), it does not generate with them")

// checkEncoderInput refuses what encoders do not do.
func checkEncoderInput(in *Input) {
	if in.Cache != nil {
		panic(errEncoderCache)
	}
}

// act is the encoder's hidden_act: gelu (exact, erf), relu, or the tanh
// approximation (gelu_new, gelu_pytorch_tanh).
func act(c *Config, x *tensor.Tensor) *tensor.Tensor {
	switch c.HiddenAct {
	case "relu":
		return x.Relu()
	case "gelu_new", "gelu_pytorch_tanh":
		return x.GeluTanh()
	}
	return x.Gelu()
}

// encoderScale is the attention scale 1/sqrt(head_dim).
func encoderScale(c *Config) float64 { return 1 / math.Sqrt(float64(c.HiddenSize/c.NumHeads)) }

// scorer is a family with its own sequence-classification head.
type scorer interface {
	scores(m *Model, in *Input, h *tensor.Tensor) *tensor.Tensor
}

// ProblemType is the loss Classification computes for c with labels of
// the given kind, as transformers' …ForSequenceClassification decides it
// when problem_type is unset: regression when num_labels is 1, single-label
// when the labels are class ids (integers), else multi-label.
func (c *Config) ResolveProblemType(integerLabels bool) string {
	switch {
	case c.ProblemType != "":
		return c.ProblemType
	case c.NumLabels == 1:
		return Regression
	case integerLabels:
		return SingleLabel
	}
	return MultiLabel
}

// ClassificationLoss is transformers' sequence-classification loss of
// logits (N, K) against labels for the problem type (ResolveProblemType):
// single_label_classification: cross-entropy against int64 class ids (N);
// multi_label_classification: BCE with logits against float targets
// (N, K); regression: mean squared error against float targets (N) when K
// is 1 (logits squeezed, as transformers does), else (N, K).
func ClassificationLoss(problemType string, logits, labels *tensor.Tensor) (*tensor.Tensor, error) {
	switch problemType {
	case SingleLabel:
		return logits.CrossEntropy(labels.ToDType(tensor.Int64), -100, tensor.ReduceMean), nil
	case MultiLabel:
		// BCEWithLogits: mean of softplus(x) - y x, the stable form
		// max(x,0) - x y + log(1 + exp(-|x|)).
		y := labels.ToDType(logits.DType())
		return logits.Softplus().Sub(logits.Mul(y)).Mean(), nil
	case Regression:
		y := labels.ToDType(logits.DType())
		x := logits
		if x.Size(-1) == 1 {
			x = x.Squeeze(-1)
			if y.Dim() > 1 {
				y = y.Squeeze(-1)
			}
		}
		return x.Sub(y).Square().Mean(), nil
	}
	return nil, fmt.Errorf("model: problem_type %q: want %s, %s or %s", problemType, SingleLabel, MultiLabel, Regression)
}

// isEncoderHead reports a top-level tensor of an encoder checkpoint that
// is outside the base model (its prefix is not added): the classification
// heads and the pretraining heads. DeBERTa's pooler is one (BERT's is
// inside the base model).
func (c *Config) isEncoderHead(name string) bool {
	if c.Family() == DeBERTaV2 {
		for _, p := range debertaHeads {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	for _, p := range append([]string{"cls.", "lm_head.", "vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "qa_outputs."}, encoderHeadNames...) {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// legacyNorm renames the LayerNorm parameters of old BERT checkpoints
// (LayerNorm.gamma, LayerNorm.beta, as bert-base-uncased's files still
// have them) to their names, as transformers' from_pretrained does.
func legacyNorm(name string) string {
	if s, ok := strings.CutSuffix(name, "LayerNorm.gamma"); ok {
		return s + "LayerNorm.weight"
	}
	if s, ok := strings.CutSuffix(name, "LayerNorm.beta"); ok {
		return s + "LayerNorm.bias"
	}
	return name
}

// newHeadParam reports a parameter that loading a base encoder checkpoint
// initialises afresh, as from_pretrained does for a
// …ForSequenceClassification: the classifier (and DistilBERT's
// pre_classifier), and BERT's pooler, which a BertForMaskedLM checkpoint
// lacks.
func newHeadParam(c *Config, name string) bool {
	return strings.HasPrefix(name, "classifier.") || strings.HasPrefix(name, "pre_classifier.") ||
		strings.HasPrefix(name, c.prefix()+"pooler.") || c.Family() == DeBERTaV2 && strings.HasPrefix(name, "pooler.")
}

// FitTokenizer sets the pad_token_id of an encoder preset built for a
// tokenizer whose padding id is pad (< 0: none, the family's default
// stays): the pad embedding row and, for RoBERTa, the position offset
// (positions start at pad + 1, so max_position_embeddings grows to keep
// 512 positions after it, as roberta-base's 514 do for pad 1).
func (c *Config) FitTokenizer(pad int) {
	if !c.Encoder() || pad < 0 {
		return
	}
	c.PadTokenID = &pad
	if c.Family() == RoBERTa && c.MaxPositions < pad+1+512 {
		c.MaxPositions = pad + 1 + 512
	}
}

// MaxTokens is the longest input the positions allow: max_position_embeddings,
// less RoBERTa's padding_idx + 1 offset.
func (c *Config) MaxTokens() int {
	if c.Family() == RoBERTa && c.PadTokenID != nil {
		return c.MaxPositions - *c.PadTokenID - 1
	}
	return c.MaxPositions
}
