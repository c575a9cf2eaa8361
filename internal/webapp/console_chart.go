package webapp

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tenantsync/tenantsync/internal/domain"
	"github.com/tenantsync/tenantsync/internal/postgres"
)

// syncChart is a server-rendered SVG bar chart of the latest finished sync
// runs, oldest on the left: duration on top, changes (upserts + deletes)
// below. It uses only SVG attributes and CSS classes; the CSP forbids
// inline styles and scripts.
type syncChart struct {
	Width, Height int
	Duration      []chartBar
	Changes       []chartBar
	// Axis labels: the largest value of each panel and the first and last
	// run's start.
	MaxDuration string
	MaxChanges  int
	From, To    string
	// Summary is the text alternative of the chart.
	Summary string
	// Geometry of the two panels, for axes and labels.
	Left, Right           float64
	DurTop, DurBase       float64
	ChangesTop, ChgBase   float64
	DurLabelY, ChgLabelY  float64
	AxisLabelY, MaxLabelX float64
}

// chartBar is one bar; Title is its tooltip and accessible name.
type chartBar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// chartRuns is how many runs the chart shows at most.
const chartRuns = 20

// newSyncChart builds the chart from runs (newest first, as SyncRunList
// returns them); it is nil without a finished run.
func newSyncChart(runs []domain.SyncRun) *syncChart {
	var done []domain.SyncRun
	for _, r := range runs {
		if r.FinishedAt != nil {
			done = append(done, r)
		}
	}
	if len(done) == 0 {
		return nil
	}
	if len(done) > chartRuns {
		done = done[:chartRuns]
	}
	slices.Reverse(done)

	ch := &syncChart{Width: 640, Height: 250, Left: 92, Right: 630,
		DurTop: 28, DurBase: 108, ChangesTop: 146, ChgBase: 216}
	ch.DurLabelY, ch.ChgLabelY, ch.AxisLabelY, ch.MaxLabelX = 18, 136, 238, ch.Left-6
	var maxDur time.Duration
	maxChg, failed := 0, 0
	for _, r := range done {
		maxDur = max(maxDur, r.Duration(time.Time{}))
		maxChg = max(maxChg, r.Upserts+r.Deletes)
		if r.Outcome == domain.SyncFailed {
			failed++
		}
	}
	ch.MaxDuration, ch.MaxChanges = formatDuration(maxDur), maxChg
	slot := (ch.Right - ch.Left) / float64(len(done))
	w := math.Min(slot*0.7, 40)
	for i, r := range done {
		d := r.Duration(time.Time{})
		x := round1(ch.Left + slot*float64(i) + (slot-w)/2)
		class := "bar"
		if r.Outcome == domain.SyncFailed {
			class = "bar fail"
		} else if r.Outcome == domain.SyncSnoozed {
			class = "bar paused"
		}
		title := fmt.Sprintf("%s sync at %s: %s, %d changes, %s", r.Kind, r.StartedAt.UTC().Format("2 Jan 15:04"),
			formatDuration(d), r.Upserts+r.Deletes, r.Outcome)
		dh := barHeight(float64(d), float64(maxDur), ch.DurBase-ch.DurTop)
		ch.Duration = append(ch.Duration, chartBar{X: x, Y: round1(ch.DurBase - dh), W: round1(w), H: dh, Class: class, Title: title})
		chh := barHeight(float64(r.Upserts+r.Deletes), float64(maxChg), ch.ChgBase-ch.ChangesTop)
		ch.Changes = append(ch.Changes, chartBar{X: x, Y: round1(ch.ChgBase - chh), W: round1(w), H: chh, Class: class + " changes", Title: title})
	}
	first, last := done[0], done[len(done)-1]
	ch.From, ch.To = first.StartedAt.UTC().Format("2 Jan 15:04"), last.StartedAt.UTC().Format("2 Jan 15:04")
	minDur, minChg := maxDur, maxChg
	for _, r := range done {
		minDur = min(minDur, r.Duration(time.Time{}))
		minChg = min(minChg, r.Upserts+r.Deletes)
	}
	span := func(lo, hi string) string {
		if lo == hi {
			return lo
		}
		return "between " + lo + " and " + hi
	}
	if len(done) == 1 {
		// "each" and "between" read wrong for one run.
		outcome := map[domain.SyncOutcome]string{domain.SyncSucceeded: "succeeded", domain.SyncFailed: "failed",
			domain.SyncSnoozed: "paused", domain.SyncAbandoned: "was abandoned"}[first.Outcome]
		if outcome == "" {
			outcome = "ended " + string(first.Outcome)
		}
		ch.Summary = fmt.Sprintf("The one finished sync run, at %s UTC, took %s, wrote %d changes and %s. The table of sync runs below lists every run.",
			ch.From, formatDuration(maxDur), maxChg, outcome)
		return ch
	}
	ch.Summary = fmt.Sprintf("The last %d finished sync runs, from %s to %s UTC: each took %s and wrote %s changes; %d failed. The table of sync runs below lists every run.",
		len(done), ch.From, ch.To, span(formatDuration(minDur), formatDuration(maxDur)), span(fmt.Sprint(minChg), fmt.Sprint(maxChg)), failed)
	return ch
}

