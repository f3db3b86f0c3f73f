package bounces

import (
	"math/rand"
	"regexp"
	"strings"
	"testing"
	"time"
)

// benchInput is one answer of the benchmark mix.
type benchInput struct {
	r      Reply
	domain string
}

// benchMix returns a realistic mix: about 60% delivered 250s, the
// analysis' bare export codes, and the provider answers of testdata/answers.
func benchMix(tb testing.TB) []benchInput {
	fx := loadFixtures(tb)
	rng := rand.New(rand.NewSource(42))
	domains := []string{"gmail.com", "azet.sk", "yahoo.com", "hotmail.com", "seznam.cz", "centrum.sk", "icloud.com", "zoznam.sk", "stonline.sk", "example.org"}
	delivered := []string{"250 2.0.0 OK 1526544191 a1si2345678wrb.100 - gsmtp", "250 ok dirdel", "250 2.0.0 Ok: queued as 3F1C2A0B12", "250 OK id=1fSdGB-0008Kt-3b", "250 2.6.0 <0f3c9a2e@mail.example.com> [InternalId=1234] Queued mail for delivery"}
	codes := []int{200, 421, 451, 452, 499, 550, 552, 554, 605}
	var out []benchInput
	for i := 0; i < 4096; i++ {
		d := domains[rng.Intn(len(domains))]
		switch p := rng.Intn(100); {
		case p < 60:
			out = append(out, benchInput{ParseReply(delivered[rng.Intn(len(delivered))]), d})
		case p < 75:
			out = append(out, benchInput{Reply{Code: codes[rng.Intn(len(codes))]}, d})
		default:
			f := fx[rng.Intn(len(fx))]
			out = append(out, benchInput{ParseReply(f.answer), f.domain})
		}
	}
	return out
}

// naiveRule is one rule of the baseline: every condition as a regexp.
type naiveRule struct {
	re   *regexp.Regexp // the wording (alternation of the substrings or the pattern), nil if none
	c    *compiled
	rule *Rule
}

// naiveClassifier is the baseline: every rule compiled to one regular
// expression, tried in precedence order, the first match wins.
type naiveClassifier struct{ rules []naiveRule }

func newNaiveClassifier(tb testing.TB) *naiveClassifier {
	c := newTestClassifier(tb)
	n := &naiveClassifier{}
	for i := range c.rules {
		cr := &c.rules[i]
		nr := naiveRule{c: cr, rule: cr.rule}
		switch {
		case len(cr.rule.Text) > 0:
			alts := make([]string, len(cr.rule.Text))
			for j, w := range cr.rule.Text {
				alts[j] = strings.ReplaceAll(regexp.QuoteMeta(w), " ", `\s+`)
			}
			nr.re = regexp.MustCompile("(?i)(?:" + strings.Join(alts, "|") + ")")
		case cr.re != nil:
			nr.re = cr.re
		}
		n.rules = append(n.rules, nr)
	}
	return n
}

func (n *naiveClassifier) classify(r Reply, domain string) string {
	a := answer{code: r.Code, text: r.Text, domain: domain}
	if e, ok := parseEnhanced(r.Enhanced); ok && e.n == 3 {
		a.enh, a.hasEnh = e, true
	}
	for i := range n.rules {
		nr := &n.rules[i]
		if nr.re != nil && !nr.re.MatchString(r.Text) {
			continue
		}
		c := *nr.c
		c.re = nil
		if c.matches(&a) {
			return nr.rule.ID
		}
	}
	return "default"
}

// BenchmarkClassify measures responses per second of the indexed
// classifier and of the naive baseline on the same mix; "ratio" runs both
// on the same inputs and reports the speedup.
func BenchmarkClassify(b *testing.B) {
	mix := benchMix(b)
	c := newTestClassifier(b)
	naive := newNaiveClassifier(b)
	b.Run("indexed", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			in := &mix[i%len(mix)]
			c.Classify(in.r, in.domain)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "responses/s")
	})
	b.Run("naive", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			in := &mix[i%len(mix)]
			naive.classify(in.r, in.domain)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "responses/s")
	})
	b.Run("ratio", func(b *testing.B) {
		b.ReportAllocs()
		var ti, tn time.Duration
		for i := 0; i < b.N; i++ {
			in := &mix[i%len(mix)]
			t0 := time.Now()
			c.Classify(in.r, in.domain)
			t1 := time.Now()
			naive.classify(in.r, in.domain)
			tn += time.Since(t1)
			ti += t1.Sub(t0)
		}
		if ti > 0 {
			b.ReportMetric(float64(tn)/float64(ti), "speedup")
		}
	})
}
