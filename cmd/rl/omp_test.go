package main

import (
	"slices"
	"testing"
)

// TestOMPEnv: rl re-executes with GOMP_SPINCOUNT (and a guard against
// doing it twice) only when the user set none of the OpenMP wait settings.
func TestOMPEnv(t *testing.T) {
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	env, ok := ompEnv(get(nil), []string{"HOME=/root"})
	if !ok || !slices.Contains(env, "GOMP_SPINCOUNT="+ompSpinCount) || !slices.Contains(env, "RL_NO_REEXEC=1") || !slices.Contains(env, "HOME=/root") {
		t.Errorf("no settings: %v, %v", env, ok)
	}
	for _, k := range []string{"GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "RL_NO_REEXEC"} {
		if _, ok := ompEnv(get(map[string]string{k: "1"}), nil); ok {
			t.Errorf("%s set: re-executes anyway", k)
		}
	}
}
