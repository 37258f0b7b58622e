package metrics

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// crc32cBitwise is CRC-32C computed bit by bit from the reflected
// Castagnoli polynomial (RFC 3720 B.4), independent of hash/crc32.
func crc32cBitwise(b []byte) uint32 {
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for i := 0; i < 8; i++ {
			if c&1 != 0 {
				c = c>>1 ^ 0x82f63b78
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

// masked is TFRecord's mask: rotate right by 15, add 0xa282ead8.
func masked(c uint32) uint32 { return ((c >> 15) | (c << 17)) + 0xa282ead8 }

func TestMaskedCRC32C(t *testing.T) {
	if got := crc32cBitwise([]byte("123456789")); got != 0xe3069283 {
		t.Fatalf("reference CRC-32C check value = %#x, want 0xe3069283", got)
	}
	for _, s := range []string{"", "123456789", "brain.Event:2", strings.Repeat("x", 1000)} {
		if got, want := MaskedCRC32C([]byte(s)), masked(crc32cBitwise([]byte(s))); got != want {
			t.Errorf("MaskedCRC32C(%q) = %#x, want %#x", s, got, want)
		}
	}
}

// tbEvent is an Event as read back: the fields rl writes.
type tbEvent struct {
	wallTime    float64
	step        int64
	fileVersion string
	values      []tbValue
}

type tbValue struct {
	tag, plugin, text string
	simple            float32
	hasSimple         bool
	dtype             uint64
}

// readEvents reads a TFRecord file, checking each length and data CRC, and
// decodes the Event protos.
func readEvents(t *testing.T, path string) []tbEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []tbEvent
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("truncated record header: %d bytes left", len(b))
		}
		n := binary.LittleEndian.Uint64(b[:8])
		if got, want := binary.LittleEndian.Uint32(b[8:12]), masked(crc32cBitwise(b[:8])); got != want {
			t.Fatalf("length CRC %#x, want %#x", got, want)
		}
		if uint64(len(b)) < 12+n+4 {
			t.Fatalf("truncated record: want %d data bytes", n)
		}
		data := b[12 : 12+n]
		if got, want := binary.LittleEndian.Uint32(b[12+n:16+n]), masked(crc32cBitwise(data)); got != want {
			t.Fatalf("data CRC %#x, want %#x", got, want)
		}
		out = append(out, decodeEvent(t, data))
		b = b[16+n:]
	}
	return out
}

// fields walks a message, calling f for each field; bytes fields get
// their payload, varints/fixed their value in v.
func fields(t *testing.T, b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, payload []byte)) {
	t.Helper()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				t.Fatal("bad varint")
			}
			f(num, typ, v, nil)
			b = b[m:]
		case protowire.Fixed32Type:
			v, m := protowire.ConsumeFixed32(b)
			if m < 0 {
				t.Fatal("bad fixed32")
			}
			f(num, typ, uint64(v), nil)
			b = b[m:]
		case protowire.Fixed64Type:
			v, m := protowire.ConsumeFixed64(b)
			if m < 0 {
				t.Fatal("bad fixed64")
			}
			f(num, typ, v, nil)
			b = b[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				t.Fatal("bad bytes")
			}
			f(num, typ, 0, v)
			b = b[m:]
		default:
			t.Fatalf("unexpected wire type %d", typ)
		}
	}
}

func decodeEvent(t *testing.T, b []byte) tbEvent {
	var e tbEvent
	fields(t, b, func(num protowire.Number, typ protowire.Type, v uint64, p []byte) {
		switch num {
		case 1:
			e.wallTime = math.Float64frombits(v)
		case 2:
			e.step = int64(v)
		case 3:
			e.fileVersion = string(p)
		case 5: // Summary
			fields(t, p, func(num protowire.Number, _ protowire.Type, _ uint64, p []byte) {
				if num != 1 {
					t.Errorf("Summary field %d", num)
					return
				}
				var val tbValue
				fields(t, p, func(num protowire.Number, _ protowire.Type, v uint64, p []byte) {
					switch num {
					case 1:
						val.tag = string(p)
					case 2:
						val.simple, val.hasSimple = math.Float32frombits(uint32(v)), true
					case 9: // SummaryMetadata.plugin_data.plugin_name
						fields(t, p, func(num protowire.Number, _ protowire.Type, _ uint64, p []byte) {
							if num == 1 {
								fields(t, p, func(num protowire.Number, _ protowire.Type, _ uint64, p []byte) {
									if num == 1 {
										val.plugin = string(p)
									}
								})
							}
						})
					case 8: // TensorProto
						fields(t, p, func(num protowire.Number, _ protowire.Type, v uint64, p []byte) {
							switch num {
							case 1:
								val.dtype = v
							case 8:
								val.text = string(p)
							}
						})
					}
				})
				e.values = append(e.values, val)
			})
		default:
			t.Errorf("Event field %d", num)
		}
	})
	return e
}

