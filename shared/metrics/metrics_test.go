package metrics

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeClock returns a clock starting at a fixed time that advances only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock                   { return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }
func messages(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m struct{ Message string }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("zerolog line %q: %v", line, err)
		}
		out = append(out, m.Message)
	}
	return out
}

func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLogWritesJSONL(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLogger(dir, zerolog.Nop(), Options{TotalSteps: 100})
	if err != nil {
		t.Fatal(err)
	}
	logged := []Entry{
		{Step: 10, Values: map[string]float64{"loss": 1.23, "learning_rate": 5e-05, "epoch": 0.5}},
		{Step: 20, Values: map[string]float64{"rewards/chosen": -0.25, "grad_norm": math.Inf(1)}},
		{Step: 20, Values: map[string]float64{"eval_loss": math.NaN()}},
		{Step: 30, Values: map[string]float64{}},
	}
	for _, e := range logged {
		if err := l.Log(e.Step, e.Values); err != nil {
			t.Fatal(err)
		}
	}
	// Written through before Close: a killed run keeps its log.
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"step":10,"epoch":0.5,"learning_rate":5e-05,"loss":1.23}
{"step":20,"grad_norm":"Inf","rewards/chosen":-0.25}
{"step":20,"eval_loss":"NaN"}
{"step":30}
`
	if got := string(data); got != want {
		t.Errorf("metrics.jsonl:\ngot  %s\nwant %s", got, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Log(40, nil); err == nil {
		t.Error("Log after Close: got nil error")
	}

	read, err := ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]Entry{"ReadFile": read, "History": l.History()} {
		if len(got) != len(logged) {
			t.Fatalf("%s: got %d entries, want %d", name, len(got), len(logged))
		}
		for i := range got {
			if !sameEntry(got[i], logged[i]) {
				t.Errorf("%s[%d]: got %v, want %v", name, i, got[i], logged[i])
			}
		}
	}
}

// sameEntry compares entries treating NaN as equal to NaN.
func sameEntry(a, b Entry) bool {
	if a.Step != b.Step || len(a.Values) != len(b.Values) {
		return false
	}
	for k, v := range a.Values {
		w, ok := b.Values[k]
		if !ok || !(v == w || math.IsNaN(v) && math.IsNaN(w)) {
			return false
		}
	}
	return true
}

func TestLogIgnoresStepKeyAndCopiesValues(t *testing.T) {
	l, err := NewLogger(t.TempDir(), zerolog.Nop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	v := map[string]float64{"step": 99, "loss": 1}
	if err := l.Log(5, v); err != nil {
		t.Fatal(err)
	}
	v["loss"] = 2
	got := l.History()
	want := []Entry{{Step: 5, Values: map[string]float64{"loss": 1}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestResume(t *testing.T) {
	tests := []struct {
		name       string
		existing   string // file content before the resumed run; "-" for no file
		resumeStep int
		wantBefore []int // steps kept from the old run
	}{
		{"truncates later steps", "{\"step\":10,\"loss\":3}\n{\"step\":20,\"loss\":2}\n{\"step\":20,\"eval_loss\":2.5}\n{\"step\":30,\"loss\":1}\n{\"step\":40,\"loss\":0.5}\n", 20, []int{10, 20, 20}},
		{"keeps all", "{\"step\":10,\"loss\":3}\n{\"step\":20,\"loss\":2}\n", 20, []int{10, 20}},
		{"no file", "-", 20, nil},
		{"partly written last line", "{\"step\":10,\"loss\":3}\n{\"step\":20,\"lo", 20, []int{10}},
		{"resume from zero", "{\"step\":10,\"loss\":3}\n", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.existing != "-" {
				writeLines(t, filepath.Join(dir, FileName), tt.existing)
			}
			l, err := NewLogger(dir, zerolog.Nop(), Options{TotalSteps: 50, Resume: true, ResumeStep: tt.resumeStep})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Log(tt.resumeStep+10, map[string]float64{"loss": 0.1}); err != nil {
				t.Fatal(err)
			}
			l.Close()
			want := append(append([]int{}, tt.wantBefore...), tt.resumeStep+10)
			for name, entries := range map[string][]Entry{"History": l.History(), "file": mustRead(t, l.Path())} {
				var got []int
				for _, e := range entries {
					got = append(got, e.Step)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s steps: got %v, want %v", name, got, want)
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) []Entry {
	t.Helper()
	es, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestFreshRunTruncatesOldLog(t *testing.T) {
	dir := t.TempDir()
	writeLines(t, filepath.Join(dir, FileName), "{\"step\":10,\"loss\":3}\n")
	l, err := NewLogger(dir, zerolog.Nop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := mustRead(t, l.Path()); len(got) != 0 {
		t.Errorf("got %v, want an empty log", got)
	}
}

func TestResumeBadFileNamesLine(t *testing.T) {
	dir := t.TempDir()
	writeLines(t, filepath.Join(dir, FileName), "{\"step\":10}\nnot json\n{\"step\":30}\n")
	_, err := NewLogger(dir, zerolog.Nop(), Options{Resume: true, ResumeStep: 30})
	if err == nil || !strings.Contains(err.Error(), FileName+":2:") {
		t.Errorf("got %v, want an error naming %s:2", err, FileName)
	}
}

func TestReadFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // substring of the error
	}{
		{"bad json", "{\"step\":1}\n\n{\"step\":2,}\n", "metrics.jsonl:3: invalid character"},
		{"missing step", "{\"loss\":1}\n", `metrics.jsonl:1: missing "step"`},
		{"fractional step", "{\"step\":1.5}\n", `metrics.jsonl:1: "step" is 1.5, want an integer`},
		{"string value", "{\"step\":1}\n{\"step\":2,\"loss\":\"high\"}\n", `metrics.jsonl:2: key "loss": "high" is not a number`},
		{"not an object", "[1,2]\n", "metrics.jsonl:1:"},
		{"partial last line", "{\"step\":1}\n{\"step\":2,\"lo", "metrics.jsonl:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			writeLines(t, path, tt.content)
			_, err := ReadFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), path+":") {
				t.Errorf("got %v, want it to start with %s:", err, path)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.jsonl")); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("missing file: got %v, want an error naming it", err)
	}
}

func TestReadFileAccepts(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	writeLines(t, path, "{\"step\":1.0,\"a\":null,\"b\":\"-Inf\",\"c\":1e3}\n\n  \n{\"step\":2}")
	got := mustRead(t, path)
	want := []Entry{
		{Step: 1, Values: map[string]float64{"a": math.NaN(), "b": math.Inf(-1), "c": 1000}},
		{Step: 2, Values: map[string]float64{}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if !sameEntry(got[i], want[i]) {
			t.Errorf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestConsoleLine(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		steps []int
		after time.Duration // clock advance before each Log
		vals  []map[string]float64
		want  []string
	}{
		{
			name: "train step", opts: Options{TotalSteps: 500}, steps: []int{100, 120}, after: 26 * time.Second,
			vals: []map[string]float64{
				{"loss": 2.5, "learning_rate": 5e-5, "num_tokens": 100000},
				{"loss": 2.3141, "learning_rate": 4.8e-5, "grad_norm": 0.91, "num_tokens": 181120, "epoch": 0.24},
			},
			want: []string{
				"step 100/500 (20%) loss 2.5 lr 5e-05 elapsed 26s eta 1m44s",
				"step 120/500 (24%) epoch 0.24 loss 2.314 lr 4.8e-05 grad_norm 0.91 tok/s 3,120 elapsed 52s eta 2m45s",
			},
		},
		{
			name: "resumed", opts: Options{TotalSteps: 1000, Resume: true, ResumeStep: 400}, steps: []int{500}, after: 10 * time.Minute,
			vals: []map[string]float64{{"loss": 1, "tokens_per_second": 12.34, "rewards/chosen": -0.5}},
			want: []string{"step 500/1000 (50%) loss 1 rewards/chosen -0.5 tok/s 12.3 elapsed 10m00s eta 50m00s"},
		},
		{
			name: "unknown total", steps: []int{7}, after: 2 * time.Hour,
			vals: []map[string]float64{{"eval_loss": math.NaN(), "big": 1234567}},
			want: []string{"step 7 big 1.23e+06 eval_loss nan elapsed 2h00m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			clock := newClock()
			l, err := NewLogger(t.TempDir(), zerolog.New(&buf), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			l.now, l.start = clock.now, clock.now()
			for i, step := range tt.steps {
				clock.advance(tt.after)
				if err := l.Log(step, tt.vals[i]); err != nil {
					t.Fatal(err)
				}
			}
			if got := messages(t, &buf); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{400 * time.Millisecond, "0s"},
		{45 * time.Second, "45s"},
		{59*time.Second + 600*time.Millisecond, "1m00s"},
		{130 * time.Second, "2m10s"},
		{time.Hour - time.Second, "59m59s"},
		{time.Hour + 5*time.Minute + 20*time.Second, "1h05m"},
		{23*time.Hour + 59*time.Minute + 50*time.Second, "1d00h"},
		{76 * time.Hour, "3d04h"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v): got %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestETA(t *testing.T) {
	tests := []struct {
		done, total int
		elapsed     time.Duration
		want        time.Duration
		wantOK      bool
	}{
		{0, 100, time.Minute, 0, false},
		{10, 0, time.Minute, 0, false},
		{10, 100, 0, 0, false},
		{10, 100, time.Minute, 9 * time.Minute, true},
		{25, 100, 50 * time.Second, 150 * time.Second, true},
		{100, 100, time.Minute, 0, true},
		{120, 100, time.Minute, 0, true},
	}
	for _, tt := range tests {
		got, ok := ETA(tt.done, tt.total, tt.elapsed)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ETA(%d, %d, %v): got %v, %v, want %v, %v", tt.done, tt.total, tt.elapsed, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"}, {3, "3"}, {-2, "-2"}, {2.31415, "2.314"}, {0.91, "0.91"}, {4.8e-5, "4.8e-05"},
		{1.25e-5, "1.25e-05"}, {1234.5, "1234"}, {0.001234, "0.001234"}, {2.5e7, "2.5e+07"},
		{math.NaN(), "nan"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v); got != tt.want {
			t.Errorf("formatValue(%v): got %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestFormatThousands(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {3120, "3,120"}, {1234567, "1,234,567"}, {-45000, "-45,000"}}
	for _, tt := range tests {
		if got := formatThousands(tt.n); got != tt.want {
			t.Errorf("formatThousands(%d): got %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestAccumulator(t *testing.T) {
	type add struct {
		name      string
		v, weight float64
	}
	tests := []struct {
		name string
		adds []add // weight 0 means Add rather than AddWeighted
		want map[string]float64
	}{
		{"empty", nil, map[string]float64{}},
		{"plain mean", []add{{"loss", 1, 0}, {"loss", 2, 0}, {"loss", 6, 0}}, map[string]float64{"loss": 3}},
		{"weighted", []add{{"loss", 1, 3}, {"loss", 5, 1}, {"acc", 0.5, 0}}, map[string]float64{"loss": 2, "acc": 0.5}},
		{"non-positive weights ignored", []add{{"loss", 1, 1}, {"loss", 100, -1}, {"kl", 7, math.NaN()}}, map[string]float64{"loss": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Accumulator
			for _, x := range tt.adds {
				if x.weight == 0 {
					a.Add(x.name, x.v)
				} else {
					a.AddWeighted(x.name, x.v, x.weight)
				}
			}
			if got := a.Means(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Means: got %v, want %v", got, tt.want)
			}
			a.Reset()
			if got := a.Means(); len(got) != 0 {
				t.Errorf("Means after Reset: got %v, want empty", got)
			}
			a.Add("x", 4)
			if got := a.Means(); !reflect.DeepEqual(got, map[string]float64{"x": 4}) {
				t.Errorf("Means after Reset and Add: got %v", got)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	clock := newClock()
	p := NewProgress(zerolog.New(&buf), "tokenising train", 50000)
	p.now, p.start, p.lastPrint = clock.now, clock.now(), clock.now()
	steps := []struct {
		advance time.Duration
		n       int
	}{
		{time.Second, 5000},             // too soon: no line
		{1500 * time.Millisecond, 5000}, // 2.5s: line
		{time.Second, 2500},             // 3.5s: too soon after the last line
		{1500 * time.Millisecond, 2500}, // 5s: line
	}
	for _, s := range steps {
		clock.advance(s.advance)
		p.Add(s.n)
	}
	clock.advance(5 * time.Second)
	p.Add(35000)
	p.Done()
	p.Done()
	p.Add(1)
	want := []string{
		"tokenising train 10,000/50,000 (20%) 4,000/s eta 10s",
		"tokenising train 15,000/50,000 (30%) 3,000/s eta 12s",
		"tokenising train 50,000/50,000 (100%) 5,000/s eta 0s",
		"tokenising train done: 50,000 in 10s (5,000/s)",
	}
	if got := messages(t, &buf); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestProgressUnknownTotal(t *testing.T) {
	var buf bytes.Buffer
	clock := newClock()
	p := NewProgress(zerolog.New(&buf), "generating", 0)
	p.now, p.start, p.lastPrint = clock.now, clock.now(), clock.now()
	clock.advance(4 * time.Second)
	p.Add(10)
	want := []string{"generating 10 2.5/s"}
	if got := messages(t, &buf); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func sampleRun(steps int, scale float64) []Entry {
	var es []Entry
	for s := 1; s <= steps; s++ {
		f := float64(s) / float64(steps)
		wiggle := 0.2 * math.Sin(float64(s)*1.7)
		es = append(es, Entry{Step: s, Values: map[string]float64{
			"loss": scale*(2*math.Exp(-3*f)+0.5) + wiggle, "learning_rate": 5e-5 * (1 - f),
			"rewards/chosen": f + wiggle, "epoch": f, "grad_norm": math.NaN(),
		}})
		if s%25 == 0 {
			es = append(es, Entry{Step: s, Values: map[string]float64{"eval_loss": scale * (2*math.Exp(-3*f) + 0.7)}})
		}
	}
	return es
}

func checkPNG(t *testing.T, path string, wantW, wantH int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("%s: got %dx%d, want %dx%d", path, b.Dx(), b.Dy(), wantW, wantH)
	}
}

func TestPlotAll(t *testing.T) {
	tests := []struct {
		name      string
		entries   []Entry
		wantFiles []string
		overview  [2]int // pixel size of overview.png
	}{
		{"dense and sparse", sampleRun(200, 1), []string{"eval_loss.png", "learning_rate.png", "loss.png", "rewards_chosen.png", "overview.png"}, [2]int{2 * 825, 2 * 510}},
		{"single point", []Entry{{Step: 3, Values: map[string]float64{"loss": 1}}}, []string{"loss.png", "overview.png"}, [2]int{825, 510}},
		{"no entries", nil, nil, [2]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths, err := PlotAll(tt.entries, dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range paths {
				got = append(got, filepath.Base(p))
				if filepath.Dir(p) != filepath.Join(dir, "plots") {
					t.Errorf("%s: want it under %s/plots", p, dir)
				}
				if filepath.Base(p) == "overview.png" {
					checkPNG(t, p, tt.overview[0], tt.overview[1])
				} else {
					checkPNG(t, p, 1200, 675)
				}
			}
			if !reflect.DeepEqual(got, tt.wantFiles) {
				t.Errorf("files: got %v, want %v", got, tt.wantFiles)
			}
		})
	}
}

func TestPlotFileName(t *testing.T) {
	tests := []struct{ metric, want string }{
		{"loss", "loss.png"}, {"rewards/chosen", "rewards_chosen.png"}, {"eval_rewards/margins", "eval_rewards_margins.png"},
		{"kl div", "kl_div.png"}, {"../x", ".._x.png"},
	}
	for _, tt := range tests {
		if got := PlotFileName(tt.metric); got != tt.want {
			t.Errorf("PlotFileName(%q): got %q, want %q", tt.metric, got, tt.want)
		}
	}
}

func TestPlotCompare(t *testing.T) {
	runs := map[string][]Entry{"beta0.1": sampleRun(300, 1), "beta0.5": sampleRun(200, 0.7), "other": {{Step: 1, Values: map[string]float64{"x": 1}}}}
	dir := t.TempDir()
	tests := []struct {
		metric  string
		path    string
		wantErr string
	}{
		{"loss", filepath.Join(dir, "cmp", "loss.png"), ""},
		{"eval_loss", filepath.Join(dir, "eval_loss.png"), ""},
		{"missing", filepath.Join(dir, "missing.png"), `no run has metric "missing"`},
	}
	for _, tt := range tests {
		t.Run(tt.metric, func(t *testing.T) {
			err := PlotCompare(runs, tt.metric, tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkPNG(t, tt.path, 1200, 675)
		})
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []string
	}{
		{1, 2000, []string{"500", "1000", "1500", "2000"}},
		{0, 5e-5, []string{"0", "1e-05", "2e-05", "3e-05", "4e-05", "5e-05"}},
		{-0.13, 0.71, []string{"0", "0.2", "0.4", "0.6"}},
		{0.6, 2.45, []string{"0.75", "1", "1.25", "1.5", "1.75", "2", "2.25"}},
		{-0.3, 0.71, []string{"-0.2", "0", "0.2", "0.4", "0.6"}},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (niceTicks{}).Ticks(tt.lo, tt.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Ticks(%v, %v): got %v, want %v", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	l, err := NewLogger(t.TempDir(), zerolog.Nop(), Options{TotalSteps: 400})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var a Accumulator
	p := NewProgress(zerolog.Nop(), "x", 400)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				a.Add("v", float64(g))
				p.Add(1)
				if err := l.Log(g*100+i, map[string]float64{"loss": 1}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	p.Done()
	if got, want := a.Means()["v"], 1.5; got != want {
		t.Errorf("mean: got %v, want %v", got, want)
	}
	if got := len(mustRead(t, l.Path())); got != 400 {
		t.Errorf("entries: got %d, want 400", got)
	}
}
