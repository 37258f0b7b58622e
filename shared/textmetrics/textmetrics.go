// Package textmetrics scores generated text against references as
// LLaMA-Factory's SFT evaluation does (src/llamafactory/train/sft/metric.py,
// ComputeSimilarity; scripts/eval_bleu_rouge.py): ROUGE-1, ROUGE-2 and
// ROUGE-L F-scores of rouge_chinese over jieba's words, and BLEU-4 of NLTK
// over characters with smoothing method 3, each x100 and rounded to 4
// decimals per example.
package textmetrics

import (
	"math"
	"strconv"
	"strings"
)

// Scores are one example's metrics, x100 and rounded to 4 decimals as
// LLaMA-Factory rounds them (round(v * 100, 4)).
type Scores struct {
	Rouge1, Rouge2, RougeL, Bleu4 float64
}

// Keys are LLaMA-Factory's metric names, in the order of Scores' fields.
var Keys = []string{"rouge-1", "rouge-2", "rouge-l", "bleu-4"}

// Values returns the scores in Keys' order.
func (s Scores) Values() []float64 { return []float64{s.Rouge1, s.Rouge2, s.RougeL, s.Bleu4} }

// Similarity scores pred against label as ComputeSimilarity does for one
// example:
//
//	hypothesis, reference = jieba.cut(pred), jieba.cut(label)
//	ROUGE: 0 when either joined with " " has no word, else
//	       rouge_chinese.Rouge().get_scores(" ".join(hyp), " ".join(ref))'s "f"
//	BLEU:  sentence_bleu([list(label)], list(pred), SmoothingFunction().method3)
func Similarity(pred, label string) (Scores, error) {
	hyp, err := JiebaCut(pred)
	if err != nil {
		return Scores{}, err
	}
	ref, err := JiebaCut(label)
	if err != nil {
		return Scores{}, err
	}
	var s Scores
	h, r := strings.Join(hyp, " "), strings.Join(ref, " ")
	if len(pyFields(h)) > 0 && len(pyFields(r)) > 0 {
		s.Rouge1, s.Rouge2, s.RougeL = RougeChinese(h, r)
	}
	s.Bleu4 = SentenceBLEU([]rune(label), []rune(pred))
	s.Rouge1, s.Rouge2, s.RougeL, s.Bleu4 = round4(s.Rouge1*100), round4(s.Rouge2*100), round4(s.RougeL*100), round4(s.Bleu4*100)
	return s, nil
}

// Mean averages per-example scores (LLaMA-Factory's float(np.mean(v)));
// the zero Scores for none.
func Mean(xs []Scores) Scores {
	var m Scores
	if len(xs) == 0 {
		return m
	}
	for _, x := range xs {
		m.Rouge1 += x.Rouge1
		m.Rouge2 += x.Rouge2
		m.RougeL += x.RougeL
		m.Bleu4 += x.Bleu4
	}
	n := float64(len(xs))
	return Scores{m.Rouge1 / n, m.Rouge2 / n, m.RougeL / n, m.Bleu4 / n}
}

// round4 is Python's round(v, 4): the double nearest the decimal rounding
// of v's exact value (ties to even), which strconv computes exactly.
func round4(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 4, 64), 64)
	return r
}

// isPySpace is Python's str.isspace (which str.split(), str.strip() and
// the re module's \s use): Unicode whitespace plus the separators
// U+001C-U+001F.
func isPySpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// pyFields is Python's s.split().
func pyFields(s string) []string { return strings.FieldsFunc(s, isPySpace) }
