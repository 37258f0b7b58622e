package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/rlsuite/rl/shared/fsutil"
)

// File names of a Hugging Face model directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

var shardNameRE = regexp.MustCompile(`^model-[0-9]{5}-of-[0-9]{5}\.safetensors$`)

// ShardName returns the name of shard i (1-based) of n, e.g. "model-00001-of-00002.safetensors".
func ShardName(i, n int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n)
}

type indexFile struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// ReadModelDir reads the weights of a Hugging Face model directory: dir/model.safetensors
// if it exists, otherwise the shards listed in dir/model.safetensors.index.json.
// For a sharded checkpoint every tensor in weight_map must be found in the
// shard it is mapped to, no shard may hold a tensor the index does not map to
// it, and the shards' "__metadata__" maps are merged (a key with different
// values in two shards is an error). The index's own "metadata" (e.g.
// total_size) is not checked or returned.
func ReadModelDir(dir string) (*File, error) {
	single := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		return ReadFile(single)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: read model dir %s: %w", dir, err)
	}
	indexPath := filepath.Join(dir, IndexFileName)
	if _, err := os.Stat(indexPath); errors.Is(err, fs.ErrNotExist) {
		// no safetensors: transformers' older pytorch_model.bin (or shards)
		if _, err := os.Stat(filepath.Join(dir, PyTorchFileName)); err == nil {
			return ReadPyTorch(filepath.Join(dir, PyTorchFileName))
		}
		if _, err := os.Stat(filepath.Join(dir, PyTorchIndexName)); err == nil {
			return readShards(dir, filepath.Join(dir, PyTorchIndexName), ReadPyTorch)
		}
		return nil, fmt.Errorf("safetensors: read model dir %s: none of %s, %s, %s or %s exists", dir, SingleFileName, IndexFileName, PyTorchFileName, PyTorchIndexName)
	}
	return readShards(dir, indexPath, ReadFile)
}

// readShards reads the shards an index file lists, each with read.
func readShards(dir, indexPath string, read func(string) (*File, error)) (*File, error) {
	raw, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read model dir %s: %w", dir, err)
	}
	var idx indexFile
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: read %s: invalid index JSON: %w", indexPath, err)
	}
	if idx.WeightMap == nil {
		return nil, fmt.Errorf("safetensors: read %s: missing weight_map", indexPath)
	}
	byShard := map[string][]string{}
	for name, shard := range idx.WeightMap {
		if shard == "" || filepath.Base(shard) != shard || shard == "." || shard == ".." {
			return nil, fmt.Errorf("safetensors: read %s: tensor %q: shard %q is not a plain file name", indexPath, name, shard)
		}
		byShard[shard] = append(byShard[shard], name)
	}
	shards := make([]string, 0, len(byShard))
	for s := range byShard {
		shards = append(shards, s)
	}
	sort.Strings(shards)

	out := &File{Tensors: map[string]Tensor{}}
	for _, shard := range shards {
		path := filepath.Join(dir, shard)
		sf, err := read(path)
		if err != nil {
			return nil, err
		}
		for name, t := range sf.Tensors {
			if want, ok := idx.WeightMap[name]; !ok {
				return nil, fmt.Errorf("safetensors: read %s: tensor %q is not listed in %s", path, name, indexPath)
			} else if want != shard {
				return nil, fmt.Errorf("safetensors: read %s: tensor %q is mapped to %s in %s", path, name, want, indexPath)
			}
			out.Tensors[name] = t
		}
		for _, name := range byShard[shard] {
			if _, ok := sf.Tensors[name]; !ok {
				return nil, fmt.Errorf("safetensors: read %s: tensor %q listed in %s not found", path, name, indexPath)
			}
		}
		for k, v := range sf.Metadata {
			if out.Metadata == nil {
				out.Metadata = map[string]string{}
			}
			if old, ok := out.Metadata[k]; ok && old != v {
				return nil, fmt.Errorf("safetensors: read %s: metadata %q is %q, but %q in an earlier shard", path, k, v, old)
			}
			out.Metadata[k] = v
		}
	}
	return out, nil
}

// WriteSharded writes f into dir (created if needed) as a Hugging Face model
// directory. If the total tensor data exceeds maxShardBytes it writes shards
// ShardName(i, n) — tensors taken in name order, a new shard started whenever
// the next tensor would push the current one past maxShardBytes (a tensor
// larger than the limit gets a shard of its own) — each with f.Metadata,
// plus IndexFileName holding {"metadata": {"total_size": N}, "weight_map": ...}
// (indented, sorted keys, like transformers). Otherwise it writes a single
// SingleFileName. Every file is written atomically; stale model files of the
// other layout (model.safetensors, the index, shards not part of the new set)
// are removed afterwards. The directory as a whole is not replaced
// atomically: wrap the call in fsutil.WriteDir for that.
func WriteSharded(dir string, f *File, maxShardBytes int64) error {
	if maxShardBytes <= 0 {
		return fmt.Errorf("safetensors: write sharded %s: max shard size %d must be positive", dir, maxShardBytes)
	}
	total, err := checkFile(f)
	if err != nil {
		return fmt.Errorf("safetensors: write sharded %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("safetensors: write sharded %s: %w", dir, err)
	}
	if total <= maxShardBytes {
		if err := WriteFile(filepath.Join(dir, SingleFileName), f); err != nil {
			return err
		}
		return removeStale(dir, map[string]bool{SingleFileName: true})
	}

	var groups [][]string
	var cur []string
	var curBytes int64
	for _, name := range f.Names() {
		sz := int64(len(f.Tensors[name].Data))
		if len(cur) > 0 && curBytes+sz > maxShardBytes {
			groups = append(groups, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, name)
		curBytes += sz
	}
	groups = append(groups, cur)

	keep := map[string]bool{IndexFileName: true}
	weightMap := map[string]string{}
	for i, names := range groups {
		shard := ShardName(i+1, len(groups))
		keep[shard] = true
		sf := &File{Metadata: f.Metadata, Tensors: make(map[string]Tensor, len(names))}
		for _, name := range names {
			sf.Tensors[name] = f.Tensors[name]
			weightMap[name] = shard
		}
		if err := WriteFile(filepath.Join(dir, shard), sf); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	idx := indexFile{Metadata: map[string]any{"total_size": total}, WeightMap: weightMap}
	if err := enc.Encode(idx); err != nil {
		return fmt.Errorf("safetensors: write sharded %s: index: %w", dir, err)
	}
	if err := fsutil.WriteFile(filepath.Join(dir, IndexFileName), buf.Bytes(), 0o644); err != nil {
		return err
	}
	return removeStale(dir, keep)
}

// removeStale deletes model files of either layout in dir that are not in keep.
func removeStale(dir string, keep map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("safetensors: write sharded %s: %w", dir, err)
	}
	removed := false
	for _, e := range ents {
		name := e.Name()
		if keep[name] || !(name == SingleFileName || name == IndexFileName || shardNameRE.MatchString(name)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("safetensors: write sharded %s: remove stale %s: %w", dir, name, err)
		}
		removed = true
	}
	if removed {
		if err := fsutil.SyncDir(dir); err != nil {
			return fmt.Errorf("safetensors: write sharded %s: %w", dir, err)
		}
	}
	return nil
}
