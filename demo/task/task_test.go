package task

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/rewardfn"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name, completion string
		want             float64
	}{
		{"word outside the language", " the motor is very quiet . i love it .", -1},
		{"positive", " the motor is very sturdy . i love it .", 1},
		{"negative", " the lid is flimsy . it works poorly . i regret it .", -1},
		{"mixed", " the motor is great . the lid is flimsy .", 0},
		{"mixed 2:1", " the price is superb . i like it . it works badly .", 1.0 / 3},
		{"mixed 1:3", " overall it is good . i hate it . it works terribly . the fan is awful .", -0.5},
		{"neutral only", " i use it every day . the size is okay .", 0},
		{"neutral adverb", " it works fine . i got it as a gift .", 0},
		{"intensified", " the battery is extremely reliable .", 1},
		{"no spaces before periods", "the strap is solid. i adore it.", 1},
		{"empty", "", 0},
		{"blank", "  \n\t ", 0},
		{"repeated sentence", " i love it . the motor is great . i love it .", -1},
		{"repeated word salad", " great great great great", -1},
		{"unfinished", " the motor is great . i love", -1},
		{"no final period", " i love it", -1},
		{"unknown word", " the motor is great . i love it very much .", -1},
		{"wrong order", " is the motor great .", -1},
		{"empty sentence", " i love it . .", -1},
		{"two intensifiers", " the lid is very very good .", -1},
		{"upper case", " I love it .", -1},
		{"only a period", " .", -1},
	}
	for _, tt := range tests {
		if got := Score("review of the blender :", tt.completion); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: Score(%q) = %g, want %g", tt.name, tt.completion, got, tt.want)
		}
	}
}

func TestAnalyze(t *testing.T) {
	got := Analyze(" great great . the motor is great . the motor is great . i love")
	want := Analysis{Words: 15, Sentences: 4, Malformed: 2, Repeated: 1, Positive: 5}
	if got != want {
		t.Errorf("Analyze = %+v, want %+v", got, want)
	}
	if got.WellFormed() {
		t.Error("WellFormed() = true for a malformed completion")
	}
	if s := got.Sentiment(); s != 1 {
		t.Errorf("Sentiment() = %g, want 1 (form is ignored)", s)
	}
}

func TestLexiconHasOnePolarityPerWord(t *testing.T) {
	pol := map[string]int{}
	for _, c := range []wordClass{adjectives, verbs, adverbs} {
		for p, list := range map[int][]string{Positive: c.pos, Negative: c.neg, Neutral: c.neu} {
			for _, w := range list {
				if old, ok := pol[w]; ok && old != p {
					t.Errorf("%q has polarities %d and %d", w, old, p)
				}
				pol[w] = p
			}
		}
	}
	// Template, aspect, intensifier, filler, product and modifier words must be neutral.
	var others []string
	others = append(others, intensifiers...)
	others = append(others, generalAspects...)
	others = append(others, modifiers...)
	others = append(others, Products()...)
	others = append(others, "the", "is", "overall", "it", "i", "works", "review", "of", ":")
	for _, f := range fillers {
		others = append(others, strings.Fields(f)...)
	}
	for _, c := range categories {
		others = append(others, c.aspects...)
	}
	for _, w := range others {
		if p := Polarity(w); p != Neutral {
			t.Errorf("Polarity(%q) = %d, want neutral", w, p)
		}
	}
}

func TestRegistered(t *testing.T) {
	f, builtin, err := rewardfn.Parse("builtin:" + RewardName)
	if err != nil || !builtin {
		t.Fatalf("rewardfn.Parse(builtin:%s) = %v, %v", RewardName, builtin, err)
	}
	if got := f("review of the lamp :", " i love it ."); got != 1 {
		t.Errorf("registered score = %g, want 1", got)
	}
}

