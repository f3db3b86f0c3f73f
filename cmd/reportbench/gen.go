package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bounceloop/bounceloop/feedback/report"
)

// genVersion is part of the events file's name: change it whenever the
// generator's output changes, so that an old file is not reused.
const genVersion = 1

// genParams are the parameters that decide the events file's content.
type genParams struct {
	month  report.Month
	events int
	seed   uint64
}

// fileName is the events file's name; a file of that name holds exactly
// what generate writes for p.
func (p genParams) fileName() string {
	return fmt.Sprintf("events-%04d-%02d-n%d-s%d-v%d.ndjson", p.month.Year, int(p.month.Month), p.events, p.seed, genVersion)
}

// benchDomain is a recipient domain with its share of the traffic and the
// failure profile of its provider.
type benchDomain struct {
	name   string
	weight float64
	kind   provider
}

type provider uint8

const (
	provGeneric provider = iota
	provGoogle
	provMicrosoft
	provYahoo
	provApple
	provCentrum
)

// benchDomains returns about 60 domains: gmail.com as much as all the
// others together, then a Zipf-like tail of webmail and ISP domains.
func benchDomains() []benchDomain {
	names := []string{
		"yahoo.com", "hotmail.com", "outlook.com", "seznam.cz", "icloud.com", "centrum.sk", "azet.sk", "gmx.de",
		"web.de", "aol.com", "orange.fr", "stonline.sk", "post.sk", "email.cz", "live.com", "t-online.de",
		"free.fr", "yandex.ru", "mail.ru", "wp.pl", "o2.pl", "interia.pl", "libero.it", "virgilio.it",
		"btinternet.com", "sky.com", "comcast.net", "verizon.net", "att.net", "me.com", "mac.com", "msn.com",
		"googlemail.com", "protonmail.com", "zoho.com", "gmx.net", "volny.cz", "atlas.cz", "tiscali.it", "laposte.net",
		"sfr.fr", "wanadoo.fr", "bluewin.ch", "telenet.be", "ziggo.nl", "kpnmail.nl", "chello.at", "aon.at",
		"upcmail.cz", "pobox.sk", "zoznam.sk", "inmail.sk", "rambler.ru", "ukr.net", "abv.bg", "freemail.hu",
		"citromail.hu", "tut.by", "inbox.lv",
	}
	kinds := map[string]provider{
		"hotmail.com": provMicrosoft, "outlook.com": provMicrosoft, "live.com": provMicrosoft, "msn.com": provMicrosoft,
		"yahoo.com": provYahoo, "aol.com": provYahoo,
		"icloud.com": provApple, "me.com": provApple, "mac.com": provApple,
		"googlemail.com": provGoogle,
		"centrum.sk":     provCentrum,
	}
	out := make([]benchDomain, 0, len(names)+1)
	sum := 0.0
	for i, n := range names {
		w := 1 / math.Pow(float64(i+1), 1.05)
		sum += w
		out = append(out, benchDomain{name: n, weight: w, kind: kinds[n]})
	}
	return append([]benchDomain{{name: "gmail.com", weight: sum * 1.05, kind: provGoogle}}, out...)
}

// answer is one kind of SMTP answer the generator writes.
type answer struct {
	code     int
	enhanced string
	text     string // the full reply line; %s is replaced by an id
}