// TestTensorBoardEvents: the file starts with file_version brain.Event:2,
// then scalars under HF's tags at their steps, then a text summary; every
// record's framing and CRCs check.
func TestTensorBoardEvents(t *testing.T) {
	now := time.Date(2026, 12, 1, 23, 5, 9, 0, time.UTC)
	dir := TensorBoardRunDir(t.TempDir(), now)
	host, _ := os.Hostname()
	if want := "Dec01_23-05-09_" + host; filepath.Base(dir) != want || filepath.Base(filepath.Dir(dir)) != "runs" {
		t.Errorf("run dir %s, want runs/%s", dir, want)
	}
	tb, err := NewTensorBoard(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(tb.Path()), "events.out.tfevents.") || !strings.HasSuffix(tb.Path(), fmt.Sprintf(".%s.%d.0", host, os.Getpid())) {
		t.Errorf("event file name %s", filepath.Base(tb.Path()))
	}
	if err := tb.Text(0, "args", `{"learning_rate": 2e-05}`); err != nil {
		t.Fatal(err)
	}
	if err := tb.Scalars(10, map[string]float64{"loss": 2.5, "learning_rate": 2e-5, "eval_loss": 1.25, "bad": math.NaN()}); err != nil {
		t.Fatal(err)
	}
	if err := tb.Scalars(20, map[string]float64{"loss": 1.5}); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	ev := readEvents(t, tb.Path())
	if len(ev) != 4 {
		t.Fatalf("%d events, want 4", len(ev))
	}
	if ev[0].fileVersion != "brain.Event:2" || ev[0].step != 0 {
		t.Errorf("first event %+v, want file_version brain.Event:2", ev[0])
	}
	if d := time.Since(time.Unix(0, int64(ev[0].wallTime*1e9))); d < 0 || d > time.Minute {
		t.Errorf("wall_time %f is not now", ev[0].wallTime)
	}
	if v := ev[1].values; len(v) != 1 || v[0].tag != "args/text_summary" || v[0].plugin != "text" || v[0].dtype != 7 || v[0].text != `{"learning_rate": 2e-05}` {
		t.Errorf("text event %+v", v)
	}
	want := []tbValue{{tag: "eval/loss", simple: 1.25}, {tag: "train/learning_rate", simple: 2e-5}, {tag: "train/loss", simple: 2.5}}
	if ev[2].step != 10 || len(ev[2].values) != len(want) {
		t.Fatalf("scalars at step %d: %+v, want step 10 with %d values (NaN left out)", ev[2].step, ev[2].values, len(want))
	}
	for i, w := range want {
		g := ev[2].values[i]
		if g.tag != w.tag || !g.hasSimple || g.simple != w.simple {
			t.Errorf("value %d = %s %g, want %s %g", i, g.tag, g.simple, w.tag, w.simple)
		}
	}
	if ev[3].step != 20 || len(ev[3].values) != 1 || ev[3].values[0].simple != 1.5 {
		t.Errorf("second scalars event %+v", ev[3])
	}
}

func TestTensorBoardTag(t *testing.T) {
	for k, want := range map[string]string{"loss": "train/loss", "eval_loss": "eval/loss", "test_acc": "test/acc", "rewards/chosen": "train/rewards/chosen", "eval_rewards/margins": "eval/rewards/margins"} {
		if got := TensorBoardTag(k); got != want {
			t.Errorf("TensorBoardTag(%q) = %q, want %q", k, got, want)
		}
	}
}
