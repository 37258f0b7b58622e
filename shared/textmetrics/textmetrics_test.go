package textmetrics

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestRougeByHand checks RougeChinese on space-separated words against
// values worked out from the formulas.
func TestRougeByHand(t *testing.T) {
	f := func(p, r float64) float64 { return 2 * p * r / (p + r + 1e-8) }
	cases := []struct {
		name, hyp, ref string
		r1, r2, rl     float64
	}{
		// hyp words: the cat sat on the mat; ref: the cat is on the mat.
		// distinct unigrams 5 and 5, shared {the, cat, on, mat}: p = r = 4/5;
		// distinct bigrams 5 and 5, shared {the cat, on the, the mat}: 3/5;
		// LCS "the cat on the mat" = 5 of 6 words each: 5/6.
		{"sentence", "the cat sat on the mat", "the cat is on the mat", f(0.8, 0.8), f(0.6, 0.6), f(5.0/6, 5.0/6)},
		// repeated words count once in ROUGE-N (sets) but every time in
		// ROUGE-L: hyp "a a a b" has unigrams {a, b}, ref "a b" {a, b}: 1, 1;
		// bigrams {a a, a b} vs {a b}: p 1/2, r 1; LCS("a b", "a a a b") = 2:
		// p = 2/4, r = 2/2.
		{"repeats", "a a a b", "a b", f(1, 1), f(0.5, 1), f(0.5, 1)},
		// whitespace runs collapse; "?" ends a sentence but n-grams run
		// across it: hyp words [x, ?, y], ref [x, y]: unigrams p 2/3, r 1;
		// bigrams {x ?, ? y} vs {x y}: 0; LCS 2: p 2/3, r 1.
		{"sentences", "x  ?   y", "x y", f(2.0/3, 1), 0, f(2.0/3, 1)},
		// a sentence of only whitespace is one empty word (rouge_chinese's
		// " ".join(s.split()) of it is "", and "".split(" ") is [""]):
		// "a ? \n b" cuts into "a ?", " ", " b": words [a, ?, "", b].
		// ref [a, b]: unigrams p 2/4, r 1; bigrams 0; LCS 2: p 2/4, r 1.
		{"blank sentence", "a ? \n b", "a b", f(0.5, 1), 0, f(0.5, 1)},
		// no shared word at all
		{"disjoint", "p q", "r s", 0, 0, 0},
		// one word: no bigrams on either side, so ROUGE-2 is 0
		{"one word", "w", "w", f(1, 1), 0, f(1, 1)},
	}
	for _, c := range cases {
		r1, r2, rl := RougeChinese(c.hyp, c.ref)
		if !close(r1, c.r1, 1e-15) || !close(r2, c.r2, 1e-15) || !close(rl, c.rl, 1e-15) {
			t.Errorf("%s: RougeChinese(%q, %q) = %v, %v, %v; want %v, %v, %v", c.name, c.hyp, c.ref, r1, r2, rl, c.r1, c.r2, c.rl)
		}
	}
}

// TestBLEUByHand checks SentenceBLEU on characters against values worked
// out from the formulas.
func TestBLEUByHand(t *testing.T) {
	cases := []struct {
		name, ref, hyp string
		want           float64
	}{
		// every n-gram matches and the lengths are equal: BP 1, BLEU 1
		{"identical", "abcd", "abcd", 1},
		// all precisions 1; hyp shorter: BP = exp(1 - 5/4)
		{"short", "abcde", "abcd", math.Exp(-0.25)},
		// p1 = 3/4 (a b d), p2 = 1/3 (ab), no trigram of 2 and no 4-gram of 1
		// match: method 3 gives 1/(2·2) and 1/(4·1);
		// BLEU = (3/4 · 1/3 · 1/4 · 1/4)^(1/4) = (1/64)^(1/4) = 2^-1.5
		{"smoothed", "abcd", "abxd", math.Pow(2, -1.5)},
		// hyp of 2: no trigrams or 4-grams, denominators max(1, 0) = 1:
		// p = 1, 1, 1/2, 1/4: BLEU = (1/8)^(1/4)
		{"two chars", "ab", "ab", math.Pow(0.125, 0.25)},
		// clipping: hyp "aaaa" against "ab": p1 = min(4, 1)/4 = 1/4, no
		// bigram "aa" (0/3 -> 1/6), 0/2 -> 1/8, 0/1 -> 1/8; BP: hyp longer: 1.
		// BLEU = (1/4 · 1/6 · 1/8 · 1/8)^(1/4)
		{"clipped", "ab", "aaaa", math.Pow(1.0/4/6/8/8, 0.25)},
		// no unigram in common: 0 whatever the smoothing
		{"disjoint", "abc", "xyz", 0},
		{"empty hyp", "abc", "", 0},
		{"empty ref", "", "abc", 0},
	}
	for _, c := range cases {
		if got := SentenceBLEU([]rune(c.ref), []rune(c.hyp)); !close(got, c.want, 1e-15) {
			t.Errorf("%s: SentenceBLEU(%q, %q) = %v, want %v", c.name, c.ref, c.hyp, got, c.want)
		}
	}
}

