package datasets

import (
	"math"
	"math/rand/v2"
)

// newRand returns the package's deterministic generator: PCG seeded with
// (seed, seed ^ 0x9E3779B97F4A7C15), so equal seeds give equal orders on
// every platform and Go version (math/rand/v2's PCG is specified).
func newRand(seed int64) *rand.Rand {
	s := uint64(seed)
	return rand.New(rand.NewPCG(s, s^0x9E3779B97F4A7C15))
}

// Permutation returns the seeded permutation of [0, n) that Shuffle and
// TrainTestSplit use.
func Permutation(n int, seed int64) []int {
	return newRand(seed).Perm(n)
}

// Select returns a dataset holding the records at the given indices, in
// that order (records are shared, not copied).
func (d *Dataset) Select(indices []int) *Dataset {
	out := d.shallow()
	out.Records = make([]Record, len(indices))
	out.Sources = make([]Source, len(indices))
	for i, j := range indices {
		out.Records[i] = d.Records[j]
		out.Sources[i] = d.Source(j)
	}
	return out
}

// Shuffle returns the records in a seeded random order.
func (d *Dataset) Shuffle(seed int64) *Dataset {
	return d.Select(Permutation(len(d.Records), seed))
}

// TrainTestSplit splits the dataset the way Hugging Face's
// train_test_split does: the records are permuted with the seed, the first
// nTest go to test and the rest to train, each part keeping the permuted
// order. testSize in (0, 1) is a fraction (nTest = ceil(testSize * n));
// testSize >= 1 is a record count. nTest is clamped to [0, n]: a testSize
// <= 0 gives an empty test set. The results are named "train" and "test".
func (d *Dataset) TrainTestSplit(testSize float64, seed int64) (train, test *Dataset) {
	n := len(d.Records)
	var nTest int
	switch {
	case testSize <= 0 || math.IsNaN(testSize):
		nTest = 0
	case testSize < 1:
		nTest = int(math.Ceil(testSize * float64(n)))
	default:
		nTest = int(math.Min(testSize, float64(n)))
	}
	nTest = min(max(nTest, 0), n)
	perm := Permutation(n, seed)
	test = d.Select(perm[:nTest])
	test.Name = "test"
	train = d.Select(perm[nTest:])
	train.Name = "train"
	return train, test
}

// WithEvalSplit returns dd unchanged when it already has an evaluation
// split (named eval, "test" or "validation", in that order of preference),
// else a DatasetDict whose "train" is split by TrainTestSplit into "train"
// and "test". The name of the evaluation split is returned.
func (dd *DatasetDict) WithEvalSplit(eval string, testSize float64, seed int64) (*DatasetDict, string) {
	for _, name := range []string{eval, "test", "validation"} {
		if _, ok := dd.Splits[name]; ok && name != "" {
			return dd, name
		}
	}
	train, ok := dd.Splits["train"]
	if !ok {
		return dd, ""
	}
	tr, te := train.TrainTestSplit(testSize, seed)
	out := &DatasetDict{Splits: map[string]*Dataset{}}
	for k, v := range dd.Splits {
		out.Splits[k] = v
	}
	out.Splits["train"], out.Splits["test"] = tr, te
	return out, "test"
}
