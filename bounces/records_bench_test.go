package bounces

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// benchAnswers is a realistic mix of answers (delivered dominates).
var benchAnswers = []struct {
	code     int
	enhanced string
	text     string
}{
	{250, "2.0.0", "250 2.0.0 OK  1526544191 x12si1234567wrb.301 - gsmtp"},
	{250, "2.0.0", "250 2.0.0 Ok: queued as 4B7E2C1D0A1"},
	{250, "", "250 Message accepted"},
	{250, "2.6.0", "250 2.6.0 <0f3c9a2e@mail.example.com> [InternalId=123] Queued mail for delivery"},
	{452, "4.2.1", "452 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered."},
	{554, "5.7.1", "554 5.7.1 Message rejected as spam"},
	{550, "5.1.1", "550 5.1.1 <jan.novak@azet.sk>: Recipient address rejected: User unknown"},
	{421, "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints"},
	{552, "5.2.2", "552 5.2.2 The email account that you tried to reach is over quota."},
	{451, "4.7.650", "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation."},
}

var benchDomains = []string{"gmail.com", "azet.sk", "centrum.sk", "seznam.cz", "yahoo.com", "hotmail.com", "icloud.com", "zoznam.sk", "stonline.sk", "example.org"}

// benchNDJSONLines returns n events in the NDJSON format, as the webhook and
// ingest write them.
func benchNDJSONLines(n int) []byte {
	var buf []byte
	t0 := time.Date(2018, 5, 1, 22, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		a := benchAnswers[(i*7)%len(benchAnswers)]
		if i%3 != 0 {
			a = benchAnswers[i%4] // mostly delivered
		}
		d := benchDomains[(i*13)%len(benchDomains)]
		buf = AppendNDJSON(buf, Event{
			Time:      t0.Add(time.Duration(i) * 257 * time.Millisecond).Truncate(time.Second),
			Campaign:  "2018-05-newsletter",
			MessageID: fmt.Sprintf("%08x@mail.example.com", i*2654435761),
			Recipient: fmt.Sprintf("user%d@%s", i, d),
			Code:      a.code,
			Enhanced:  a.enhanced,
			Text:      a.text,
			Source:    SourceSMTP,
		})
	}
	return buf
}

func BenchmarkNDJSON(b *testing.B) {
	const n = 10000
	data := benchNDJSONLines(n)
	b.Run("reader", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			r := NewNDJSONReader(bytes.NewReader(data), "bench")
			got := 0
			for {
				_, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				got++
			}
			if got != n {
				b.Fatalf("read %d events, want %d", got, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	// NextKey: what a report reads (time, domain, code), no allocation.
	b.Run("key", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			r := NewNDJSONReader(bytes.NewReader(data), "bench")
			got := 0
			for {
				_, err := r.NextKey()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				got++
			}
			if got != n {
				b.Fatalf("read %d events, want %d", got, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	// Baseline: encoding/json into Event, line by line, without the
	// checks and the domain normalisation the reader does.
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			sc := bufio.NewScanner(bytes.NewReader(data))
			got := 0
			for sc.Scan() {
				var ev Event
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					b.Fatal(err)
				}
				got++
			}
			if got != n {
				b.Fatalf("read %d events, want %d", got, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// benchPostfixLog returns a log of n lines, a third of them delivery
// records, the rest the other lines of a busy Postfix.
func benchPostfixLog(n int) ([]byte, int) {
	var buf bytes.Buffer
	records := 0
	t0 := time.Date(2018, 5, 17, 8, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		ts := t0.Add(time.Duration(i) * time.Second).Format(time.Stamp)
		qid := fmt.Sprintf("%011X", i*2654435761%0xFFFFFFFFFFF)
		d := benchDomains[(i*13)%len(benchDomains)]
		switch i % 3 {
		case 0:
			a := benchAnswers[(i/3*7)%len(benchAnswers)]
			status, text := "sent", a.text
			switch a.code / 100 {
			case 4:
				status, text = "deferred", "host mx."+d+"[192.0.2.7] said: "+a.text+" (in reply to RCPT TO command)"
			case 5:
				status, text = "bounced", "host mx."+d+"[192.0.2.7] said: "+a.text+" (in reply to RCPT TO command)"
			}
			enh := a.enhanced
			if enh == "" {
				enh = "2.0.0"
			}
			fmt.Fprintf(&buf, "%s mail postfix/smtp[%d]: %s: to=<user%d@%s>, relay=mx.%s[192.0.2.7]:25, delay=1.2, delays=0.1/0/0.6/0.5, dsn=%s, status=%s (%s)\n",
				ts, 4000+i%100, qid, i, d, d, enh, status, text)
			records++
		case 1:
			fmt.Fprintf(&buf, "%s mail postfix/qmgr[880]: %s: from=<news@example.com>, size=24012, nrcpt=1 (queue active)\n", ts, qid)
		case 2:
			fmt.Fprintf(&buf, "%s mail postfix/cleanup[1202]: %s: message-id=<%08x@mail.example.com>\n", ts, qid, i)
		}
	}
	return buf.Bytes(), records
}

func BenchmarkPostfix(b *testing.B) {
	data, records := benchPostfixLog(30000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := NewPostfixReader(bytes.NewReader(data), "bench", 2018, time.UTC)
		got := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != records {
			b.Fatalf("read %d events, want %d", got, records)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkExport(b *testing.B) {
	data, err := os.ReadFile("testdata/export/campaign-responses-2018Q2.csv")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	counts := 0
	for b.Loop() {
		r, err := NewExportReader(bytes.NewReader(data), "bench")
		if err != nil {
			b.Fatal(err)
		}
		counts = 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			counts++
		}
	}
	b.ReportMetric(float64(counts)*float64(b.N)/b.Elapsed().Seconds(), "counts/s")
}

// BenchmarkNDJSONScan is the fast scanner alone on the benchmark's lines,
// each line on its own ("alone", as DecodeEvent) and with the key order of
// the lines before (as the reader).
func BenchmarkNDJSONScan(b *testing.B) {
	const n = 1000
	var lines []string
	for _, l := range bytes.Split(bytes.TrimSpace(benchNDJSONLines(n)), []byte("\n")) {
		lines = append(lines, string(l))
	}
	for _, name := range []string{"alone", "key_order"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var o *keyOrder
			if name == "key_order" {
				o = new(keyOrder)
			}
			for b.Loop() {
				for _, l := range lines {
					var f eventFields
					if !f.scanFastKeys(l, o) {
						b.Fatalf("scanFastKeys(%q) = false", l)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/line")
		})
	}
}
