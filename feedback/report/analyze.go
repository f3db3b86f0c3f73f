package report

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// ErrNoData is returned (wrapped, naming the month and zone) by Analyze for a
// month without any answer.
var ErrNoData = errors.New("report: no data")

// The thresholds of the findings (see the package doc).
const (
	concentratedShare     = 0.5   // one domain's share of a code
	concentratedMinEvents = 50    // ... and the code has this many events
	concentratedMinShare  = 0.005 // ... or this share of all failures
	corrMinAttempts       = 100   // a day counts for rate correlations with this many attempts
	corrMinDays           = 7     // days needed for a correlation finding
	corrMinEvents         = 20    // events of the code at the domain
	volumeCorrelatedR     = 0.7
	notCorrelatedR        = 0.3
	spikeMinCount         = 20
	spikeShare            = 0.5
	spikeRatio            = 10
	onsetMinCount         = 10
	onsetMinRate          = 0.01
	onsetRatio            = 5
	onsetConfirmDays      = 3
	onsetConfirmAttempts  = 20
	minPointsForR         = 3
)

// Options configure Analyze.
type Options struct {
	// Month is the month to report on, by day in Location. Required.
	Month Month
	// Location is the report's zone; nil means the Counts' zone. It must be
	// the zone the Counts were built with.
	Location *time.Location
	// Classifier gives each code's class and meaning; nil means
	// bounces.NewClassifier() with the built-in rules.
	Classifier *bounces.Classifier
	// Now is the time the report is made (the clock; tests fix it). The zero
	// value means time.Now(). A month still running at Now is reported up to
	// Now's day.
	Now time.Time
}

// month is the dense working set of one month.
type month struct {
	c     *Counts
	days  []int32 // civil days
	nDom  int
	codes []int     // code of each code index of c
	att   [][]int64 // [domain][day]
	del   [][]int64 // [domain][day]
	// cnt[domain][code index] is the code's daily count at the domain; nil
	// when the code never occurs there in the month.
	cnt     [][][]int64
	dayAtt  []int64
	codeDay [][]int64 // [code index][day]
}

