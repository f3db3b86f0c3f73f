package report

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// MaxSkippedListed is how many skipped records a Counts keeps with their
// location; the rest are only counted (Counts.SkippedTotal).
const MaxSkippedListed = 1000

// Counts aggregates answers into counts per (day in the report's zone,
// recipient domain, reply code). Domains are interned and each day holds a
// dense [domain][code] array, so one Add costs a few nanoseconds and a month
// of any size takes a few kilobytes per day.
//
// Build it with NewCounts; the zero value is not usable. A Counts is not safe
// for concurrent use: give each reading goroutine its own and Merge them.
type Counts struct {
	loc *time.Location

	domainIdx map[string]uint32
	domains   []string

	codeIdx   [1000]uint16 // code -> index+1 for 0..999
	codeOther map[int]uint16
	codes     []int

	days map[int32]*dayRow

	// the local day of the last Add: [lastStart, lastEnd) in UNIX seconds
	lastStart, lastEnd int64
	lastRow            *dayRow
	lastDomain         string
	lastDomainID       uint32
	haveLastDomain     bool
	domainCache        [64]cachedDomain // by domainHash: the domains seen last

	// bucketed sources
	buckets int64
	// offsets counts the buckets that straddle a local midnight, per local
	// day of their start and offset from that day's midnight, so that a
	// month's report speaks only of its own buckets.
	offsets map[dayOffset]int64

	skipped      []Skipped
	skippedTotal int64
}

// dayOffset is a local day (civil day number) and an offset from its
// midnight in seconds: the key of Counts.offsets.
type dayOffset struct {
	day int32
	off int64
}

// dayRow is one local day: cells[domain][code].
type dayRow struct {
	day   int32 // civil day number (days since 1970-01-01)
	cells [][]int64
}

// NewCounts returns an empty Counts that assigns answers to days in loc
// (UTC when loc is nil).
func NewCounts(loc *time.Location) *Counts {
	if loc == nil {
		loc = time.UTC
	}
	return &Counts{
		loc:       loc,
		domainIdx: make(map[string]uint32),
		codeOther: make(map[int]uint16),
		days:      make(map[int32]*dayRow),
		offsets:   make(map[dayOffset]int64),
		lastStart: 1,
		lastEnd:   0,
	}
}

// Location returns the zone the days are counted in.
func (c *Counts) Location() *time.Location { return c.loc }

// Add counts n answers with reply code code for domain, at time t: a
// per-message event, counted on the day of t in the Counts' zone. domain
// should be normalised (bounces.NormalizeDomain); "" is counted as is.
// Counts keeps its own copy of domain, so domain may share memory with a
// buffer that is reused after the call.
func (c *Counts) Add(t time.Time, domain string, code int, n int64) {
	c.add(c.row(t.Unix(), t), domain, code, n)
}

// AddUnix is Add for a time given in UNIX seconds (t.Unix()), the cheaper
// form for a caller that has no time.Time at hand.
func (c *Counts) AddUnix(sec int64, domain string, code int, n int64) {
	row := c.lastRow
	if sec < c.lastStart || sec >= c.lastEnd {
		row = c.row(sec, time.Unix(sec, 0))
	}
	c.add(row, domain, code, n)
}

func (c *Counts) add(row *dayRow, domain string, code int, n int64) {
	d := c.domain(domain)
	k := c.code(code)
	if int(d) >= len(row.cells) {
		row.grow(int(d) + 1)
	}
	cell := row.cells[d]
	if int(k) >= len(cell) {
		cell = append(cell, make([]int64, int(k)+1-len(cell))...)
		row.cells[d] = cell
	}
	cell[k] += n
}

// AddBucket counts n answers of a bucket that starts at start and lasts
// width (24h for the daily export, 1h for hourly counters). The bucket is
// counted on the local day of its start. A bucket that spans a local
// midnight (start not at a local midnight and start+width past the next one)
// is recorded with its local day so that the report of a month can say
// which local days that month's buckets really are (Report.BucketOffset).
func (c *Counts) AddBucket(start time.Time, width time.Duration, domain string, code int, n int64) {
	c.Add(start, domain, code, n)
	c.buckets++
	sec := start.Unix()
	// c.lastStart/lastEnd now hold start's local day.
	if sec == c.lastStart || sec+int64(width/time.Second) <= c.lastEnd {
		return
	}
	c.offsets[dayOffset{c.lastRow.day, sec - c.lastStart}]++
}

// Skip records a record that a source could not read. A *bounces.RecordError
// gives the location and the reason; any other error is listed with the
// source as its location; a nil err is counted and not listed. Only the
// first MaxSkippedListed are listed; all are counted.
func (c *Counts) Skip(source string, err error) {
	c.skippedTotal++
	if len(c.skipped) >= MaxSkippedListed || err == nil {
		return
	}
	s := Skipped{Source: source, Location: source, Reason: err.Error()}
	var re *bounces.RecordError
	if errors.As(err, &re) {
		s.Location = re.Location()
		s.Reason = re.Reason
	}
	c.skipped = append(c.skipped, s)
}

