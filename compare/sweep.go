package compare

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/rlsuite/rl/shared/train"
)

// Finished reports whether dir holds a finished run of config (YAML: the
// rl_config.yaml the run would write, or some of its keys), so that a
// sweep can skip it: every key of config has the same value in the run's
// rl_config.yaml (numbers compared as numbers), trainer_state.json is
// written (the trainer's last file) and checkpoint-<global_step> is
// complete (its rl_state.json, the trainer's complete marker, is there).
// When it is not, why says what is missing or different.
func Finished(dir string, config []byte) (ok bool, why string) {
	have, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return false, "no " + ConfigFile
	}
	if !bytes.Equal(have, config) {
		var h, w map[string]any
		if err := yaml.Unmarshal(have, &h); err != nil {
			return false, ConfigFile + ": " + err.Error()
		}
		if err := yaml.Unmarshal(config, &w); err != nil {
			return false, "the configuration: " + err.Error()
		}
		for k, v := range w {
			if !sameValue(h[k], v) {
				return false, fmt.Sprintf("%s has %s: %v, this run %v", ConfigFile, k, h[k], v)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return false, "no " + StateFile + " (the run did not end)"
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil || st.GlobalStep <= 0 {
		return false, StateFile + " has no global_step"
	}
	want := "checkpoint-" + strconv.Itoa(st.GlobalStep)
	cps, err := train.Checkpoints(dir)
	if err != nil {
		return false, err.Error()
	}
	for _, c := range cps {
		if filepath.Base(c) == want {
			return true, ""
		}
	}
	return false, fmt.Sprintf("no complete %s (with %s)", want, train.RLStateFile)
}

// sameValue compares decoded YAML values, numbers by value (2 and 2.0 are
// the same).
func sameValue(a, b any) bool {
	if x, ok := asFloat(a); ok {
		y, ok := asFloat(b)
		return ok && x == y
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !sameValue(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
