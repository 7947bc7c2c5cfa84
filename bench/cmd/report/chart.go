package main

import (
	"fmt"
	"html"
	"math"
	"strings"

	"github.com/peerkit/peerkit/bench"
)

var barColors = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"}

// chart draws the throughput ratio cluster/raw per transport and payload
// size as grouped bars, with each bar's target as a dark tick.
func chart(r *results) string {
	var transports []string
	var sizes []int
	val := map[string]map[int]float64{}
	for _, t := range r.tputs {
		if !bench.IsTransport(t.transport) {
			continue
		}
		if val[t.transport] == nil {
			val[t.transport] = map[int]float64{}
			transports = append(transports, t.transport)
		}
		val[t.transport][t.size] = ratio(t)
		if !containsInt(sizes, t.size) {
			sizes = append(sizes, t.size)
		}
	}
	const (
		left, right, top, bottom = 56.0, 16.0, 48.0, 64.0
		barW, gap                = 22.0, 26.0
		plotH                    = 260.0
	)
	groupW := float64(len(sizes))*barW + gap
	width := left + right + math.Max(float64(len(transports))*groupW, 200)
	height := top + plotH + bottom
	ymax := 1.2
	for _, m := range val {
		for _, v := range m {
			ymax = math.Max(ymax, math.Ceil(v*5)/5)
		}
	}
	y := func(v float64) float64 { return top + plotH - v/ymax*plotH }

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	w(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	w(`<text x="%.0f" y="20" font-size="14" font-weight="bold">peerkit throughput / raw transport (higher is better; dark ticks: targets)</text>`+"\n", left)
	for v := 0.0; v <= ymax+1e-9; v += 0.2 {
		w(`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, width-right, y(v), y(v))
		w(`<text x="%.0f" y="%.1f" text-anchor="end" dominant-baseline="middle">%.1f</text>`+"\n", left-6, y(v), v)
	}
	w(`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>`+"\n", left, width-right, y(1), y(1))
	for i, t := range transports {
		x0 := left + gap/2 + float64(i)*groupW
		for j, s := range sizes {
			v, ok := val[t][s]
			if !ok {
				continue
			}
			x := x0 + float64(j)*barW
			h := math.Max(v/ymax*plotH, 0)
			w(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.2f</title></rect>`+"\n",
				x, top+plotH-h, barW-2, h, barColors[j%len(barColors)], html.EscapeString(t), bench.SizeName(s), v)
			w(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%.2f</text>`+"\n", x+(barW-2)/2, top+plotH-h-3, v)
			if g := target(t, s); g > 0 {
				w(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222" stroke-width="2"/>`+"\n", x-1, x+barW-1, y(g), y(g))
			}
		}
		w(`<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x0+float64(len(sizes))*barW/2, top+plotH+16, html.EscapeString(t))
	}
	w(`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, width-right, y(0), y(0))
	lx := left
	for j, s := range sizes {
		w(`<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/>`+"\n", lx, height-22, barColors[j%len(barColors)])
		w(`<text x="%.0f" y="%.0f">%s</text>`+"\n", lx+16, height-12, bench.SizeName(s))
		lx += 80
	}
	w(`<text x="14" y="%.0f" transform="rotate(-90 14 %.0f)" text-anchor="middle">cluster / raw</text>`+"\n", top+plotH/2, top+plotH/2)
	w("</svg>\n")
	return b.String()
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