// barHeight scales v against top into at most full, keeping a visible
// sliver for non-zero values.
func barHeight(v, top, full float64) float64 {
	if top <= 0 || v <= 0 {
		return 0
	}
	return round1(math.Max(full*v/top, 1.5))
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// formatDuration says a run's length the way people read it.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

// runsChart is a server-rendered SVG chart of the fleet's sync runs per
// hour over the last 24 hours, each bar stacked by outcome.
type runsChart struct {
	Width, Height int
	Bars          []runsBar
	Max           int
	// Labels under the axis: a few hours, as HH:00 UTC.
	Ticks []chartTick
	// Summary is the text alternative of the chart.
	Summary                     string
	Left, Right, Top, Base      float64
	MaxLabelY, TickY, MaxLabelX float64
}

// runsBar is one hour: its stacked segments and its tooltip.
type runsBar struct {
	Title    string
	Segments []chartBar
}

// chartTick is one label under the axis.
type chartTick struct {
	X     float64
	Label string
}

// runSegments are the outcomes stacked in each bar, bottom up, and their
// CSS classes (the legend in the template names the same colours).
var runSegments = []struct {
	class, word string
	n           func(postgres.RunHour) int
}{
	{"bar", "succeeded", func(h postgres.RunHour) int { return h.Succeeded }},
	{"bar paused", "paused", func(h postgres.RunHour) int { return h.Snoozed }},
	{"bar fail", "failed", func(h postgres.RunHour) int { return h.Failed }},
	{"bar abandoned", "abandoned", func(h postgres.RunHour) int { return h.Abandoned }},
	{"bar running", "running", func(h postgres.RunHour) int { return h.Running }},
}

// newRunsChart builds the chart from 24 hourly buckets, oldest first.
func newRunsChart(hours []postgres.RunHour) *runsChart {
	if len(hours) == 0 {
		return nil
	}
	ch := &runsChart{Width: 640, Height: 220, Left: 56, Right: 630, Top: 24, Base: 184}
	ch.MaxLabelY, ch.TickY, ch.MaxLabelX = 14, 204, ch.Left-6
	total, failed, busiest := 0, 0, hours[0]
	for _, h := range hours {
		ch.Max = max(ch.Max, h.Total())
		total += h.Total()
		failed += h.Failed
		if h.Total() > busiest.Total() {
			busiest = h
		}
	}
	slot := (ch.Right - ch.Left) / float64(len(hours))
	w := round1(slot * 0.75)
	for i, h := range hours {
		x := round1(ch.Left + slot*float64(i) + (slot-w)/2)
		bar := runsBar{Title: fmt.Sprintf("%s–%s UTC: %d runs", h.Hour.Format("15:04"), h.Hour.Add(time.Hour).Format("15:04"), h.Total())}
		y := ch.Base
		for _, seg := range runSegments {
			n := seg.n(h)
			if n == 0 {
				continue
			}
			bar.Title += fmt.Sprintf(", %d %s", n, seg.word)
			hgt := barHeight(float64(n), float64(ch.Max), ch.Base-ch.Top)
			y = round1(y - hgt)
			bar.Segments = append(bar.Segments, chartBar{X: x, Y: y, W: w, H: hgt, Class: seg.class})
		}
		ch.Bars = append(ch.Bars, bar)
		if i%6 == 0 || i == len(hours)-1 {
			ch.Ticks = append(ch.Ticks, chartTick{X: round1(ch.Left + slot*float64(i) + slot/2), Label: h.Hour.Format("15:04")})
		}
	}
	first := hours[0].Hour
	if total == 0 {
		ch.Summary = fmt.Sprintf("No sync run started between %s and now (UTC).", first.Format("2 Jan 15:04"))
		return ch
	}
	ch.Summary = fmt.Sprintf("%d sync runs started since %s UTC, %d of them failed; the busiest hour, from %s, had %d.",
		total, first.Format("2 Jan 15:04"), failed, busiest.Hour.Format("15:04"), busiest.Total())
	return ch
}
