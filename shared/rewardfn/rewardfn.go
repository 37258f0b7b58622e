// Package rewardfn holds programmatic reward functions ("gold" scorers)
// that trainers can use instead of a learned reward model, so researchers
// can compare learned and true reward.
package rewardfn

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Func scores a completion of a prompt; higher is better.
type Func func(prompt, completion string) float64

var (
	mu       sync.RWMutex
	registry = map[string]Func{}
)

// Register makes f available under name (e.g. "arith"). It panics on a
// duplicate name, a programming error.
func Register(name string, f Func) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic("rewardfn: duplicate " + name)
	}
	registry[name] = f
}

// Lookup returns the function registered under name.
func Lookup(name string) (Func, error) {
	mu.RLock()
	defer mu.RUnlock()
	if f, ok := registry[name]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("rewardfn: no built-in reward %q (have: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the registered functions.
func Names() []string {
	var n []string
	for k := range registry {
		n = append(n, k)
	}
	for k := range columnRegistry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Prefix marks a built-in reward in a --reward flag: "builtin:NAME".
const Prefix = "builtin:"

// Parse says whether spec names a built-in reward and returns it.
func Parse(spec string) (Func, bool, error) {
	if !strings.HasPrefix(spec, Prefix) {
		return nil, false, nil
	}
	f, err := Lookup(strings.TrimPrefix(spec, Prefix))
	return f, true, err
}

func init() {
	// length rewards longer completions (in words), capped at 20: a simple
	// sanity-check signal.
	Register("length", func(_, c string) float64 { return float64(min(len(strings.Fields(c)), 20)) / 20 })
}

// ColumnFunc scores a completion of a prompt with the prompt's dataset
// row (its other columns, e.g. a reference answer), as TRL passes the
// dataset's columns to reward functions as keyword arguments. ok false is
// TRL's None: no reward for this completion.
type ColumnFunc func(prompt, completion string, row map[string]any) (reward float64, ok bool)

var columnRegistry = map[string]ColumnFunc{}

// RegisterColumns makes f available under name; names are shared with
// Register. It panics on a duplicate name, a programming error.
func RegisterColumns(name string, f ColumnFunc) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic("rewardfn: duplicate " + name)
	}
	if _, dup := columnRegistry[name]; dup {
		panic("rewardfn: duplicate " + name)
	}
	columnRegistry[name] = f
}

// ParseColumns is Parse for trainers that pass dataset rows: it returns
// the built-in spec names (a plain Func ignores the row), whichever
// registry holds it.
func ParseColumns(spec string) (ColumnFunc, bool, error) {
	if !strings.HasPrefix(spec, Prefix) {
		return nil, false, nil
	}
	name := strings.TrimPrefix(spec, Prefix)
	mu.RLock()
	cf, ok := columnRegistry[name]
	mu.RUnlock()
	if ok {
		return cf, true, nil
	}
	f, err := Lookup(name)
	if err != nil {
		return nil, true, err
	}
	return func(p, c string, _ map[string]any) (float64, bool) { return f(p, c), true }, true, nil
}

// GSM8KAnswer extracts a final answer as GSM8K writes it: the text after
// the last "####", else the contents of the last \boxed{...}; numbers are
// normalised (commas, a leading $ and a trailing period dropped). ok is
// false when there is none.
func GSM8KAnswer(s string) (string, bool) {
	if i := strings.LastIndex(s, "####"); i >= 0 {
		a := strings.TrimSpace(s[i+4:])
		if j := strings.IndexAny(a, "\n"); j >= 0 {
			a = a[:j]
		}
		return normalizeAnswer(a), a != ""
	}
	if i := strings.LastIndex(s, `\boxed{`); i >= 0 {
		rest := s[i+len(`\boxed{`):]
		depth := 1
		for j, r := range rest {
			switch r {
			case '{':
				depth++
			case '}':
				depth--
				if depth == 0 {
					return normalizeAnswer(rest[:j]), true
				}
			}
		}
	}
	return "", false
}

func normalizeAnswer(a string) string {
	a = strings.TrimSpace(a)
	a = strings.TrimPrefix(a, "$")
	a = strings.TrimSuffix(a, ".")
	a = strings.ReplaceAll(a, ",", "")
	return strings.TrimSpace(a)
}

func init() {
	// gsm8k: 1 when the completion's final answer (after "####" or in
	// \boxed{}) equals the row's answer column's (GSM8K's "... #### 42", or
	// a bare answer), else 0; no reward (None) for rows without an answer
	// column.
	RegisterColumns("gsm8k", func(_, c string, row map[string]any) (float64, bool) {
		v, ok := row["answer"]
		if !ok {
			return 0, false
		}
		ref := fmt.Sprint(v)
		want, ok := GSM8KAnswer(ref)
		if !ok {
			want = normalizeAnswer(ref)
		}
		got, ok := GSM8KAnswer(c)
		if ok && got == want {
			return 1, true
		}
		return 0, true
	})
}
