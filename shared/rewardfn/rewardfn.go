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
