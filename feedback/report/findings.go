package report

import (
	"fmt"
	"math"
	"sort"

	"github.com/bounceloop/bounceloop/bounces"
)

// findings applies the five rules to every failure code. codes is the
// month's code table (for the order of the findings: by the code's rank).
func (m *month) findings(codes []CodeStat, diag []bounces.Diagnosis) []Finding {
	var failures int64
	for k, code := range m.codes {
		if !delivered(code) {
			failures += sum(m.codeDay[k])
		}
	}
	rank := map[int]int{}
	for i, cs := range codes {
		rank[cs.Code] = i
	}
	var out []Finding
	for k, code := range m.codes {
		total := sum(m.codeDay[k])
		if delivered(code) || total == 0 {
			continue
		}
		class := diag[k].Class
		var fs []Finding
		onsetDay := map[int]string{}
		for d := 0; d < m.nDom; d++ {
			if m.cnt[d] == nil || m.cnt[d][k] == nil {
				continue
			}
			if f, ok := m.onset(d, k); ok {
				onsetDay[d] = f.Day
				fs = append(fs, f)
			}
		}
		for d := 0; d < m.nDom; d++ {
			if m.cnt[d] == nil || m.cnt[d][k] == nil {
				continue
			}
			if f, ok := m.concentrated(d, k, total, failures); ok {
				f.Day = ""
				if day, ok := onsetDay[d]; ok {
					f.Summary += fmt.Sprintf(" It started on %s (see the onset finding).", day)
					f.onsetDay = day
				}
				fs = append(fs, f)
			}
			fs = append(fs, m.correlations(d, k, class)...)
		}
		fs = append(fs, m.spikes(k, total)...)
		for i := range fs {
			fs[i].Code = code
			fs[i].Class = class
			fs[i].Action = action(&fs[i])
		}
		out = append(out, fs...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if rank[a.Code] != rank[b.Code] {
			return rank[a.Code] < rank[b.Code]
		}
		if kindOrder[a.Kind] != kindOrder[b.Kind] {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		if a.Domain != b.Domain {
			return a.Domain < b.Domain
		}
		return a.Day < b.Day
	})
	return out
}

// concentrated: one domain holds ≥ 50% of the code's month count, and the
// code has ≥ 50 events or ≥ 0.5% of all failures.
func (m *month) concentrated(d, k int, total, failures int64) (Finding, bool) {
	n := sum(m.cnt[d][k])
	share := ratio(n, total)
	if share < concentratedShare || !(total >= concentratedMinEvents || ratio(total, failures) >= concentratedMinShare) {
		return Finding{}, false
	}
	att := sum(m.att[d])
	dom := m.c.domains[d]
	// the domain's largest daily count of the code, on its first such day
	top, topDay := int64(0), 0
	for i, v := range m.cnt[d][k] {
		if v > top {
			top, topDay = v, i
		}
	}
	_, _, dayOfMonth := civilDate(m.days[topDay])
	return Finding{
		Kind: KindConcentrated, Domain: dom, Value: round(share),
		Evidence: Evidence{
			"count": float64(n), "code_total": float64(total), "share": round(share),
			"failures": float64(failures), "share_of_failures": round(ratio(total, failures)),
			"domain_attempts": float64(att), "rate": round(ratio(n, att)),
			"max_daily": float64(top), "max_daily_day": float64(dayOfMonth),
		},
		Summary: fmt.Sprintf("%s holds %s (%s) of the month's %s answers %d, which are %s of all %s failures; %s of its %s attempts got it. At most %s a day there (%s).",
			dom, num(n), pct(share), num(total), m.codes[k], pct(ratio(total, failures)), num(failures), pct(ratio(n, att)), num(att),
			num(top), dayLabel(m.days[topDay])),
	}, true
}

// correlations: volume_correlated (rate r ≥ 0.7 over ≥ 7 days with ≥ 100
// attempts, ≥ 20 events) and not_volume_correlated (|count r| < 0.3 over the
// month's days, the code on ≥ 7 days and ≥ 20 times).
func (m *month) correlations(d, k int, class bounces.Class) []Finding {
	c := m.correlate(d, k)
	if c.events < corrMinEvents {
		return nil
	}
	dom, code := m.c.domains[d], m.codes[k]
	var out []Finding
	if c.rateOK && c.rateDays >= corrMinDays && c.rateR >= volumeCorrelatedR {
		f := Finding{
			Kind: KindVolumeCorrelated, Domain: dom, Value: round(c.rateR),
			Evidence: Evidence{"r": round(c.rateR), "days": float64(c.rateDays), "events": float64(c.events)},
		}
		// the busiest day and the highest volume up to which the rate stayed low
		type pt struct {
			att int64
			n   int64
		}
		var pts []pt
		var sumN, sumA int64
		for i := range m.days {
			if a := m.att[d][i]; a >= corrMinAttempts {
				pts = append(pts, pt{a, m.cnt[d][k][i]})
				sumN += m.cnt[d][k][i]
				sumA += a
			}
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].att < pts[j].att })
		monthRate := ratio(sumN, sumA)
		low := monthRate / 2
		var safe pt
		var safeRate float64
		for _, p := range pts {
			r := ratio(p.n, p.att)
			if r > low {
				break
			}
			safe = p
			safeRate = math.Max(safeRate, r)
		}
		busiest := pts[len(pts)-1]
		f.Evidence["month_rate"] = round(monthRate)
		f.Evidence["max_daily_attempts"] = float64(busiest.att)
		f.Evidence["rate_at_max"] = round(ratio(busiest.n, busiest.att))
		f.Summary = fmt.Sprintf("The daily rate of %d at %s rises with its daily attempts: r = %.2f over %d days with ≥ %d attempts (%s events; %s on the busiest day of %s attempts, %s over the month).",
			code, dom, c.rateR, c.rateDays, corrMinAttempts, num(c.events), pct(ratio(busiest.n, busiest.att)), num(busiest.att), pct(monthRate))
		if safe.att > 0 && class.Group() == bounces.GroupThrottle {
			f.Evidence["safe_daily_attempts"] = float64(safe.att)
			f.Evidence["safe_rate"] = round(safeRate)
			perMin := safe.att / (24 * 60)
			if perMin < 1 {
				perMin = 1
			}
			f.Evidence["suggested_per_minute"] = float64(perMin)
			f.Evidence["suggested_per_hour"] = float64(safe.att / 24)
			f.Summary += fmt.Sprintf(" On every day with up to %s attempts the rate stayed at or below %s (half the month's rate or less).", num(safe.att), pct(safeRate))
		}
		out = append(out, f)
	}
	if c.countOK && c.occurDays >= corrMinDays && math.Abs(c.countR) < notCorrelatedR {
		f := Finding{
			Kind: KindNotVolumeCorrelated, Domain: dom, Value: round(c.countR),
			Evidence: Evidence{
				"r": round(c.countR), "days": float64(len(m.days)), "occurrence_days": float64(c.occurDays),
				"events": float64(c.events),
			},
		}
		var lo, hi int64 = math.MaxInt64, 0
		for i := range m.days {
			if n := m.cnt[d][k][i]; n > 0 {
				lo, hi = min(lo, n), max(hi, n)
			}
		}
		f.Evidence["min_daily"] = float64(lo)
		f.Evidence["max_daily"] = float64(hi)
		f.Summary = fmt.Sprintf("The daily count of %d at %s does not follow its daily attempts: r = %.2f over %d days (%s events on %d days, %d to %d a day on the days it occurred).",
			code, dom, c.countR, len(m.days), num(c.events), c.occurDays, lo, hi)
		out = append(out, f)
	}
	return out
}

