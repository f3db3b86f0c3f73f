package queue

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/bounceloop/bounceloop/bounces"
)

// maxMetricDomains bounds the domains metrics keep apart; the rest are
// counted as "(other)".
const maxMetricDomains = 500

// Metrics counts what a serve process did, for /metrics. A nil *Metrics
// counts nothing. Safe for concurrent use.
type Metrics struct {
	mu        sync.Mutex
	attempts  map[string]uint64
	answers   map[domainClass]uint64
	throttles map[string]uint64
	pauses    map[string]uint64
}

type domainClass struct {
	domain string
	class  bounces.Class
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{attempts: map[string]uint64{}, answers: map[domainClass]uint64{}, throttles: map[string]uint64{}, pauses: map[string]uint64{}}
}

func (m *Metrics) answer(domain string, c bounces.Class) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.attempts[domain]; !ok && len(m.attempts) >= maxMetricDomains {
		domain = "(other)"
	}
	m.attempts[domain]++
	m.answers[domainClass{domain, c}]++
}

func (m *Metrics) throttled(key string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.throttles[key]++
	m.mu.Unlock()
}

func (m *Metrics) paused(queue string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.pauses[queue]++
	m.mu.Unlock()
}

// Snapshot returns attempts and answers by class per domain.
func (m *Metrics) Snapshot() (attempts map[string]uint64, byClass map[string]map[bounces.Class]uint64) {
	attempts, byClass = map[string]uint64{}, map[string]map[bounces.Class]uint64{}
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for d, n := range m.attempts {
		attempts[d] = n
	}
	for k, n := range m.answers {
		if byClass[k.domain] == nil {
			byClass[k.domain] = map[bounces.Class]uint64{}
		}
		byClass[k.domain][k.class] = n
	}
	return
}

// RateFunc reports the current rate (messages per second) of each rate
// key, for the bounceloop_rate_per_second gauge.
type RateFunc func() map[string]float64

// writeMetrics writes the Prometheus text exposition of m, the queues of
// insp and the rates.
func writeMetrics(w io.Writer, m *Metrics, insp *asynq.Inspector, rates RateFunc) error {
	ew := &errWriter{w: w}
	if insp != nil {
		qs, err := insp.Queues()
		if err != nil {
			return fmt.Errorf("queue: metrics: %w", err)
		}
		sort.Strings(qs)
		ew.printf("# HELP bounceloop_queue_tasks Tasks in each asynq queue by state.\n# TYPE bounceloop_queue_tasks gauge\n")
		paused := make(map[string]bool, len(qs))
		for _, q := range qs {
			info, err := insp.GetQueueInfo(q)
			if err != nil {
				continue
			}
			paused[q] = info.Paused
			for _, s := range []struct {
				state string
				n     int
			}{{"pending", info.Pending}, {"active", info.Active}, {"scheduled", info.Scheduled}, {"retry", info.Retry}, {"archived", info.Archived}, {"completed", info.Completed}} {
				ew.printf("bounceloop_queue_tasks{queue=%s,state=%q} %d\n", strconv.Quote(q), s.state, s.n)
			}
		}
		ew.printf("# HELP bounceloop_queue_paused Whether an asynq queue is paused.\n# TYPE bounceloop_queue_paused gauge\n")
		for _, q := range qs {
			v := 0
			if paused[q] {
				v = 1
			}
			ew.printf("bounceloop_queue_paused{queue=%s} %d\n", strconv.Quote(q), v)
		}
	}
	attempts, byClass := m.Snapshot()
	domains := make([]string, 0, len(attempts))
	for d := range attempts {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	ew.printf("# HELP bounceloop_attempts_total SMTP attempts per recipient domain (this process).\n# TYPE bounceloop_attempts_total counter\n")
	for _, d := range domains {
		ew.printf("bounceloop_attempts_total{domain=%s} %d\n", strconv.Quote(d), attempts[d])
	}
	ew.printf("# HELP bounceloop_answers_total Answers per recipient domain and class (this process).\n# TYPE bounceloop_answers_total counter\n")
	for _, d := range domains {
		for _, c := range bounces.Classes() {
			if n := byClass[d][c]; n > 0 {
				ew.printf("bounceloop_answers_total{domain=%s,class=%q} %d\n", strconv.Quote(d), c.String(), n)
			}
		}
	}
	if m != nil {
		m.mu.Lock()
		keys := make([]string, 0, len(m.throttles))
		for k := range m.throttles {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ew.printf("# HELP bounceloop_throttled_total Sends given back to the queue because the rate key had no slot.\n# TYPE bounceloop_throttled_total counter\n")
		for _, k := range keys {
			ew.printf("bounceloop_throttled_total{key=%s} %d\n", strconv.Quote(k), m.throttles[k])
		}
		qs := make([]string, 0, len(m.pauses))
		for q := range m.pauses {
			qs = append(qs, q)
		}
		sort.Strings(qs)
		ew.printf("# HELP bounceloop_review_pauses_total Times a queue was paused past its review threshold (alert).\n# TYPE bounceloop_review_pauses_total counter\n")
		for _, q := range qs {
			ew.printf("bounceloop_review_pauses_total{queue=%s} %d\n", strconv.Quote(q), m.pauses[q])
		}
		m.mu.Unlock()
	}
	if rates != nil {
		r := rates()
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ew.printf("# HELP bounceloop_rate_per_second Current sending rate of each rate key.\n# TYPE bounceloop_rate_per_second gauge\n")
		for _, k := range keys {
			ew.printf("bounceloop_rate_per_second{key=%s} %g\n", strconv.Quote(k), r[k])
		}
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}
