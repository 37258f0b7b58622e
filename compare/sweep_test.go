package compare

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// finishedRun writes a fake finished run: rl_config.yaml, trainer_state.json
// at step 3 and a complete checkpoint-3 (with rl_state.json).
func finishedRun(t *testing.T, config string) string {
	t.Helper()
	dir := writeRun(t, t.TempDir(), "run", map[string]string{
		ConfigFile: config,
		StateFile:  `{"global_step": 3, "max_steps": 3}`,
	})
	writeRun(t, dir, "checkpoint-3", map[string]string{"rl_state.json": `{"format": 1}`})
	writeRun(t, dir, "checkpoint-2", nil) // an incomplete one does not matter
	return dir
}

func TestFinished(t *testing.T) {
	const cfg = "seed: 42\nlearning_rate: 1.0e-04\nbeta: 2.0\nloss_type: [sigmoid]\noutput_dir: out/dpo\n"
	dir := finishedRun(t, cfg)
	if ok, why := Finished(dir, []byte(cfg)); !ok {
		t.Errorf("the same config: not finished (%s)", why)
	}
	// Some keys, numbers spelled otherwise: still the same run.
	if ok, why := Finished(dir, []byte("beta: 2\nlearning_rate: 0.0001\nloss_type: [sigmoid]\n")); !ok {
		t.Errorf("a subset of the config: not finished (%s)", why)
	}
	for _, c := range []struct{ name, config, why string }{
		{"other seed", "seed: 43\n", "seed"},
		{"other loss", "loss_type: [ipo]\n", "loss_type"},
		{"new key", "cpo_alpha: 0\n", "cpo_alpha"},
	} {
		if ok, why := Finished(dir, []byte(c.config)); ok || !strings.Contains(why, c.why) {
			t.Errorf("%s: finished %v (%s), want not, naming %s", c.name, ok, why, c.why)
		}
	}

	// The complete marker: without checkpoint-3's rl_state.json the run
	// was cut while saving; without trainer_state.json it did not end.
	if err := os.Remove(filepath.Join(dir, "checkpoint-3", "rl_state.json")); err != nil {
		t.Fatal(err)
	}
	if ok, why := Finished(dir, []byte(cfg)); ok || !strings.Contains(why, "checkpoint-3") {
		t.Errorf("no rl_state.json: finished %v (%s)", ok, why)
	}
	dir = finishedRun(t, cfg)
	os.Remove(filepath.Join(dir, StateFile))
	if ok, why := Finished(dir, []byte(cfg)); ok || !strings.Contains(why, StateFile) {
		t.Errorf("no trainer_state.json: finished %v (%s)", ok, why)
	}
	if ok, _ := Finished(t.TempDir(), []byte(cfg)); ok {
		t.Error("an empty directory is finished")
	}
}