func TestProducts(t *testing.T) {
	if n := len(Products()); n != len(TrainProducts())+len(EvalProducts()) {
		t.Errorf("%d products, want train %d + eval %d", n, len(TrainProducts()), len(EvalProducts()))
	}
	for _, p := range EvalProducts() {
		if slices.Contains(TrainProducts(), p) {
			t.Errorf("eval product %q is also a training product", p)
		}
	}
	if got, want := Prompt("blender", "red"), "review of the red blender :"; got != want {
		t.Errorf("Prompt = %q, want %q", got, want)
	}
	if got, want := Prompt("blender", ""), "review of the blender :"; got != want {
		t.Errorf("Prompt = %q, want %q", got, want)
	}
}

// small keeps the tests fast; the means are checked on the default sizes in TestDefaults.
var small = Options{Seed: 7, BaseLines: 2000, SFTExamples: 500, PrefPairs: 500, TrainPrompts: 100, EvalPrompts: 60}

func TestDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if _, err := Write(d, small); err != nil {
			t.Fatal(err)
		}
	}
	other := small
	other.Seed = 8
	other.SFTExamples = 100 // other streams must not depend on it
	if _, err := Write(c, other); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{BaseFile, SFTFile, PrefsFile, PromptsFile, EvalPromptsFile} {
		x, y, z := readFile(t, filepath.Join(a, name)), readFile(t, filepath.Join(b, name)), readFile(t, filepath.Join(c, name))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
		if bytes.Equal(x, z) {
			t.Errorf("%s is the same with seeds 7 and 8", name)
		}
	}
	// Sizes are independent: with only SFTExamples changed, base.txt is unchanged.
	d := t.TempDir()
	changed := small
	changed.SFTExamples = 100
	if _, err := Write(d, changed); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(a, BaseFile)), readFile(t, filepath.Join(d, BaseFile))) {
		t.Error("base.txt changed with SFTExamples")
	}
}

func TestWriteRejectsNegativeSizes(t *testing.T) {
	if _, err := Write(t.TempDir(), Options{PrefPairs: -1}); err == nil || !strings.Contains(err.Error(), "PrefPairs") {
		t.Errorf("Write with PrefPairs -1: err = %v, want one naming PrefPairs", err)
	}
}

