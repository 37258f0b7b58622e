package metrics

import "sync"

// Accumulator averages per-step metric values between log points, as the HF
// Trainer does before each log; the zero value is ready to use and it is
// safe for concurrent use.
type Accumulator struct {
	mu     sync.Mutex
	sums   map[string]float64
	weight map[string]float64
}

// Add records one value of the named metric with weight 1.
func (a *Accumulator) Add(name string, v float64) { a.AddWeighted(name, v, 1) }

// AddWeighted records a value with a weight, e.g. a per-batch mean weighted
// by its token count; non-positive weights are ignored.
func (a *Accumulator) AddWeighted(name string, v, weight float64) {
	if !(weight > 0) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sums == nil {
		a.sums, a.weight = map[string]float64{}, map[string]float64{}
	}
	a.sums[name] += v * weight
	a.weight[name] += weight
}

// Means returns the weighted mean of each metric recorded since the last Reset.
func (a *Accumulator) Means() map[string]float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]float64, len(a.sums))
	for k, s := range a.sums {
		out[k] = s / a.weight[k]
	}
	return out
}

// Reset forgets every recorded value.
func (a *Accumulator) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.sums)
	clear(a.weight)
}

// Snapshot returns copies of the weighted sums and weights recorded since
// the last Reset, so that a checkpoint can carry a partial logging window.
func (a *Accumulator) Snapshot() (sums, weights map[string]float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sums, weights = make(map[string]float64, len(a.sums)), make(map[string]float64, len(a.weight))
	for k, v := range a.sums {
		sums[k], weights[k] = v, a.weight[k]
	}
	return sums, weights
}

// Restore replaces the recorded values with those of a Snapshot.
func (a *Accumulator) Restore(sums, weights map[string]float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sums, a.weight = make(map[string]float64, len(sums)), make(map[string]float64, len(sums))
	for k, v := range sums {
		if w := weights[k]; w > 0 {
			a.sums[k], a.weight[k] = v, w
		}
	}
}
