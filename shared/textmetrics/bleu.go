package textmetrics

import "math"

// SentenceBLEU is NLTK's sentence_bleu([ref], hyp,
// smoothing_function=SmoothingFunction().method3) with the default weights
// (0.25, 0.25, 0.25, 0.25) over tokens (LLaMA-Factory passes characters):
//
//	p_n  = clipped n-gram matches / max(1, n-grams of hyp)   (n = 1..4)
//	0 when no unigram matches; else each p_n with no match becomes
//	1 / (2^k · its denominator), k = 1, 2, ... in order (method 3, NIST's
//	geometric smoothing; Chen & Cherry 2014, Section 2)
//	BP   = 1 if |hyp| > |ref|, else exp(1 - |ref|/|hyp|) (0 for an empty hyp)
//	BLEU = BP · exp(Σ 0.25 · log p_n)
//
// (Papineni et al. 2002, "BLEU: a Method for Automatic Evaluation of
// Machine Translation", Sections 2.1 and 2.2.)
func SentenceBLEU(ref, hyp []rune) float64 {
	const N = 4
	var num, den [N]int
	for n := 1; n <= N; n++ {
		num[n-1], den[n-1] = modifiedPrecision(ref, hyp, n)
	}
	if num[0] == 0 {
		return 0
	}
	bp := 1.0
	switch {
	case len(hyp) > len(ref):
	case len(hyp) == 0:
		bp = 0
	default:
		bp = math.Exp(1 - float64(len(ref))/float64(len(hyp)))
	}
	k := 1
	var logs []float64
	for n := range N {
		p := float64(num[n]) / float64(den[n])
		if num[n] == 0 {
			p = 1 / (math.Pow(2, float64(k)) * float64(den[n]))
			k++
		}
		logs = append(logs, 0.25*math.Log(p))
	}
	return bp * math.Exp(fsum(logs))
}

// modifiedPrecision is NLTK's modified_precision for one reference: the
// hypothesis' n-gram counts clipped by the reference's, and
// max(1, n-grams of hyp).
func modifiedPrecision(ref, hyp []rune, n int) (num, den int) {
	counts := func(s []rune) map[string]int {
		c := map[string]int{}
		for i := 0; i+n <= len(s); i++ {
			c[string(s[i:i+n])]++
		}
		return c
	}
	h, r := counts(hyp), counts(ref)
	total := 0
	for g, c := range h {
		num += min(c, r[g])
		total += c
	}
	return num, max(1, total)
}

// fsum is Python's math.fsum for up to a few terms: an exactly rounded sum
// (Neumaier's compensated summation is exact enough for four logs).
func fsum(xs []float64) float64 {
	sum, c := 0.0, 0.0
	for _, x := range xs {
		t := sum + x
		if math.Abs(sum) >= math.Abs(x) {
			c += (sum - t) + x
		} else {
			c += (x - t) + sum
		}
		sum = t
	}
	return sum + c
}
