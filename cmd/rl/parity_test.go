package main

import (
	"bufio"
	"github.com/rlsuite/rl/datasets"
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rlsuite/rl/cpo"
	"github.com/rlsuite/rl/dpo"
	"github.com/rlsuite/rl/grpo"
	"github.com/rlsuite/rl/kto"
	"github.com/rlsuite/rl/orpo"
	"github.com/rlsuite/rl/ppo"
	"github.com/rlsuite/rl/reward"
	"github.com/rlsuite/rl/rloo"
	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/cliconf"
	"github.com/rlsuite/rl/shared/train"
)

// TestParityTable: every rl default docs/trl-parity.md lists is the
// trainer's DefaultConfig value, and a field marked "—" (absent in rl) is
// indeed no key of its config.
func TestParityTable(t *testing.T) {
	configs := map[string]any{
		"train": ptrTo(train.DefaultArgs()), "sft": ptrTo(sft.DefaultConfig()), "reward": ptrTo(reward.DefaultConfig()),
		"dpo": ptrTo(dpo.DefaultConfig()), "orpo": ptrTo(orpo.DefaultConfig()), "cpo": ptrTo(cpo.DefaultConfig()), "ppo": ptrTo(ppo.DefaultConfig()),
		"kto":   ptrTo(kto.DefaultConfig()),
		"model": ptrTo(train.DefaultModelConfig()), "script": ptrTo(datasets.DefaultScriptArguments()),
		"grpo": ptrTo(grpo.DefaultConfig()), "rloo": ptrTo(rloo.DefaultConfig()),
	}
	f, err := os.Open("../../docs/trl-parity.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var name string
	var defaults map[string]any
	checked := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if n, ok := strings.CutPrefix(line, "<!-- defaults: "); ok {
			name = strings.TrimSuffix(n, " -->")
			b, err := cliconf.Dump(configs[name])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			defaults = map[string]any{}
			if err := yaml.Unmarshal(b, &defaults); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if line == "<!-- end -->" {
			name = ""
			continue
		}
		if name == "" || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			t.Errorf("%s: row %q has %d cells", name, line, len(cells))
			continue
		}
		rl := strings.TrimSpace(cells[2])
		for _, key := range strings.Split(cells[0], ",") {
			key = strings.Trim(strings.TrimSpace(key), "`")
			got, has := defaults[key]
			if rl == "—" {
				if has {
					t.Errorf("%s: %s is marked absent but the config has it (= %v)", name, key, got)
				}
				continue
			}
			var want any
			if err := yaml.Unmarshal([]byte(strings.Trim(rl, "`")), &want); err != nil {
				t.Errorf("%s: %s: rl default %s is not YAML: %v", name, key, rl, err)
				continue
			}
			if !has {
				t.Errorf("%s: %s is listed with rl default %s but the config has no such key", name, key, rl)
				continue
			}
			if !sameValue(got, want) {
				t.Errorf("%s: %s: the table says %v, DefaultConfig has %v", name, key, want, got)
			}
			checked[name]++
		}
	}
	for n := range configs {
		if checked[n] < 3 {
			t.Errorf("%s: only %d defaults checked: the table is missing", n, checked[n])
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// sameValue compares YAML values, numbers as float64 and empty lists as nil.
func sameValue(a, b any) bool {
	num := func(v any) (float64, bool) {
		switch x := v.(type) {
		case int:
			return float64(x), true
		case float64:
			return x, true
		}
		return 0, false
	}
	if x, ok := num(a); ok {
		y, ok := num(b)
		return ok && x == y
	}
	la, oka := a.([]any)
	lb, okb := b.([]any)
	if oka || okb {
		if len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !sameValue(la[i], lb[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
