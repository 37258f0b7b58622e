package datasets

import (
	"fmt"
	"strings"
)

// ParseColumns reads column renames given as "source=target" (the
// trainers' --columns flag).
func ParseColumns(specs []string) (map[string]string, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	from := map[string]string{} // target -> source
	for _, s := range specs {
		src, dst, ok := strings.Cut(s, "=")
		if !ok || src == "" || dst == "" {
			return nil, fmt.Errorf("datasets: columns entry %q: want source=target", s)
		}
		if prev, ok := m[src]; ok && prev != dst {
			return nil, fmt.Errorf("datasets: columns: %q is renamed twice (to %q and %q)", src, prev, dst)
		}
		if prev, ok := from[dst]; ok && prev != src {
			return nil, fmt.Errorf("datasets: columns: %q and %q are both renamed to %q", prev, src, dst)
		}
		m[src], from[dst] = dst, src
	}
	return m, nil
}

// LoadTrainEval loads path and returns its trainSplit and an evaluation
// split: testSplit when the data has it, else evalRatio of the training
// split held out with a seeded shuffle, else nil.
func LoadTrainEval(path, trainSplit, testSplit string, evalRatio float64, seed int64, opts LoadOptions) (train, eval *Dataset, err error) {
	dd, err := Load(path, opts)
	if err != nil {
		return nil, nil, err
	}
	if train, err = dd.Split(trainSplit); err != nil {
		return nil, nil, err
	}
	if testSplit != "" && testSplit != trainSplit {
		if s, ok := dd.Splits[testSplit]; ok {
			return train, s, nil
		}
	}
	if evalRatio > 0 {
		train, eval = train.TrainTestSplit(evalRatio, seed)
	}
	return train, eval, nil
}
