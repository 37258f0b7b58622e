package ppo

import (
	"math"
	"strings"
	"testing"
)

// TestValidateNumbers: --gamma -3 --lam 7 (which trained to 1e17) and other
// out-of-range or non-finite PPO settings are refused by name (issue 11, item 14).
func TestValidateNumbers(t *testing.T) {
	c := DefaultConfig()
	c.SFTModel, c.Reward, c.Dataset = "m", "builtin:length", "d"
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	c.Gamma, c.Lam, c.TotalEpisodes, c.KLCoef, c.PerDeviceTrainBatchSize = -3, 7, -5, math.NaN(), 0
	err := c.Validate()
	for _, s := range []string{
		"gamma (--gamma) = -3: want a value in [0, 1]",
		"lam (--lam) = 7: want a value in [0, 1]",
		"total_episodes (--total-episodes) = -5",
		"kl_coef (--kl-coef) = NaN",
		"per_device_train_batch_size (--per-device-train-batch-size) = 0",
	} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Validate error %v lacks %q", err, s)
		}
	}
}