// spikes: a day with ≥ 20 of the code over all domains that holds ≥ 50% of
// the month's count, or whose rate among the day's attempts is ≥ 10× the
// median daily rate of the days with ≥ 100 attempts.
func (m *month) spikes(k int, total int64) []Finding {
	var rates []float64
	for i := range m.days {
		if m.dayAtt[i] >= corrMinAttempts {
			rates = append(rates, ratio(m.codeDay[k][i], m.dayAtt[i]))
		}
	}
	med, haveMed := median(rates)
	var out []Finding
	for i, day := range m.days {
		n := m.codeDay[k][i]
		if n < spikeMinCount {
			continue
		}
		rate := ratio(n, m.dayAtt[i])
		share := ratio(n, total)
		byShare := share >= spikeShare
		byRate := haveMed && rate > 0 && rate >= spikeRatio*med
		if !byShare && !byRate {
			continue
		}
		domains := 0
		for d := 0; d < m.nDom; d++ {
			if m.cnt[d] != nil && m.cnt[d][k] != nil && m.cnt[d][k][i] > 0 {
				domains++
			}
		}
		f := Finding{
			Kind: KindSpike, Day: dayLabel(day), Value: float64(n),
			Evidence: Evidence{
				"count": float64(n), "code_total": float64(total), "share_of_code": round(share),
				"day_attempts": float64(m.dayAtt[i]), "rate": round(rate), "domains": float64(domains),
			},
		}
		f.Summary = fmt.Sprintf("%s answers %d on %s over %s: %s of the month's %s, %s of the day's %s attempts",
			num(n), m.codes[k], dayLabel(day), plural(domains, "domain"), pct(share), num(total), pct(rate), num(m.dayAtt[i]))
		if haveMed {
			f.Evidence["median_rate"] = round(med)
			if med > 0 {
				f.Evidence["ratio_to_median"] = round(rate / med)
				f.Summary += fmt.Sprintf(", %.0f× the median daily rate of %s", rate/med, pct(med))
			} else {
				f.Summary += ", against a median daily rate of 0"
			}
		}
		f.Summary += "."
		out = append(out, f)
	}
	return out
}