// SkippedTotal returns how many records were skipped (listed or not).
func (c *Counts) SkippedTotal() int64 { return c.skippedTotal }

// Merge adds every count, bucket offset and skipped record of o to c. Both
// must count days in the same zone.
func (c *Counts) Merge(o *Counts) error {
	if o.loc.String() != c.loc.String() {
		return fmt.Errorf("report: merge counts of zone %s into %s", o.loc, c.loc)
	}
	for _, row := range o.sortedRows() {
		start := civilStart(row.day, c.loc)
		for d, cell := range row.cells {
			for k, n := range cell {
				if n != 0 {
					c.Add(start, o.domains[d], o.codes[k], n)
				}
			}
		}
	}
	c.buckets += o.buckets
	for k, n := range o.offsets {
		c.offsets[k] += n
	}
	for _, s := range o.skipped {
		if len(c.skipped) < MaxSkippedListed {
			c.skipped = append(c.skipped, s)
		}
	}
	c.skippedTotal += o.skippedTotal
	return nil
}

// row returns the row of the local day of t (sec = t.Unix()).
func (c *Counts) row(sec int64, t time.Time) *dayRow {
	if sec >= c.lastStart && sec < c.lastEnd {
		return c.lastRow
	}
	y, m, d := t.In(c.loc).Date()
	day := civilDay(y, m, d)
	start := time.Date(y, m, d, 0, 0, 0, 0, c.loc).Unix()
	end := time.Date(y, m, d+1, 0, 0, 0, 0, c.loc).Unix()
	row := c.days[day]
	if row == nil {
		row = &dayRow{day: day}
		c.days[day] = row
	}
	c.lastStart, c.lastEnd, c.lastRow = start, end, row
	return row
}

func (r *dayRow) grow(n int) {
	if n <= cap(r.cells) {
		r.cells = r.cells[:n]
		return
	}
	cells := make([][]int64, n, n+n/2+4)
	copy(cells, r.cells)
	r.cells = cells
}

// cachedDomain is an entry of Counts.domainCache.
type cachedDomain struct {
	s  string // Counts' own copy
	id uint32
	ok bool // the entry is set
}

// domainHash picks the entry of Counts.domainCache for s: cheap, and
// different for most domains of a month.
func domainHash(s string) int {
	h := uint(len(s))
	if len(s) > 0 {
		h = h*31 + uint(s[0])*7 + uint(s[len(s)-1]) + uint(s[len(s)/2])*3
	}
	return int(h & 63)
}

// domain returns the index of s. s may be borrowed (see
// bounces.NDJSONReader.NextBorrowed): Counts keeps only its own copies.
func (c *Counts) domain(s string) uint32 {
	if c.haveLastDomain && s == c.lastDomain {
		return c.lastDomainID
	}
	e := &c.domainCache[domainHash(s)]
	if e.ok && e.s == s {
		c.lastDomain, c.lastDomainID = e.s, e.id
		return e.id
	}
	id, ok := c.domainIdx[s]
	if !ok {
		id = uint32(len(c.domains))
		s = strings.Clone(s)
		c.domains = append(c.domains, s)
		c.domainIdx[s] = id
	}
	*e = cachedDomain{c.domains[id], id, true}
	c.lastDomain, c.lastDomainID, c.haveLastDomain = c.domains[id], id, true
	return id
}

func (c *Counts) code(code int) uint16 {
	if code >= 0 && code < len(c.codeIdx) {
		if k := c.codeIdx[code]; k != 0 {
			return k - 1
		}
	} else if k, ok := c.codeOther[code]; ok {
		return k
	}
	k := uint16(len(c.codes))
	c.codes = append(c.codes, code)
	if code >= 0 && code < len(c.codeIdx) {
		c.codeIdx[code] = k + 1
	} else {
		c.codeOther[code] = k
	}
	return k
}

func (c *Counts) sortedRows() []*dayRow {
	rows := make([]*dayRow, 0, len(c.days))
	for _, r := range c.days {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].day < rows[j].day })
	return rows
}

// get returns the count of (day, domain index, code index).
func (r *dayRow) get(d, k int) int64 {
	if r == nil || d >= len(r.cells) || k >= len(r.cells[d]) {
		return 0
	}
	return r.cells[d][k]
}

// civilDay returns the number of days from 1970-01-01 to y-m-d.
func civilDay(y int, m time.Month, d int) int32 {
	sec := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()
	if sec < 0 {
		return int32((sec - 86399) / 86400)
	}
	return int32(sec / 86400)
}

// civilDate returns the date of a civil day number.
func civilDate(day int32) (int, time.Month, int) {
	return time.Unix(int64(day)*86400, 0).UTC().Date()
}

// civilStart returns the local midnight starting civil day day in loc.
func civilStart(day int32, loc *time.Location) time.Time {
	y, m, d := civilDate(day)
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// dayLabel returns "YYYY-MM-DD" of a civil day number.
func dayLabel(day int32) string {
	return time.Unix(int64(day)*86400, 0).UTC().Format("2006-01-02")
}
