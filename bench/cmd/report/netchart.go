package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/peerkit/peerkit/bench"
	"github.com/peerkit/peerkit/bench/netcond"
)

// netChart draws two panels of grouped bars, one group per condition and
// one bar per transport: the largest payload's throughput out, and the
// round-trip p99 beside the bulk transfer (another remote), on log scales.
func netChart(nr *netResults) string {
	var conds, transports []string
	for _, r := range nr.results {
		if !slices.Contains(conds, r.Condition) {
			conds = append(conds, r.Condition)
		}
		if !slices.Contains(transports, r.Transport) {
			transports = append(transports, r.Transport)
		}
	}
	size := slices.Max(nr.plan.Sizes)
	get := func(c, t string) (netcond.Result, bool) {
		i := slices.IndexFunc(nr.results, func(r netcond.Result) bool { return r.Condition == c && r.Transport == t })
		if i < 0 {
			return netcond.Result{}, false
		}
		return nr.results[i], true
	}
	tput := func(c, t string) float64 {
		r, ok := get(c, t)
		i := slices.IndexFunc(r.Tput, func(x netcond.Throughput) bool { return x.Size == size })
		if !ok || i < 0 || r.Tput[i].OutErr != "" {
			return math.NaN()
		}
		return r.Tput[i].Out.MBPerSec()
	}
	p99 := func(c, t string) float64 {
		r, ok := get(c, t)
		if !ok || r.HOLErr != "" || r.HOLOther99 == 0 {
			return math.NaN()
		}
		return float64(r.HOLOther99) / float64(time.Millisecond)
	}
	const left, right, top, panelH, gapH, barW, gap = 64.0, 16.0, 40.0, 220.0, 90.0, 14.0, 24.0
	groupW := float64(len(transports))*barW + gap
	width := left + right + math.Max(float64(len(conds))*groupW, 320)
	height := top + 2*panelH + 2*gapH
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	panel := func(y0 float64, title string, val func(c, t string) float64, lo float64, unit string) {
		w(`<text x="%.0f" y="%.0f" font-size="13" font-weight="bold">%s</text>`+"\n", left, y0-16, html.EscapeString(title))
		vmax := 0.0
		for _, c := range conds {
			for _, t := range transports {
				if v := val(c, t); !math.IsNaN(v) {
					vmax = math.Max(vmax, v)
				}
			}
		}
		// A log scale from lo up to the decade above the largest value.
		hi := math.Pow(10, math.Ceil(math.Log10(math.Max(vmax, 10*lo))))
		y := func(v float64) float64 {
			v = math.Max(v, lo)
			return y0 + panelH - math.Log10(v/lo)/math.Log10(hi/lo)*panelH
		}
		var ticks []float64
		for t := lo; t <= hi*1.001; t *= 10 {
			ticks = append(ticks, t)
		}
		for _, t := range ticks {
			w(`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, width-right, y(t), y(t))
			w(`<text x="%.0f" y="%.1f" text-anchor="end" dominant-baseline="middle">%g</text>`+"\n", left-6, y(t), t)
		}
		w(`<text x="14" y="%.0f" transform="rotate(-90 14 %.0f)" text-anchor="middle">%s</text>`+"\n", y0+panelH/2, y0+panelH/2, unit)
		for i, c := range conds {
			x0 := left + gap/2 + float64(i)*groupW
			for j, t := range transports {
				v := val(c, t)
				x := x0 + float64(j)*barW
				if math.IsNaN(v) {
					w(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">×</text>`+"\n", x+barW/2, y0+panelH-3)
					continue
				}
				top := y(v)
				w(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.3g %s</title></rect>`+"\n",
					x, top, barW-2, y0+panelH-top, barColors[j%len(barColors)], html.EscapeString(c), html.EscapeString(t), v, unit)
			}
			w(`<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x0+float64(len(transports))*barW/2, y0+panelH+16, html.EscapeString(c))
		}
		w(`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, width-right, y0+panelH, y0+panelH)
	}
	panel(top, fmt.Sprintf("%s throughput out, MB/s (log; higher is better)", bench.SizeName(size)), tput, 0.1, "MB/s")
	panel(top+panelH+gapH, fmt.Sprintf("%s round-trip p99 beside a %s bulk (log; lower is better)", bench.SizeName(nr.plan.Small), bench.SizeName(nr.plan.Bulk)), p99, 0.01, "ms")
	lx := left
	for j, t := range transports {
		w(`<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/>`+"\n", lx, height-24, barColors[j%len(barColors)])
		w(`<text x="%.0f" y="%.0f">%s</text>`+"\n", lx+16, height-14, html.EscapeString(t))
		lx += 84
	}
	w("</svg>\n")
	return b.String()
}
