package netcond

import (
	"slices"
	"time"

	"github.com/peerkit/peerkit/bench"
)

// Median merges rounds of the same measurements (one Result per condition
// and transport in each) into one Result each, in the first round's order:
// every number is the median of the rounds that measured it without an
// error; an error stays only where every round had one.
func Median(rounds [][]Result) []Result {
	if len(rounds) == 0 {
		return nil
	}
	var out []Result
	for _, first := range rounds[0] {
		var same []Result
		for _, rs := range rounds {
			for _, r := range rs {
				if r.Condition == first.Condition && r.Transport == first.Transport {
					same = append(same, r)
				}
			}
		}
		out = append(out, median(same))
	}
	return out
}

func median(rs []Result) Result {
	m := Result{Condition: rs[0].Condition, Transport: rs[0].Transport}
	for i, t := range rs[0].Tput {
		mt := Throughput{Size: t.Size}
		var outs, ins []bench.Rate
		mt.OutErr, mt.InErr = t.OutErr, t.InErr
		for _, r := range rs {
			if i >= len(r.Tput) || r.Tput[i].Size != t.Size {
				continue
			}
			if x := r.Tput[i]; x.OutErr == "" {
				outs = append(outs, x.Out)
			}
			if x := r.Tput[i]; x.InErr == "" {
				ins = append(ins, x.In)
			}
		}
		if len(outs) > 0 {
			mt.Out, mt.OutErr = bench.MedianRate(outs), ""
		}
		if len(ins) > 0 {
			mt.In, mt.InErr = bench.MedianRate(ins), ""
		}
		m.Tput = append(m.Tput, mt)
	}
	pick := func(errOf func(Result) string, get ...func(*Result) *time.Duration) string {
		var ok []Result
		for _, r := range rs {
			if errOf(r) == "" {
				ok = append(ok, r)
			}
		}
		if len(ok) == 0 {
			return errOf(rs[0])
		}
		for _, g := range get {
			var ds []time.Duration
			for i := range ok {
				ds = append(ds, *g(&ok[i]))
			}
			slices.Sort(ds)
			*g(&m) = ds[len(ds)/2]
		}
		return ""
	}
	m.RTTErr = pick(func(r Result) string { return r.RTTErr },
		func(r *Result) *time.Duration { return &r.RTT50 }, func(r *Result) *time.Duration { return &r.RTT99 })
	m.HOLErr = pick(func(r Result) string { return r.HOLErr },
		func(r *Result) *time.Duration { return &r.HOLOther50 }, func(r *Result) *time.Duration { return &r.HOLOther99 },
		func(r *Result) *time.Duration { return &r.HOLSame50 }, func(r *Result) *time.Duration { return &r.HOLSame99 })
	var bulks []bench.Rate
	for _, r := range rs {
		if r.HOLErr == "" {
			bulks = append(bulks, r.HOLBulk)
		}
	}
	if len(bulks) > 0 {
		m.HOLBulk = bench.MedianRate(bulks)
	}
	m.RemovalErr = pick(func(r Result) string { return r.RemovalErr }, func(r *Result) *time.Duration { return &r.Removal })
	for _, r := range rs {
		if r.Silence != "" {
			m.Silence = r.Silence
			break
		}
	}
	return m
}
