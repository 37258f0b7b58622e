package rewardfn

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestGSM8KAnswer(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"She has 3 + 4 = 7 apples.\n#### 7", "7", true},
		{"#### 1,234", "1234", true},
		{"so the answer is \\boxed{42}.", "42", true},
		{"\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", true},
		{"#### $18.", "18", true},
		{"no final answer", "", false},
		{"\\boxed{unclosed", "", false},
	}
	for _, c := range cases {
		got, ok := GSM8KAnswer(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("GSM8KAnswer(%q) = %q %v, want %q %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestGSM8KReward: 1 for the right final answer, 0 for a wrong or missing
// one, None (ok false) without an answer column; a plain Func is reachable
// through ParseColumns too.
func TestGSM8KReward(t *testing.T) {
	f, builtin, err := ParseColumns("builtin:gsm8k")
	if err != nil || !builtin {
		t.Fatalf("ParseColumns(builtin:gsm8k) = %v %v", builtin, err)
	}
	row := map[string]any{"answer": "Natalia sold 48/2 = 24 clips in May.\n#### 72"}
	for _, c := range []struct {
		completion string
		want       float64
	}{{"48 + 24 = 72\n#### 72", 1}, {"the answer is \\boxed{72}", 1}, {"#### 71", 0}, {"72", 0}} {
		if got, ok := f("q", c.completion, row); got != c.want || !ok {
			t.Errorf("%q: reward %g %v, want %g", c.completion, got, ok, c.want)
		}
	}
	if got, ok := f("q", "#### 5", map[string]any{"answer": 5}); got != 1 || !ok {
		t.Errorf("bare numeric answer: %g %v, want 1", got, ok)
	}
	if _, ok := f("q", "#### 72", map[string]any{}); ok {
		t.Error("no answer column: want no reward (None)")
	}
	l, builtin, err := ParseColumns("builtin:length")
	if err != nil || !builtin {
		t.Fatal(err)
	}
	if got, ok := l("p", "a b", nil); got != 0.1 || !ok {
		t.Errorf("length through ParseColumns = %g %v, want 0.1", got, ok)
	}
	if _, _, err := ParseColumns("builtin:nope"); err == nil {
		t.Error("unknown builtin: no error")
	}
	if _, builtin, _ := ParseColumns("some/dir"); builtin {
		t.Error("a directory parsed as a builtin")
	}
}

// TestGSM8KRealAnswers: on GSM8K's test split every reference answer has
// a final answer after ####, the gsm8k reward of the reference itself is 1
// and of the reference with its final answer changed is 0.
func TestGSM8KRealAnswers(t *testing.T) {
	f, err := os.Open("../../../shared/data/gsm8k/test.jsonl")
	if err != nil {
		t.Skipf("GSM8K not available: %v", err)
	}
	defer f.Close()
	reward, _, _ := ParseColumns("builtin:gsm8k")
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		ans := rec["answer"].(string)
		final, ok := GSM8KAnswer(ans)
		if !ok || final == "" {
			t.Fatalf("record %d: no final answer in %q", n, ans)
		}
		if r, ok := reward("", ans, rec); r != 1 || !ok {
			t.Errorf("record %d: the reference scores %g", n, r)
		}
		wrong := ans[:strings.LastIndex(ans, "####")] + "#### " + final + "1"
		if r, _ := reward("", wrong, rec); r != 0 {
			t.Errorf("record %d: a wrong answer scores %g", n, r)
		}
		n++
	}
	if n != 1319 {
		t.Errorf("%d records, want 1319", n)
	}
}