// TestDefaults checks every file at the default sizes: line counts, JSON
// fields, well-formed completions and the gold means.
func TestDefaults(t *testing.T) {
	f, err := Write(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	evalSet := map[string]bool{}
	for _, p := range EvalProducts() {
		evalSet[p] = true
	}
	productOf := func(t *testing.T, prompt string) string {
		w := strings.Fields(prompt)
		if len(w) < 5 || w[0] != "review" || w[1] != "of" || w[2] != "the" || w[len(w)-1] != ":" || len(w) > 6 {
			t.Fatalf("malformed prompt %q", prompt)
		}
		return w[len(w)-2]
	}

	// base.txt
	lines := strings.Split(strings.TrimSuffix(string(readFile(t, f.Base)), "\n"), "\n")
	if len(lines) != DefaultBaseLines {
		t.Errorf("base.txt: %d lines, want %d", len(lines), DefaultBaseLines)
	}
	var sum float64
	sawEval := false
	for i, l := range lines {
		p, c, ok := strings.Cut(l, " :")
		if !ok {
			t.Fatalf("base.txt:%d: no prompt in %q", i+1, l)
		}
		sawEval = sawEval || evalSet[productOf(t, p+" :")]
		if a := Analyze(c); !a.WellFormed() {
			t.Fatalf("base.txt:%d: malformed completion %q: %+v", i+1, c, a)
		}
		sum += Score(p+" :", c)
	}
	if mean := sum / float64(len(lines)); math.Abs(mean) > 0.05 {
		t.Errorf("base.txt: mean gold %.4f, want within 0.05 of 0", mean)
	} else {
		t.Logf("base.txt: mean gold %.4f", mean)
	}
	if !sawEval {
		t.Error("base.txt: no held-out product; the base model would not know them")
	}

	// sft.jsonl
	var sft []PromptCompletion
	readJSONL(t, f.SFT, &sft, []string{"prompt", "completion"})
	if len(sft) != DefaultSFTExamples {
		t.Errorf("sft.jsonl: %d lines, want %d", len(sft), DefaultSFTExamples)
	}
	sum = 0
	for i, x := range sft {
		if evalSet[productOf(t, x.Prompt)] {
			t.Fatalf("sft.jsonl:%d: held-out product in %q", i+1, x.Prompt)
		}
		if !strings.HasPrefix(x.Completion, " ") || !Analyze(x.Completion).WellFormed() {
			t.Fatalf("sft.jsonl:%d: completion %q: want a leading space and well-formed text", i+1, x.Completion)
		}
		sum += Score(x.Prompt, x.Completion)
	}
	if mean := sum / float64(len(sft)); mean < 0.2 || mean > 0.4 {
		t.Errorf("sft.jsonl: mean gold %.4f, want in [0.2, 0.4]", mean)
	} else {
		t.Logf("sft.jsonl: mean gold %.4f", mean)
	}

	// prefs.jsonl
	var prefs []Preference
	readJSONL(t, f.Prefs, &prefs, []string{"prompt", "chosen", "rejected"})
	if len(prefs) != DefaultPrefPairs {
		t.Errorf("prefs.jsonl: %d lines, want %d", len(prefs), DefaultPrefPairs)
	}
	var chosen, rejected float64
	for i, x := range prefs {
		if evalSet[productOf(t, x.Prompt)] {
			t.Fatalf("prefs.jsonl:%d: held-out product in %q", i+1, x.Prompt)
		}
		c, r := Score(x.Prompt, x.Chosen), Score(x.Prompt, x.Rejected)
		if !(c > r) {
			t.Fatalf("prefs.jsonl:%d: chosen %g <= rejected %g", i+1, c, r)
		}
		chosen += c
		rejected += r
	}
	t.Logf("prefs.jsonl: mean gold chosen %.3f, rejected %.3f", chosen/float64(len(prefs)), rejected/float64(len(prefs)))

	// prompts.jsonl and eval_prompts.jsonl
	var train, eval []PromptOnly
	readJSONL(t, f.Prompts, &train, []string{"prompt"})
	readJSONL(t, f.EvalPrompts, &eval, []string{"prompt"})
	if len(train) != DefaultTrainPrompts || len(eval) != DefaultEvalPrompts {
		t.Errorf("prompts: %d train, %d eval, want %d and %d", len(train), len(eval), DefaultTrainPrompts, DefaultEvalPrompts)
	}
	for i, x := range train {
		if evalSet[productOf(t, x.Prompt)] {
			t.Fatalf("prompts.jsonl:%d: held-out product in %q", i+1, x.Prompt)
		}
	}
	uniq := map[string]bool{}
	for i, x := range eval {
		if !evalSet[productOf(t, x.Prompt)] {
			t.Fatalf("eval_prompts.jsonl:%d: training product in %q", i+1, x.Prompt)
		}
		uniq[x.Prompt] = true
	}
	if len(uniq) != DefaultEvalPrompts {
		t.Errorf("eval_prompts.jsonl: %d distinct prompts, want %d", len(uniq), DefaultEvalPrompts)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readJSONL decodes every line of path into *out (a slice pointer),
// checking that each line is an object with exactly the keys want.
func readJSONL[T any](t *testing.T, path string, out *[]T, want []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		var keys []string
		for k, v := range raw {
			if _, ok := v.(string); !ok {
				t.Fatalf("%s:%d: %q is %T, want a string", path, n, k, v)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if w := slices.Sorted(slices.Values(want)); !slices.Equal(keys, w) {
			t.Fatalf("%s:%d: keys %v, want %v", path, n, keys, w)
		}
		var x T
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		*out = append(*out, x)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
