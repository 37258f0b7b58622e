package datasets

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/rlsuite/rl/shared/hub"
)

// hubDatasetID reads a dataset_name that is no local path as a Hub id
// org/name[:config]; a name ending in a data file extension is taken for a
// missing local file instead.
func hubDatasetID(path string) (hub.Repo, string, bool) {
	if _, ok := dataExts[strings.ToLower(filepath.Ext(path))]; ok {
		return hub.Repo{}, "", false
	}
	return hub.ParseDatasetID(path)
}

func notExist(path string) bool {
	_, err := os.Stat(path)
	return err != nil
}

// loadHub reads a Hub dataset through its Parquet conversion (shared/hub):
// one split per converted split folder, named as on the Hub, its shards
// concatenated in order.
func loadHub(r hub.Repo, config string, opts LoadOptions) (*DatasetDict, error) {
	files, err := hub.ResolveDataset(context.Background(), r, config)
	if err != nil {
		return nil, err
	}
	dd := &DatasetDict{Splits: map[string]*Dataset{}}
	_, only := files[opts.Split] // read just the split asked for, when there is one
	for split, paths := range files {
		if only && split != opts.Split {
			continue
		}
		b := newBuilder(opts)
		for _, p := range paths {
			fb := newBuilder(opts)
			if opts.Limit > 0 {
				fb.opts.Limit = opts.Limit - len(b.records)
			}
			if err := readParquet(p, fb); err != nil {
				return nil, err
			}
			b.merge(fb)
			if opts.Limit > 0 && len(b.records) >= opts.Limit {
				break
			}
		}
		d := b.dataset()
		d.Name = split
		dd.Splits[split] = d
	}
	return dd, nil
}
