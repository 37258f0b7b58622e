package model

import "github.com/rlsuite/rl/shared/tensor"

// RoBERTa (Liu et al. 2019, arXiv:1907.11692; transformers'
// modeling_roberta.py) is BERT's network (bert.go) with two differences:
// positions count from padding_idx + 1 (robertaPositions), and
// RobertaForSequenceClassification has no pooler but a
// RobertaClassificationHead (classifier.dense, tanh, classifier.out_proj)
// on <s>. XLM-RoBERTa is the same model.

// robertaPositions is transformers' create_position_ids_from_input_ids:
// cumsum(ids != padding_idx) * (ids != padding_idx) + padding_idx, so real
// tokens count from padding_idx + 1 and pads sit at padding_idx.
// in.PositionIDs, when given, win.
func robertaPositions(c *Config, in *Input) *tensor.Tensor {
	if in.PositionIDs != nil {
		return in.PositionIDs
	}
	pad := float64(*c.PadTokenID)
	mask := in.IDs.NeScalar(pad).ToDType(tensor.Int64)
	return mask.Cumsum(1).Mul(mask).AddScalar(pad)
}