// TestSimilarityByHand checks the whole per-example pipeline on English,
// where jieba splits words, spaces and punctuation.
func TestSimilarityByHand(t *testing.T) {
	// jieba.cut("Hello world") = [Hello, " ", world]; joined with " " and
	// split by rouge_chinese: [Hello, world]. Ref [Hello, there, world].
	// ROUGE-1: p 2/2, r 2/3: F = 2·(2/3)/(5/3 + 1e-8) -> x100, round 4: 80.
	// ROUGE-2: {Hello world} vs {Hello there, there world}: 0.
	// ROUGE-L: LCS 2: the same as ROUGE-1: 80.
	// BLEU over characters: hyp "Hello world" (11), ref "Hello there world" (17).
	// p1: every hyp character occurs in the ref often enough: 11/11.
	// p2: hyp bigrams He el ll lo "o " " w" wo or rl ld: all in the ref
	// except "o " ("o" is followed by " " in "Hello there": it is there) ...
	// so each of the 10 is in the ref once: 10/10.
	// p3: "lo " yes, "o w" no, " wo" yes ("e world"... " wo" in " world"),
	// Hel ell llo lo  o w  wo wor orl rld: 8/9 ("o w" is the only miss).
	// p4: Hell ello "llo " "lo w"x "o wo"x " wor" worl orld: 6/8.
	// BP = exp(1 - 17/11). BLEU = BP · (1 · 1 · 8/9 · 6/8)^(1/4).
	bleu := math.Exp(1-17.0/11) * math.Pow(8.0/9*6/8, 0.25)
	s, err := Similarity("Hello world", "Hello there world")
	if err != nil {
		t.Fatal(err)
	}
	want := Scores{80, 0, 80, round4(bleu * 100)}
	if s != want {
		t.Errorf("Similarity = %+v, want %+v", s, want)
	}
	// an empty (or all-space) side scores 0 for ROUGE (LLaMA-Factory's guard)
	if s, err := Similarity("   ", "Hello"); err != nil || s != (Scores{}) {
		t.Errorf("Similarity(spaces, Hello) = %+v, %v; want zeros", s, err)
	}
}

func TestRound4(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{33.33333333, 33.3333}, {66.66666666, 66.6667}, {0.00005, 0.0001}, {2.675e-3, 0.0027}, {100, 100}, {0, 0},
		// the exact values of these doubles lie just below and just above
		// the half (Python: round(2.00025, 4) = 2.0002, round(1.00005, 4) = 1.0001)
		{2.00025, 2.0002}, {0.00015, 0.0001}, {1.00005, 1.0001},
	} {
		if got := round4(c.in); got != c.want {
			t.Errorf("round4(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func readJSONL(t *testing.T, path string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestJiebaGolden compares JiebaCut with jieba 0.42.1's lcut on the texts
// of tools/goldens/textmetrics.py.
func TestJiebaGolden(t *testing.T) {
	n, bad := 0, 0
	readJSONL(t, "testdata/jieba_golden.jsonl", func(line []byte) {
		var row struct {
			Text   string   `json:"text"`
			Tokens []string `json:"tokens"`
		}
		if err := json.Unmarshal(line, &row); err != nil {
			t.Fatal(err)
		}
		n++
		got, err := JiebaCut(row.Text)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, row.Tokens) && (len(got) > 0 || len(row.Tokens) > 0) {
			bad++
			if bad <= 5 {
				t.Errorf("JiebaCut(%q)\n got %q\nwant %q", row.Text, got, row.Tokens)
			}
		}
	})
	if bad > 0 || n < 2000 {
		t.Errorf("%d of %d segmentations differ from jieba's", bad, n)
	}
}

// TestSimilarityGolden compares Similarity with LLaMA-Factory's
// ComputeSimilarity run on the real jieba, rouge_chinese and NLTK.
func TestSimilarityGolden(t *testing.T) {
	n := 0
	readJSONL(t, "testdata/metrics_golden.jsonl", func(line []byte) {
		var row map[string]any
		if err := json.Unmarshal(line, &row); err != nil {
			t.Fatal(err)
		}
		n++
		pred, label := row["pred"].(string), row["label"].(string)
		s, err := Similarity(pred, label)
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range Keys {
			if want := row[k].(float64); !close(s.Values()[i], want, 1e-9) {
				t.Errorf("Similarity(%q, %q) %s = %v, want %v", pred, label, k, s.Values()[i], want)
			}
		}
	})
	if n < 400 {
		t.Errorf("only %d golden rows", n)
	}
}

func TestMean(t *testing.T) {
	m := Mean([]Scores{{10, 20, 30, 40}, {20, 40, 60, 80}})
	if m != (Scores{15, 30, 45, 60}) {
		t.Errorf("Mean = %+v", m)
	}
	if Mean(nil) != (Scores{}) {
		t.Error("Mean(nil) is not zero")
	}
}
