package metrics

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatDuration renders d compactly for progress lines: "45s", "2m10s",
// "1h05m", "3d04h"; negative durations render as "0s".
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		m := (s + 30) / 60 // round to the minute
		if m == 24*60 {
			return "1d00h"
		}
		return fmt.Sprintf("%dh%02dm", m/60, m%60)
	default:
		h := (s + 1800) / 3600 // round to the hour
		return fmt.Sprintf("%dd%02dh", h/24, h%24)
	}
}

// formatThousands renders n with comma thousands separators: 3120 -> "3,120".
func formatThousands(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	head := len(s) % 3
	if head == 0 {
		head = 3
	}
	b.WriteString(s[:head])
	for i := head; i < len(s); i += 3 {
		b.WriteByte(',')
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// formatValue renders a metric value in at most four significant digits,
// switching to exponent form for very small or large magnitudes.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e6:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	a := math.Abs(v)
	switch {
	case a >= 1000 && a < 1e6:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1e-3 && a < 1000:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// formatRate renders a per-second rate: thousands separators from 100 up,
// three significant digits below.
func formatRate(r float64) string {
	if r >= 100 || r <= -100 {
		return formatThousands(int64(math.Round(r)))
	}
	return strconv.FormatFloat(r, 'g', 3, 64)
}
