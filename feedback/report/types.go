package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// Month is a calendar month. The zero value is not a valid month.
type Month struct {
	Year  int
	Month time.Month
}

// ParseMonth parses "YYYY-MM".
func ParseMonth(s string) (Month, error) {
	y, m, ok := strings.Cut(s, "-")
	yi, err1 := strconv.Atoi(y)
	mi, err2 := strconv.Atoi(m)
	if !ok || len(y) != 4 || len(m) != 2 || err1 != nil || err2 != nil || mi < 1 || mi > 12 {
		return Month{}, fmt.Errorf("report: month %q: want YYYY-MM", s)
	}
	return Month{Year: yi, Month: time.Month(mi)}, nil
}

// String returns "YYYY-MM".
func (m Month) String() string { return fmt.Sprintf("%04d-%02d", m.Year, int(m.Month)) }

// Prev returns the month before m.
func (m Month) Prev() Month {
	if m.Month == time.January {
		return Month{Year: m.Year - 1, Month: time.December}
	}
	return Month{Year: m.Year, Month: m.Month - 1}
}

// Kind is the kind of a Finding; its JSON form is its name.
type Kind string

// The kinds of findings, with their thresholds (see the package doc).
const (
	KindConcentrated        Kind = "concentrated"
	KindVolumeCorrelated    Kind = "volume_correlated"
	KindNotVolumeCorrelated Kind = "not_volume_correlated"
	KindSpike               Kind = "spike"
	KindOnset               Kind = "onset"
)

var kindOrder = map[Kind]int{
	KindConcentrated: 0, KindOnset: 1, KindVolumeCorrelated: 2, KindNotVolumeCorrelated: 3, KindSpike: 4,
}

// Report is the monthly root-cause analysis. Its JSON form is the
// automation interface documented in the README; the fields tagged "-" are
// for the renderers only.
type Report struct {
	Month    string `json:"month"`    // "YYYY-MM"
	Timezone string `json:"timezone"` // the zone days are counted in (IANA name)
	// BucketOffset is the local time ("HH:MM") at which the buckets of
	// bucketed sources that start on the month's days start, when that is
	// not midnight in Timezone; "00:00" when every day of the month is a
	// whole local day (per-message events, or buckets starting at local
	// midnight); "mixed" when the month's buckets start at several times of
	// day. Other months' buckets do not count.
	BucketOffset string       `json:"bucket_offset"`
	Totals       Totals       `json:"totals"`
	Codes        []CodeStat   `json:"codes"`
	Domains      []DomainStat `json:"domains"`
	Findings     []Finding    `json:"findings"`
	Skipped      []Skipped    `json:"skipped"`

	// SkippedTotal is the number of records skipped, listed in Skipped or
	// not (only the first MaxSkippedListed are listed).
	SkippedTotal int64 `json:"skipped_total"`

	Generated  time.Time `json:"-"` // Options.Now in Timezone
	BucketNote string    `json:"-"` // a sentence explaining BucketOffset, "" when it is "00:00"
	Partial    bool      `json:"-"` // the month was still running at Generated
	Series     *Series   `json:"-"` // the daily figures behind the report
}

// Totals are a month's attempts. Every answer is an attempt; 2xx answers
// (the export's 200, SMTP's 250) are delivered, every other code is a
// failed attempt, 605 (already suppressed, not sent) included.
type Totals struct {
	Attempts    int64   `json:"attempts"`
	Delivered   int64   `json:"delivered"`
	Failed      int64   `json:"failed"`
	FailureRate float64 `json:"failure_rate"` // failed / attempts
	// Previous holds the previous month's totals when the data has any.
	Previous *PeriodTotals `json:"previous,omitempty"`
}

// PeriodTotals are the totals of another month (Totals.Previous).
type PeriodTotals struct {
	Month       string  `json:"month"`
	Attempts    int64   `json:"attempts"`
	Delivered   int64   `json:"delivered"`
	Failed      int64   `json:"failed"`
	FailureRate float64 `json:"failure_rate"`
}