var answers = map[string]answer{
	"ok_google":       {250, "2.0.0", "250 2.0.0 OK  %s - gsmtp"},
	"ok_microsoft":    {250, "2.6.0", "250 2.6.0 <%s@mail.bounceloop.example> [InternalId=4810363] Queued mail for delivery"},
	"ok_generic":      {250, "2.0.0", "250 2.0.0 Ok: queued as %s"},
	"rate_google":     {452, "4.2.1", "452 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. - gsmtp"},
	"rate_generic":    {452, "4.2.1", "452 4.2.1 Too many messages, slow down"},
	"unknown_google":  {550, "5.1.1", "550 5.1.1 The email account that you tried to reach does not exist. - gsmtp"},
	"unknown_generic": {550, "5.1.1", "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table"},
	"unknown_ms":      {550, "5.5.0", "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302)"},
	"spam_centrum":    {554, "5.7.1", "554 5.7.1 Message rejected as spam"},
	"spam_generic":    {554, "5.7.1", "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"},
	"tss04":           {421, "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints"},
	"deferred":        {421, "4.7.0", "421 4.7.0 Try again later, closing connection"},
	"ms_rate":         {451, "4.7.650", "451 4.7.650 The mail server [192.0.2.10] has been temporarily rate limited due to IP reputation."},
	"apple_tmp":       {451, "4.3.0", "451 4.3.0 Temporary server error. Please try again later"},
	"greylist":        {451, "4.7.1", "451 4.7.1 Greylisting in action, please come back later"},
	"full_google":     {552, "5.2.2", "552 5.2.2 The email account that you tried to reach is over quota. - gsmtp"},
	"full_generic":    {552, "5.2.2", "552 5.2.2 Mailbox full"},
	"suppressed":      {605, "", "605 recipient is on the suppression list"},
	"timeout":         {499, "", "499 timeout waiting for the server's response"},
}

// failureMix returns the failure answers of a provider on a day with their
// probabilities; what is left is delivered. day is 1-based; load is the
// day's volume over the month's busiest day (0..1].
func failureMix(k provider, day int, load float64, spikeDay int) []weighted {
	mix := []weighted{
		{0.006, "unknown_generic"},
		{0.001, "full_generic"},
		{0.0015, "spam_generic"},
		{0.0004, "deferred"},
		{0.0004, "greylist"},
		{0.0003, "timeout"},
		{0.002, "suppressed"},
	}
	if day == spikeDay {
		mix[6].p = 0.03 // a list holding previously failed addresses was sent that day
	}
	switch k {
	case provGoogle:
		mix[0].key, mix[1].key = "unknown_google", "full_google"
		mix = append(mix, weighted{0.002 + 0.02*load*load, "rate_google"}, weighted{0.0008, "tss04"})
	case provMicrosoft:
		mix[0].key = "unknown_ms"
		mix = append(mix, weighted{0.004 * load, "ms_rate"})
	case provYahoo:
		mix = append(mix, weighted{0.003, "tss04"}, weighted{0.0005, "rate_generic"})
	case provApple:
		mix = append(mix, weighted{0.008, "apple_tmp"})
	case provCentrum:
		if day >= 8 {
			mix[2] = weighted{0.08, "spam_centrum"}
		}
	}
	return mix
}

type weighted struct {
	p   float64
	key string
}

// generate writes the events of p to path, unless a file of that name
// exists (it was written complete: generate writes beside and renames).
// It reports whether it wrote.
func generate(ctx context.Context, path string, p genParams) (bool, error) {
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := writeEvents(ctx, w, p); err != nil {
		tmp.Close()
		return false, err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), path)
}

