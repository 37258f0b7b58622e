package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/dist/disttest"
	"github.com/rlsuite/rl/shared/metrics"
)

// TestMain runs a disttest worker when the test binary is started as a
// rank (TestAddStatsReducedAsTRL).
func TestMain(m *testing.M) {
	disttest.Worker(map[string]func() error{"stats": statsWorker})
	os.Exit(m.Run())
}

// statsWorker reduces each rank's loss metrics of one micro-batch with
// AddStats and prints the logged values as JSON.
func statsWorker() error {
	env, err := dist.ReadEnv()
	if err != nil {
		return err
	}
	g, err := dist.Open(env, dist.Options{Timeout: 30 * time.Second, JoinTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer g.Close()
	st := [][]Stat{
		{{Key: "entropy", Sum: 6, N: 4}, {Key: "kl", Sum: 1, N: 2}, {Key: "low_min", Sum: 0.5, Op: StatMin}, {Key: "high_max", Sum: math.NaN(), Op: StatMax}},
		{{Key: "entropy", Sum: 1, N: 1}, {Key: "kl", Sum: 0, N: 0}, {Key: "low_min", Sum: 0.25, Op: StatMin}, {Key: "high_max", Sum: 0.75, Op: StatMax}},
	}[g.Rank]
	o := Online[int]{Name: "test", Dist: g}
	var acc metrics.Accumulator
	o.AddStats(&acc, st)
	b, err := json.Marshal(acc.Means())
	if err != nil {
		return err
	}
	fmt.Printf("STATS %s\n", b)
	return nil
}

// TestAddStatsReducedAsTRL: in a world of 2, AddStats reduces a
// micro-batch's loss metrics as TRL does, the same on every rank: a mean
// from the sums and counts summed over the ranks (global_masked_mean:
// entropy (6+1)/(4+1) = 1.4, not the mean of the ranks' means 1.25; kl
// (1+0)/(2+0)), a min and a max over the ranks' values with NaN skipped
// (nanmin 0.25, nanmax 0.75).
func TestAddStatsReducedAsTRL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	want := map[string]float64{"entropy": 1.4, "kl": 0.5, "low_min": 0.25, "high_max": 0.75}
	for r, res := range disttest.World(t, "stats", 2, 60*time.Second) {
		if res.Err != nil {
			t.Fatalf("rank %d: %v\n%s", r, res.Err, res.Out)
		}
		_, js, ok := strings.Cut(res.Out, "STATS ")
		var got map[string]float64
		if !ok || json.Unmarshal([]byte(strings.TrimSpace(js)), &got) != nil {
			t.Fatalf("rank %d printed no stats: %s", r, res.Out)
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || math.Abs(g-v) > 1e-12 {
				t.Errorf("rank %d %s = %v (logged %v), want %g", r, k, g, ok, v)
			}
		}
	}
}