// CodeStat is one reply code of the month.
type CodeStat struct {
	Code    int           `json:"code"`
	Class   bounces.Class `json:"class"`   // the classifier's class for the bare code
	Meaning string        `json:"meaning"` // the classifier's explanation for the bare code
	Count   int64         `json:"count"`
	Share   float64       `json:"share"` // count / all attempts
	// Domains hit by the code, by count descending then name.
	Domains []CodeDomain `json:"domains"`
}

// CodeDomain is one domain's part of a code.
type CodeDomain struct {
	Domain      string  `json:"domain"`
	Count       int64   `json:"count"`
	ShareOfCode float64 `json:"share_of_code"` // count / the code's month count
	Rate        float64 `json:"rate"`          // count / the domain's month attempts
}

// DomainStat is one recipient domain of the month.
type DomainStat struct {
	Domain      string  `json:"domain"`
	Attempts    int64   `json:"attempts"`
	Delivered   int64   `json:"delivered"`
	FailureRate float64 `json:"failure_rate"`
	// Correlation holds, per failure code seen at the domain (keyed by the
	// code as a string), how the code follows the domain's daily attempts.
	Correlation map[string]Correlation `json:"correlation"`
}

// Correlation says how a code follows a domain's daily attempts. Its JSON
// form always has every key; rate_r and count_r are null when undefined.
type Correlation struct {
	// RateR is Pearson's r between the daily attempts and the code's daily
	// rate, over the RateDays days with at least 100 attempts; nil (JSON
	// null) when fewer than 3 such days or either series is constant.
	RateR *float64 `json:"rate_r"`
	// CountR is Pearson's r between the daily attempts and the code's daily
	// count over all the report's days of the month (zeros included); nil
	// (JSON null) when either series is constant.
	CountR *float64 `json:"count_r"`
	// Days is the number of the report's days of the month on which the
	// code occurred at the domain (a count above zero). It is neither the
	// number of points behind RateR (RateDays) nor behind CountR (every
	// day of the month).
	Days int `json:"days"`
	// RateDays is the number of days with at least 100 attempts at the
	// domain: the points behind RateR.
	RateDays int `json:"rate_days"`
}

// Finding is one conclusion of the analysis with its evidence and what to
// do. Domain and Day are empty where the kind has none (a spike is over all
// domains; concentrated and the correlations are over the month).
type Finding struct {
	Kind   Kind   `json:"kind"`
	Code   int    `json:"code"`
	Domain string `json:"domain,omitempty"`
	Day    string `json:"day,omitempty"` // YYYY-MM-DD in the report's zone
	// Value is the kind's headline number: the domain's share of the code
	// (concentrated), Pearson's r (the correlations), the day's count
	// (spike), the day's rate at the domain (onset).
	Value    float64  `json:"value"`
	Evidence Evidence `json:"evidence"`
	Action   string   `json:"action"`

	Class   bounces.Class `json:"-"` // the code's class
	Summary string        `json:"-"` // the evidence as a sentence

	onsetDay string // concentrated: the day of an onset of the same code and domain
}

// Evidence are the named figures behind a finding (see the package doc for
// the names of each kind). Rates and shares are fractions.
type Evidence map[string]float64

// Skipped is a record a source could not read.
type Skipped struct {
	Source   string `json:"source"`
	Location string `json:"location"`
	Reason   string `json:"reason"`
}

// Series are the daily figures of the month, for charts.
type Series struct {
	Days     []string // YYYY-MM-DD, the month's days in order
	Attempts []int64  // all domains
	Failed   []int64  // all domains
	Domain   map[string]*DomainSeries
	Code     map[int][]int64 // a code's daily count over all domains
}

// DomainSeries are one domain's daily figures.
type DomainSeries struct {
	Attempts []int64
	Failed   []int64
	Code     map[int][]int64 // a code's daily count at the domain
}
