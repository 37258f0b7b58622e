package metrics

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ProgressInterval is the minimum time between two Progress lines.
const ProgressInterval = 2 * time.Second

// Progress reports the progress of non-step work, such as tokenising a
// dataset or generating completions, printing at most every
// ProgressInterval: "tokenising train 12,345/50,000 (24%) 1,234/s eta 30s".
// Its methods are safe for concurrent use.
type Progress struct {
	mu        sync.Mutex
	log       zerolog.Logger
	what      string
	total     int
	done      int
	start     time.Time
	lastPrint time.Time
	finished  bool
	now       func() time.Time
}

// NewProgress starts reporting on total units of what; total <= 0 means
// unknown, shown without percentage or ETA.
func NewProgress(log zerolog.Logger, what string, total int) *Progress {
	p := &Progress{log: log, what: what, total: total, now: time.Now}
	p.start = p.now()
	p.lastPrint = p.start
	return p
}

// Add records n more units done and prints a line if ProgressInterval has passed since the last one.
func (p *Progress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	now := p.now()
	if p.finished || now.Sub(p.lastPrint) < ProgressInterval {
		return
	}
	p.lastPrint = now
	p.log.Info().Msg(p.line(now))
}

// Done prints a final line with the count, time taken and rate; later calls do nothing.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	elapsed := p.now().Sub(p.start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s done: %s in %s", p.what, formatThousands(int64(p.done)), FormatDuration(elapsed))
	if s := elapsed.Seconds(); s > 0 {
		fmt.Fprintf(&b, " (%s/s)", formatRate(float64(p.done)/s))
	}
	p.log.Info().Msg(b.String())
}

func (p *Progress) line(now time.Time) string {
	var b strings.Builder
	elapsed := now.Sub(p.start)
	if p.total > 0 {
		fmt.Fprintf(&b, "%s %s/%s (%d%%)", p.what, formatThousands(int64(p.done)),
			formatThousands(int64(p.total)), int(int64(p.done)*100/int64(p.total)))
	} else {
		fmt.Fprintf(&b, "%s %s", p.what, formatThousands(int64(p.done)))
	}
	if s := elapsed.Seconds(); s > 0 {
		fmt.Fprintf(&b, " %s/s", formatRate(float64(p.done)/s))
	}
	if eta, ok := ETA(p.done, p.total, elapsed); ok {
		fmt.Fprintf(&b, " eta %s", FormatDuration(eta))
	}
	return b.String()
}
