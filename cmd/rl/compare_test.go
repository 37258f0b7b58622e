package main

import (
	"slices"
	"strings"
	"testing"
)

// TestCompareArgs: flags after the files (which urfave/cli leaves among the
// arguments) are read, and override those before them.
func TestCompareArgs(t *testing.T) {
	def := compareFlags{output: "comparison", seed: 42}
	dirs, f, err := compareArgs([]string{"sft.yaml", "--seeds", "3", "dpo.yaml", "-o=out", "--seed=7"}, def)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dirs, []string{"sft.yaml", "dpo.yaml"}) || f.output != "out" || f.seeds != 3 || !f.seedsSet || f.seed != 7 {
		t.Errorf("dirs %v flags %+v", dirs, f)
	}
	if dirs, f, _ := compareArgs([]string{"a", "b"}, def); len(dirs) != 2 || f != def {
		t.Errorf("no flags: dirs %v flags %+v", dirs, f)
	}
	for _, args := range [][]string{{"a", "--seeds"}, {"a", "--seeds", "three"}, {"a", "--output"}} {
		if _, _, err := compareArgs(args, def); err == nil || !strings.Contains(err.Error(), args[1]) {
			t.Errorf("%v: %v, want an error naming %s", args, err, args[1])
		}
	}
}