// writeEvents writes p.events lines in time order: days weighted by the day
// of the week, hours by a daily rhythm (a morning and an afternoon peak in
// UTC), each event's domain by its weight and its answer by the domain's
// failure mix.
func writeEvents(ctx context.Context, w *bufio.Writer, p genParams) error {
	rng := rand.New(rand.NewPCG(p.seed, 0x9e3779b97f4a7c15))
	first := time.Date(p.month.Year, p.month.Month, 1, 0, 0, 0, 0, time.UTC)
	days := first.AddDate(0, 1, 0).Sub(first) / (24 * time.Hour)
	hours := int(days) * 24

	// Per-hour event counts summing to p.events exactly.
	weights := make([]float64, hours)
	dayWeight := make([]float64, days)
	total := 0.0
	for h := range weights {
		t := first.Add(time.Duration(h) * time.Hour)
		dw := 1.0
		switch t.Weekday() {
		case time.Saturday:
			dw = 0.55
		case time.Sunday:
			dw = 0.45
		}
		dw *= 0.8 + 0.4*rng.Float64()*float64(h%24+1)/24 // some noise, drawn per hour
		hw := 0.15 + math.Exp(-sq(float64(t.Hour())-9.5)/6) + 0.8*math.Exp(-sq(float64(t.Hour())-15)/5)
		weights[h] = dw * hw
		dayWeight[h/24] += weights[h]
		total += weights[h]
	}
	perHour := make([]int, hours)
	left := p.events
	for h := range perHour {
		perHour[h] = int(float64(p.events) * weights[h] / total)
		left -= perHour[h]
	}
	for h := 0; left > 0; h = (h + 1) % hours {
		perHour[h]++
		left--
	}
	maxDay := 0.0
	for _, v := range dayWeight {
		maxDay = max(maxDay, v)
	}

	doms := benchDomains()
	cum := make([]float64, len(doms))
	sum := 0.0
	for i, d := range doms {
		sum += d.weight
		cum[i] = sum
	}
	spikeDay := 17
	mixes := make([][][]weighted, days) // [day][domain]
	for d := range mixes {
		mixes[d] = make([][]weighted, len(doms))
		for i, dom := range doms {
			mixes[d][i] = failureMix(dom.kind, d+1, dayWeight[d]/maxDay, spikeDay)
		}
	}

	var line []byte
	seq := uint64(0)
	for h, n := range perHour {
		if err := ctx.Err(); err != nil {
			return err
		}
		hourStart := first.Add(time.Duration(h) * time.Hour)
		prefix := hourStart.Format("2006-01-02T15:")
		campaign := fmt.Sprintf("%04d-%02d-newsletter-%02d", p.month.Year, int(p.month.Month), h/24+1)
		for i := 0; i < n; i++ {
			sec := i * 3600 / n
			x := rng.Float64() * sum
			di := 0
			for cum[di] < x && di < len(cum)-1 {
				di++
			}
			dom := doms[di]
			key := ""
			u := rng.Float64()
			for _, m := range mixes[h/24][di] {
				if u < m.p {
					key = m.key
					break
				}
				u -= m.p
			}
			if key == "" {
				switch dom.kind {
				case provGoogle:
					key = "ok_google"
				case provMicrosoft:
					key = "ok_microsoft"
				default:
					key = "ok_generic"
				}
			}
			seq++
			line = appendEvent(line[:0], prefix, sec, campaign, seq, rng.IntN(2_000_000), dom.name, answers[key], hourStart.Unix()+int64(sec))
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
	}
	return nil
}

func sq(x float64) float64 { return x * x }

// appendEvent appends one NDJSON line.
func appendEvent(b []byte, prefix string, sec int, campaign string, seq uint64, user int, domain string, a answer, unix int64) []byte {
	b = append(b, `{"time":"`...)
	b = append(b, prefix...)
	b = append(b, byte('0'+sec/600), byte('0'+sec/60%10), ':', byte('0'+sec%60/10), byte('0'+sec%10), 'Z', '"')
	b = append(b, `,"campaign":"`...)
	b = append(b, campaign...)
	b = append(b, `","message_id":"`...)
	b = strconv.AppendUint(b, seq*2654435761%(1<<40)+1<<40, 16)
	b = append(b, `@mail.bounceloop.example","recipient":"user`...)
	b = strconv.AppendInt(b, int64(user), 10)
	b = append(b, '@')
	b = append(b, domain...)
	b = append(b, `","code":`...)
	b = strconv.AppendInt(b, int64(a.code), 10)
	if a.enhanced != "" {
		b = append(b, `,"enhanced":"`...)
		b = append(b, a.enhanced...)
		b = append(b, '"')
	}
	b = append(b, `,"text":"`...)
	for i := 0; i < len(a.text); i++ {
		if a.text[i] == '%' && i+1 < len(a.text) && a.text[i+1] == 's' {
			b = strconv.AppendInt(b, unix, 10)
			b = append(b, '.')
			b = strconv.AppendUint(b, seq, 36)
			i++
			continue
		}
		b = append(b, a.text[i])
	}
	return append(b, `","source":"smtp"}`+"\n"...)
}