// onset: the first day on which the domain's count of the code is ≥ 10 and
// its rate there ≥ 1% and ≥ 5× the rate over the month's preceding days
// with ≥ 100 attempts, staying ≥ 5× on each of the next 3 days with ≥ 20
// attempts. With a zero baseline "5×" means a rate above zero.
func (m *month) onset(d, k int) (Finding, bool) {
	s, att := m.cnt[d][k], m.att[d]
	var baseN, baseA int64
	for i := range m.days {
		n, a := s[i], att[i]
		if i > 0 && baseA > 0 && n >= onsetMinCount && a > 0 {
			base := ratio(baseN, baseA)
			rate := ratio(n, a)
			if rate >= onsetMinRate && rate >= onsetRatio*base && m.onsetHolds(d, k, i, base) {
				return m.onsetFinding(d, k, i, base, baseA), true
			}
		}
		if a >= corrMinAttempts {
			baseN += n
			baseA += a
		}
	}
	return Finding{}, false
}

// onsetHolds reports whether the next onsetConfirmDays days after day i with
// ≥ onsetConfirmAttempts attempts all have a rate ≥ 5× base (and > 0).
func (m *month) onsetHolds(d, k, i int, base float64) bool {
	seen := 0
	for j := i + 1; j < len(m.days) && seen < onsetConfirmDays; j++ {
		a := m.att[d][j]
		if a < onsetConfirmAttempts {
			continue
		}
		r := ratio(m.cnt[d][k][j], a)
		if r <= 0 || r < onsetRatio*base {
			return false
		}
		seen++
	}
	return seen == onsetConfirmDays
}

func (m *month) onsetFinding(d, k, i int, base float64, baseA int64) Finding {
	s, att, del := m.cnt[d][k], m.att[d], m.del[d]
	rate := ratio(s[i], att[i])
	var delSince, nSince, attSince int64
	for j := i; j < len(m.days); j++ {
		delSince += del[j]
		nSince += s[j]
		attSince += att[j]
	}
	dom, day := m.c.domains[d], dayLabel(m.days[i])
	f := Finding{
		Kind: KindOnset, Domain: dom, Day: day, Value: round(rate),
		Evidence: Evidence{
			"count": float64(s[i]), "attempts": float64(att[i]), "rate": round(rate),
			"baseline_rate": round(base), "baseline_attempts": float64(baseA),
			"confirm_days":     onsetConfirmDays,
			"delivered_on_day": float64(del[i]), "delivered_since": float64(delSince),
			"count_since": float64(nSince), "rate_since": round(ratio(nSince, attSince)),
		},
	}
	f.Summary = fmt.Sprintf("%d at %s started on %s: %s of %s attempts (%s)", m.codes[k], dom, day, num(s[i]), num(att[i]), pct(rate))
	if base > 0 {
		f.Evidence["ratio_to_baseline"] = round(rate / base)
		f.Summary += fmt.Sprintf(", %.0f× the %s of the month's earlier days", rate/base, pct(base))
	} else {
		f.Summary += ", never seen on the month's earlier days"
	}
	f.Summary += fmt.Sprintf(", and stayed that high on the next %d days with ≥ %d attempts. Since then %s of %s attempts got it, while %s were delivered there.",
		onsetConfirmDays, onsetConfirmAttempts, num(nSince), num(attSince), num(delSince))
	return f
}

// plural returns "1 domain", "2 domains".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
