package metrics

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// TensorBoard writes TensorBoard event files the way HF Trainer's
// TensorBoardCallback does through torch.utils.tensorboard.SummaryWriter
// (transformers integrations/integration_utils.py): a file
// events.out.tfevents.<time>.<host>.<pid>.0 in the run's logging dir, whose
// first event carries file_version "brain.Event:2", then a scalar
// (simple_value) per logged metric, named by rewrite_logs (eval_loss ->
// eval/loss, loss -> train/loss), and text summaries (the arguments).
//
// The records are TFRecords (tensorflow/core/lib/io/record_writer.cc):
// uint64 length, masked CRC32C of the length, the Event proto, masked CRC32C
// of the proto, all little-endian. The Event, Summary and TensorProto
// messages follow tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto, encoded with protowire.
type TensorBoard struct {
	f    *os.File
	w    *bufio.Writer
	path string
	now  func() time.Time
}

// TensorBoardRunDir is HF's default logging_dir: output_dir/runs/<%b%d_%H-%M-%S>_<hostname>
// (TrainingArguments' default_logdir).
func TensorBoardRunDir(outputDir string, now time.Time) string {
	host, _ := os.Hostname()
	return filepath.Join(outputDir, "runs", now.Format("Jan02_15-04-05")+"_"+host)
}

// NewTensorBoard creates dir and an event file in it.
func NewTensorBoard(dir string) (*TensorBoard, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	path := filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%010d.%s.%d.0", now.Unix(), host, os.Getpid()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	tb := &TensorBoard{f: f, w: bufio.NewWriter(f), path: path, now: time.Now}
	if err := tb.event(0, 3, protowire.AppendString(nil, "brain.Event:2"), true); err != nil {
		f.Close()
		return nil, err
	}
	return tb, tb.Flush()
}

// Path is the event file.
func (tb *TensorBoard) Path() string { return tb.path }

// TensorBoardTag is HF's rewrite_logs: eval_x -> eval/x, test_x -> test/x,
// anything else -> train/x.
func TensorBoardTag(key string) string {
	for _, p := range []string{"eval_", "test_"} {
		if rest, ok := strings.CutPrefix(key, p); ok {
			return strings.TrimSuffix(p, "_") + "/" + rest
		}
	}
	return "train/" + key
}

// Scalars writes one event at step with a simple_value per finite metric,
// in key order.
func (tb *TensorBoard) Scalars(step int, values map[string]float64) error {
	keys := make([]string, 0, len(values))
	for k, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	var summary []byte
	for _, k := range keys {
		var val []byte
		val = protowire.AppendTag(val, 1, protowire.BytesType) // tag
		val = protowire.AppendString(val, TensorBoardTag(k))
		val = protowire.AppendTag(val, 2, protowire.Fixed32Type) // simple_value (float)
		val = protowire.AppendFixed32(val, math.Float32bits(float32(values[k])))
		summary = protowire.AppendTag(summary, 1, protowire.BytesType) // Summary.value
		summary = protowire.AppendBytes(summary, val)
	}
	if err := tb.event(step, 5, summary, false); err != nil {
		return err
	}
	return tb.Flush()
}

// Text writes a text summary (torch.utils.tensorboard.summary.text): tag
// "<tag>/text_summary", the text plugin's metadata, and a DT_STRING tensor
// of shape [1].
func (tb *TensorBoard) Text(step int, tag, text string) error {
	var plugin []byte
	plugin = protowire.AppendTag(plugin, 1, protowire.BytesType) // PluginData.plugin_name
	plugin = protowire.AppendString(plugin, "text")
	plugin = protowire.AppendTag(plugin, 2, protowire.BytesType) // content: TextPluginData{version: 0}, empty
	plugin = protowire.AppendBytes(plugin, nil)
	var meta []byte
	meta = protowire.AppendTag(meta, 1, protowire.BytesType) // SummaryMetadata.plugin_data
	meta = protowire.AppendBytes(meta, plugin)
	var dim []byte
	dim = protowire.AppendTag(dim, 1, protowire.VarintType) // Dim.size
	dim = protowire.AppendVarint(dim, 1)
	var shape []byte
	shape = protowire.AppendTag(shape, 2, protowire.BytesType) // TensorShapeProto.dim
	shape = protowire.AppendBytes(shape, dim)
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType) // dtype
	tensor = protowire.AppendVarint(tensor, 7)                    // DT_STRING
	tensor = protowire.AppendTag(tensor, 2, protowire.BytesType)  // tensor_shape
	tensor = protowire.AppendBytes(tensor, shape)
	tensor = protowire.AppendTag(tensor, 8, protowire.BytesType) // string_val
	tensor = protowire.AppendString(tensor, text)
	var val []byte
	val = protowire.AppendTag(val, 1, protowire.BytesType) // tag
	val = protowire.AppendString(val, tag+"/text_summary")
	val = protowire.AppendTag(val, 9, protowire.BytesType) // metadata
	val = protowire.AppendBytes(val, meta)
	val = protowire.AppendTag(val, 8, protowire.BytesType) // tensor
	val = protowire.AppendBytes(val, tensor)
	var summary []byte
	summary = protowire.AppendTag(summary, 1, protowire.BytesType)
	summary = protowire.AppendBytes(summary, val)
	if err := tb.event(step, 5, summary, false); err != nil {
		return err
	}
	return tb.Flush()
}

// event writes Event{wall_time, step, <field>: payload}; payload is the
// encoded message (or string) of field 3 (file_version) or 5 (summary).
func (tb *TensorBoard) event(step int, field protowire.Number, payload []byte, raw bool) error {
	var ev []byte
	ev = protowire.AppendTag(ev, 1, protowire.Fixed64Type) // wall_time (double, seconds)
	ev = protowire.AppendFixed64(ev, math.Float64bits(float64(tb.now().UnixNano())/1e9))
	if step != 0 {
		ev = protowire.AppendTag(ev, 2, protowire.VarintType) // step
		ev = protowire.AppendVarint(ev, uint64(int64(step)))
	}
	ev = protowire.AppendTag(ev, field, protowire.BytesType)
	if raw {
		ev = append(ev, payload...) // already length-prefixed (AppendString)
	} else {
		ev = protowire.AppendBytes(ev, payload)
	}
	return tb.record(ev)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC32C is TFRecord's masked CRC32C (tensorflow/core/lib/hash/crc32c.h Mask).
func MaskedCRC32C(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

func (tb *TensorBoard) record(data []byte) error {
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], MaskedCRC32C(hdr[:8]))
	var foot [4]byte
	binary.LittleEndian.PutUint32(foot[:], MaskedCRC32C(data))
	for _, b := range [][]byte{hdr[:], data, foot[:]} {
		if _, err := tb.w.Write(b); err != nil {
			return fmt.Errorf("tensorboard: %s: %w", tb.path, err)
		}
	}
	return nil
}

// Flush writes buffered events to the file.
func (tb *TensorBoard) Flush() error {
	if err := tb.w.Flush(); err != nil {
		return fmt.Errorf("tensorboard: %s: %w", tb.path, err)
	}
	return nil
}

// Close flushes and closes the event file.
func (tb *TensorBoard) Close() error {
	err := tb.Flush()
	if cerr := tb.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("tensorboard: %w", cerr)
	}
	return err
}
