package textmetrics

import (
	"regexp"
	"strings"
)

// rouge_chinese's Rouge.cut_sent: a newline after sentence-final
// punctuation (not before a closing quote), after six dots and after two
// ellipses. Go's ReplaceAll scans left to right without overlaps, as re.sub.
var cutSentRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`([。！？\?])([^”’])`), "$1\n$2"},
	{regexp.MustCompile(`(\.{6})([^”’])`), "$1\n$2"},
	{regexp.MustCompile(`(…{2})([^”’])`), "$1\n$2"},
	{regexp.MustCompile(`([。！？\?][”’])([^，。！？\?])`), "$1\n$2"},
}

// rougeWords is what rouge_chinese's Rouge._get_scores makes of a text:
// cut_sent's sentences, each kept when not empty and its whitespace runs
// collapsed to one space (" ".join(s.split())), then every sentence split
// on " " and the words chained (_split_into_words). A sentence of only
// whitespace becomes one empty word, as in Python.
func rougeWords(text string) []string {
	for _, r := range cutSentRules {
		text = r.re.ReplaceAllString(text, r.repl)
	}
	text = strings.TrimRightFunc(text, isPySpace)
	var words []string
	for _, s := range strings.Split(text, "\n") {
		if len(s) == 0 {
			continue
		}
		words = append(words, strings.Split(strings.Join(pyFields(s), " "), " ")...)
	}
	return words
}

// RougeChinese returns rouge_chinese's ROUGE-1, ROUGE-2 and ROUGE-L
// F-scores (Rouge() with its defaults, exclusive=True) of hyp against ref,
// both texts of space-separated words (rouge_chinese/rouge_score.py):
//
//	ROUGE-N: the sets of distinct n-grams of each text's words (n-grams run
//	         across sentence boundaries); p = |H∩R|/|H|, r = |H∩R|/|R|
//	         (0 for an empty set)
//	ROUGE-L: rouge_l_summary_level: l = LCS(ref words, hyp words) over the
//	         whole texts; p = l/|hyp words|, r = l/|ref words|
//	F = 2·p·r / (p + r + 1e-8)
//
// (Lin 2004, "ROUGE: A Package for Automatic Evaluation of Summaries",
// Sections 2-3, with rouge_chinese's distinct n-grams and 1e-8.)
func RougeChinese(hyp, ref string) (r1, r2, rl float64) {
	h, r := rougeWords(hyp), rougeWords(ref)
	return rougeN(h, r, 1), rougeN(h, r, 2), rougeL(h, r)
}

// fScore is f_r_p_rouge_n's F.
func fScore(p, r float64) float64 { return 2 * ((p * r) / (p + r + 1e-8)) }

func ngramSet(words []string, n int) map[string]bool {
	set := map[string]bool{}
	for i := 0; i+n <= len(words); i++ {
		set[strings.Join(words[i:i+n], "\x00")] = true
	}
	return set
}

func rougeN(hyp, ref []string, n int) float64 {
	h, r := ngramSet(hyp, n), ngramSet(ref, n)
	overlap := 0
	for g := range h {
		if r[g] {
			overlap++
		}
	}
	var p, rc float64
	if len(h) > 0 {
		p = float64(overlap) / float64(len(h))
	}
	if len(r) > 0 {
		rc = float64(overlap) / float64(len(r))
	}
	return fScore(p, rc)
}

func rougeL(hyp, ref []string) float64 {
	if len(hyp) == 0 || len(ref) == 0 {
		return 0
	}
	l := float64(lcs(ref, hyp))
	return fScore(l/float64(len(hyp)), l/float64(len(ref)))
}

// lcs is the length of the longest common subsequence of x and y.
func lcs(x, y []string) int {
	prev, cur := make([]int, len(y)+1), make([]int, len(y)+1)
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			if x[i-1] == y[j-1] {
				cur[j] = prev[j-1] + 1
			} else {
				cur[j] = max(prev[j], cur[j-1])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(y)]
}
