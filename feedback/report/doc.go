// Package report is the engine of the monthly root-cause report: it counts
// answers per day, domain and reply code (Counts), analyses a month
// (Analyze) and writes the result as Markdown, JSON or a self-contained HTML
// page with charts (WriteMarkdown, WriteJSON, WriteHTML). It reads no
// files, Redis or flags itself: callers feed Counts from bounces' readers
// (AddExport, AddEvents) or from any other source (Add, AddBucket).
//
// # Days
//
// Every answer is counted on a day of the report's zone (Counts' location).
// A per-message event counts on the day of its time; a bucket (a row of
// the wide CSV export, an hour of Redis counters) on the day of its start.
// When buckets straddle local midnights — the shared data set's buckets
// start at 22:00 UTC because its export counted days of UTC+2 — the report
// says so (Report.BucketOffset "22:00" and a note): its day labels are those
// of the bucket start. Only the buckets that start on the reported month's
// days count for that: a zone whose UTC offset changes over the year (CET
// in January, CEST in May) may see the same buckets straddle midnight in one
// month and not in another. A month still running at Options.Now is
// reported up to Now's day.
//
// # Attempts
//
// Every answer is an attempt. 2xx answers (the export's 200, SMTP's 250)
// are delivered; every other code is a failed attempt, 605 (the address was
// already suppressed, nothing was sent) included. A code's class and
// meaning come from the bounces classifier for the bare code (no text, no
// domain), and every recommended action follows from that class and the
// kind of finding, never from a domain's name.
//
// # Findings
//
// For every failure code (thresholds are constants of this package):
//
//   - concentrated: one domain holds ≥ 50% of the code's month count, and
//     the code has ≥ 50 events or ≥ 0.5% of all failures. Evidence: count,
//     code_total, share, failures, share_of_failures, domain_attempts, rate,
//     max_daily (the domain's largest daily count of the code) and
//     max_daily_day (the day of the month, 1–31, on which it first had it).
//   - volume_correlated: Pearson's r between a domain's daily attempts and
//     the code's daily rate there is ≥ 0.7, over ≥ 7 days with ≥ 100
//     attempts, the code having ≥ 20 events there. Evidence: r, days,
//     events, month_rate, max_daily_attempts, rate_at_max; for a
//     rate_limited code also the suggestion: safe_daily_attempts (the
//     highest daily volume up to which every day's rate stayed at or below
//     half the month's rate), safe_rate, suggested_per_hour
//     (safe_daily_attempts / 24) and suggested_per_minute (/ 1440, ≥ 1).
//   - not_volume_correlated: |r| < 0.3 between a domain's daily attempts
//     and the code's daily count there, over the month's days, the code
//     occurring on ≥ 7 days and ≥ 20 times. Evidence: r, days,
//     occurrence_days, events, min_daily, max_daily.
//   - spike: a day on which the code's count over all domains is ≥ 20 and
//     either ≥ 50% of the code's month total, or its rate among the day's
//     attempts is ≥ 10× the median daily rate (over days with ≥ 100
//     attempts; a median of 0 makes any day with ≥ 20 a spike). Evidence:
//     count, code_total, share_of_code, day_attempts, rate, domains (hit
//     that day), median_rate, ratio_to_median (when the median is > 0).
//   - onset: the first day on which a domain's count of the code is ≥ 10,
//     its rate there ≥ 1% and ≥ 5× the rate over the month's preceding days
//     with ≥ 100 attempts (there must be such days), staying ≥ 5× that
//     baseline on each of the next 3 days with ≥ 20 attempts. With a zero
//     baseline "≥ 5×" is read as a ratio: the rate must stay above zero (a
//     single day of a code never seen before is no onset). Evidence: count,
//     attempts, rate, baseline_rate, baseline_attempts, ratio_to_baseline
//     (baseline > 0), confirm_days, delivered_on_day, delivered_since,
//     count_since, rate_since.
//
// Pearson's r is undefined, null in the JSON (never NaN), when there are
// fewer than 3 points or either series is constant; no correlation finding
// is made then. Rates, shares and r are rounded to 4 significant digits so
// that output is stable across architectures.
//
// # JSON
//
//	{"month","timezone","bucket_offset",
//	 "totals":{"attempts","delivered","failed","failure_rate",
//	           "previous":{"month","attempts","delivered","failed","failure_rate"}},
//	 "codes":[{"code","class","meaning","count","share",
//	           "domains":[{"domain","count","share_of_code","rate"}]}],
//	 "domains":[{"domain","attempts","delivered","failure_rate",
//	             "correlation":{"<code>":{"rate_r","count_r","days","rate_days"}}}],
//	 "findings":[{"kind","code","domain","day","value","evidence","action"}],
//	 "skipped":[{"source","location","reason"}],
//	 "skipped_total"}
//
// "previous" is present when the data has the previous month. "share" is
// the code's share of all attempts; "rate" a code's count over the domain's
// attempts. A correlation always has its four keys: rate_r (over the
// rate_days days with ≥ 100 attempts at the domain) and count_r (over all
// the report's days of the month) are null when undefined; "days" is the
// number of days on which the code occurred there. A finding's "value" is its
// headline number (concentrated: share; correlations: r; spike: the day's
// count; onset: the day's rate) and "evidence" an object of named numbers
// (above). "domain" and "day" are absent where a kind has none. Codes are
// sorted by count descending, then code; domains by attempts (or count)
// descending, then name; findings by their code's rank, then kind
// (concentrated, onset, volume_correlated, not_volume_correlated, spike),
// domain and day. At most MaxSkippedListed skipped records are listed;
// "skipped_total" counts them all.
//
// Counts is not safe for concurrent use; Analyze and the writers are pure
// and may run concurrently on distinct values.
package report
