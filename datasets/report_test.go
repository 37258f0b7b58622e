package datasets

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestWarnSkipped: skipped records are logged with their count and first
// reasons, and chosen == rejected pairs with a count (issue 11, item 13 and
// the identical-pairs warning).
func TestWarnSkipped(t *testing.T) {
	p := writeFile(t, t.TempDir(), "train.jsonl", `{"chosen": "a", "rejected": "a"}`+"\n"+`{"chosen": "", "rejected": "b"}`+"\n"+`{"chosen": "x"`+"\n"+`{"chosen": "c", "rejected": "d"}`+"\n")
	d := mustSplit(t, mustLoad(t, p, LoadOptions{SkipBadRecords: true}), "train")
	if _, err := d.Preferences(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	if n := WarnSkipped(log, d, true); n != 2 {
		t.Errorf("WarnSkipped = %d, want 2 (one unreadable, one invalid)", n)
	}
	out := buf.String()
	for _, want := range []string{`"skipped":1`, "train.jsonl:3: invalid JSON", `train.jsonl:2: field \"chosen\": empty string`, `"pairs":1`, "identical"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