// Analyze builds the report of opts.Month from c. It is a pure function of
// its inputs (and Options.Now).
func Analyze(c *Counts, opts Options) (*Report, error) {
	if opts.Month.Month < time.January || opts.Month.Month > time.December {
		return nil, fmt.Errorf("report: invalid month %v", opts.Month)
	}
	loc := c.loc
	if opts.Location != nil && opts.Location.String() != loc.String() {
		return nil, fmt.Errorf("report: counts are in zone %s, not %s", loc, opts.Location)
	}
	clf := opts.Classifier
	if clf == nil {
		var err error
		if clf, err = defaultClassifier(); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.In(loc)

	m, partial := c.month(opts.Month, now)
	r := &Report{
		Month:        opts.Month.String(),
		Timezone:     loc.String(),
		BucketOffset: "00:00",
		Generated:    now,
		Partial:      partial,
		Skipped:      append([]Skipped{}, c.skipped...),
		SkippedTotal: c.skippedTotal,
	}
	if m == nil || sum(m.dayAtt) == 0 {
		return nil, fmt.Errorf("%w for %s (days in %s)", ErrNoData, opts.Month, loc)
	}
	r.Totals = m.totals()
	if pm, _ := c.month(opts.Month.Prev(), now); pm != nil && sum(pm.dayAtt) > 0 {
		t := pm.totals()
		r.Totals.Previous = &PeriodTotals{
			Month: opts.Month.Prev().String(), Attempts: t.Attempts, Delivered: t.Delivered,
			Failed: t.Failed, FailureRate: t.FailureRate,
		}
	}
	r.BucketOffset, r.BucketNote = c.bucketOffset(opts.Month)

	classes := make([]bounces.Diagnosis, len(m.codes))
	for k, code := range m.codes {
		classes[k] = clf.Classify(bounces.Reply{Code: code}, "")
	}
	r.Codes = m.codeStats(classes)
	r.Domains = m.domainStats()
	r.Findings = m.findings(r.Codes, classes)
	r.Series = m.series()
	return r, nil
}

// defaultClassifier is bounces.NewClassifier(), built once (it takes
// milliseconds).
var defaultClassifier = sync.OnceValues(func() (*bounces.Classifier, error) { return bounces.NewClassifier() })

// month returns the dense working set of mo, up to now's day when now falls
// in it (partial); nil when no day of mo has a row.
func (c *Counts) month(mo Month, now time.Time) (*month, bool) {
	first := civilDay(mo.Year, mo.Month, 1)
	last := civilDay(mo.Year, mo.Month+1, 1) - 1
	partial := false
	if y, mm, d := now.Date(); civilDay(y, mm, d) < last && civilDay(y, mm, d) >= first {
		last = civilDay(y, mm, d)
		partial = true
	}
	m := &month{c: c, nDom: len(c.domains), codes: c.codes}
	any := false
	rows := make([]*dayRow, 0, last-first+1)
	for d := first; d <= last; d++ {
		m.days = append(m.days, d)
		row := c.days[d]
		rows = append(rows, row)
		any = any || row != nil
	}
	if !any {
		return nil, partial
	}
	nd, nk := len(m.days), len(m.codes)
	m.att = make([][]int64, m.nDom)
	m.del = make([][]int64, m.nDom)
	m.cnt = make([][][]int64, m.nDom)
	m.dayAtt = make([]int64, nd)
	m.codeDay = make([][]int64, nk)
	for k := range m.codeDay {
		m.codeDay[k] = make([]int64, nd)
	}
	for i, row := range rows {
		if row == nil {
			continue
		}
		for d, cell := range row.cells {
			for k, n := range cell {
				if n == 0 {
					continue
				}
				if m.att[d] == nil {
					m.att[d] = make([]int64, nd)
					m.del[d] = make([]int64, nd)
					m.cnt[d] = make([][]int64, nk)
				}
				if m.cnt[d][k] == nil {
					m.cnt[d][k] = make([]int64, nd)
				}
				m.cnt[d][k][i] += n
				m.att[d][i] += n
				if delivered(m.codes[k]) {
					m.del[d][i] += n
				}
				m.dayAtt[i] += n
				m.codeDay[k][i] += n
			}
		}
	}
	return m, partial
}

// delivered reports whether code counts as delivered: any 2xx answer.
func delivered(code int) bool { return code >= 200 && code < 300 }

func (m *month) totals() Totals {
	var t Totals
	for d := range m.att {
		t.Attempts += sum(m.att[d])
		t.Delivered += sum(m.del[d])
	}
	t.Failed = t.Attempts - t.Delivered
	t.FailureRate = round(ratio(t.Failed, t.Attempts))
	return t
}

// codeStats returns every code of the month by count, then code.
func (m *month) codeStats(diag []bounces.Diagnosis) []CodeStat {
	var total int64
	for d := range m.att {
		total += sum(m.att[d])
	}
	domAtt := m.domainAttempts()
	var out []CodeStat
	for k, code := range m.codes {
		n := sum(m.codeDay[k])
		if n == 0 {
			continue
		}
		cs := CodeStat{Code: code, Class: diag[k].Class, Meaning: diag[k].Explanation, Count: n, Share: round(ratio(n, total))}
		for d := 0; d < m.nDom; d++ {
			if m.cnt[d] == nil || m.cnt[d][k] == nil {
				continue
			}
			dn := sum(m.cnt[d][k])
			if dn == 0 {
				continue
			}
			cs.Domains = append(cs.Domains, CodeDomain{
				Domain: m.c.domains[d], Count: dn,
				ShareOfCode: round(ratio(dn, n)), Rate: round(ratio(dn, domAtt[d])),
			})
		}
		sort.Slice(cs.Domains, func(i, j int) bool {
			a, b := cs.Domains[i], cs.Domains[j]
			if a.Count != b.Count {
				return a.Count > b.Count
			}
			return a.Domain < b.Domain
		})
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Code < out[j].Code
	})
	return out
}

func (m *month) domainAttempts() []int64 {
	out := make([]int64, m.nDom)
	for d := range m.att {
		out[d] = sum(m.att[d])
	}
	return out
}

// domainOrder returns the indices of the domains with attempts in the month,
// by attempts descending, then name.
func (m *month) domainOrder() []int {
	att := m.domainAttempts()
	var idx []int
	for d, a := range att {
		if a > 0 {
			idx = append(idx, d)
		}
	}
	sort.Slice(idx, func(i, j int) bool {
		a, b := idx[i], idx[j]
		if att[a] != att[b] {
			return att[a] > att[b]
		}
		return m.c.domains[a] < m.c.domains[b]
	})
	return idx
}

// corr is the correlation of code k at domain d, unrounded.
type corr struct {
	rateR, countR   float64
	rateOK, countOK bool
	rateDays        int // days with ≥ corrMinAttempts attempts
	occurDays       int
	events          int64
}

func (m *month) correlate(d, k int) corr {
	var c corr
	s := m.cnt[d][k]
	att := m.att[d]
	var xs, ys, xc, yc []float64
	for i := range m.days {
		if s[i] > 0 {
			c.occurDays++
		}
		c.events += s[i]
		xc = append(xc, float64(att[i]))
		yc = append(yc, float64(s[i]))
		if att[i] >= corrMinAttempts {
			xs = append(xs, float64(att[i]))
			ys = append(ys, float64(s[i])/float64(att[i]))
		}
	}
	c.rateDays = len(xs)
	if len(xs) >= minPointsForR {
		c.rateR, c.rateOK = pearson(xs, ys)
	}
	if len(xc) >= minPointsForR {
		c.countR, c.countOK = pearson(xc, yc)
	}
	return c
}

func (m *month) domainStats() []DomainStat {
	var out []DomainStat
	for _, d := range m.domainOrder() {
		a, del := sum(m.att[d]), sum(m.del[d])
		ds := DomainStat{
			Domain: m.c.domains[d], Attempts: a, Delivered: del,
			FailureRate: round(ratio(a-del, a)), Correlation: map[string]Correlation{},
		}
		for k, code := range m.codes {
			if delivered(code) || m.cnt[d][k] == nil || sum(m.cnt[d][k]) == 0 {
				continue
			}
			c := m.correlate(d, k)
			var out Correlation
			out.Days = c.occurDays
			out.RateDays = c.rateDays
			if c.rateOK {
				v := round(c.rateR)
				out.RateR = &v
			}
			if c.countOK {
				v := round(c.countR)
				out.CountR = &v
			}
			ds.Correlation[strconv.Itoa(code)] = out
		}
		out = append(out, ds)
	}
	return out
}

func (m *month) series() *Series {
	nd := len(m.days)
	s := &Series{
		Attempts: make([]int64, nd), Failed: make([]int64, nd),
		Domain: map[string]*DomainSeries{}, Code: map[int][]int64{},
	}
	for _, day := range m.days {
		s.Days = append(s.Days, dayLabel(day))
	}
	for k, code := range m.codes {
		if sum(m.codeDay[k]) > 0 {
			s.Code[code] = m.codeDay[k]
		}
	}
	for _, d := range m.domainOrder() {
		ds := &DomainSeries{Attempts: m.att[d], Failed: make([]int64, nd), Code: map[int][]int64{}}
		for i := range m.days {
			ds.Failed[i] = m.att[d][i] - m.del[d][i]
			s.Attempts[i] += m.att[d][i]
			s.Failed[i] += ds.Failed[i]
		}
		for k, code := range m.codes {
			if m.cnt[d][k] != nil && sum(m.cnt[d][k]) > 0 {
				ds.Code[code] = m.cnt[d][k]
			}
		}
		s.Domain[m.c.domains[d]] = ds
	}
	return s
}

// bucketOffset returns Report.BucketOffset and its note for mo, from the
// buckets that start on mo's local days only: another month's buckets (a
// zone's other UTC offset in winter, another export) do not count.
func (c *Counts) bucketOffset(mo Month) (string, string) {
	first := civilDay(mo.Year, mo.Month, 1)
	last := civilDay(mo.Year, mo.Month+1, 1) - 1
	firstDay := map[int64]int32{} // offset -> the first day of mo with it
	for k := range c.offsets {
		if k.day < first || k.day > last {
			continue
		}
		if d, ok := firstDay[k.off]; !ok || k.day < d {
			firstDay[k.off] = k.day
		}
	}
	if len(firstDay) == 0 {
		return "00:00", ""
	}
	if len(firstDay) > 1 {
		return "mixed", fmt.Sprintf("Buckets of the bucketed sources start at %d different times of day in %s in %s; each bucket is counted on the day of its start.", len(firstDay), c.loc, mo)
	}
	var off int64
	var day int32
	for k, d := range firstDay {
		off, day = k, d
	}
	hhmm := fmt.Sprintf("%02d:%02d", off/3600, off%3600/60)
	y, m, d := civilDate(day)
	_, zoneOff := time.Date(y, m, d, 12, 0, 0, 0, c.loc).Zone()
	implied := (int64(zoneOff) + 86400 - off) % 86400
	if implied > 14*3600 {
		implied -= 86400
	}
	return hhmm, fmt.Sprintf("Bucket starts are %s in %s, i.e. the buckets are local days of %s; day labels are those of the bucket start (a day early for %s).",
		hhmm, c.loc, utcOffset(implied), utcOffset(implied))
}

// utcOffset formats seconds east of UTC as "UTC+2", "UTC-5" or "UTC+5:30".
func utcOffset(sec int64) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	if sec%3600 == 0 {
		return fmt.Sprintf("UTC%s%d", sign, sec/3600)
	}
	return fmt.Sprintf("UTC%s%d:%02d", sign, sec/3600, sec%3600/60)
}

func sum(s []int64) int64 {
	var n int64
	for _, v := range s {
		n += v
	}
	return n
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// round keeps 4 significant digits, so that the output does not depend on
// the last bits of floating-point arithmetic (fused multiply-add on some
// architectures).
func round(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 4, 64), 64)
	return v
}

// pearson returns Pearson's correlation coefficient of x and y, and false
// when either is constant (r undefined).
func pearson(x, y []float64) (float64, bool) {
	n := float64(len(x))
	if len(x) < 2 || len(x) != len(y) {
		return 0, false
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= n
	my /= n
	var sxx, syy, sxy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	if sxx == 0 || syy == 0 {
		return 0, false
	}
	r := sxy / math.Sqrt(sxx*syy)
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return 0, false
	}
	return math.Max(-1, math.Min(1, r)), true
}

// median returns the median of v (v is reordered); false when v is empty.
func median(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2], true
	}
	return (v[n/2-1] + v[n/2]) / 2, true
}
