package feedback

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/bounceloop/bounceloop/policy/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func TestKeys(t *testing.T) {
	at := time.Date(2018, 5, 17, 8, 3, 11, 0, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name string
		keys Keys
		want string
	}{
		{"default prefix", Keys{}, "bounceloop:counts:2018051706"},
		{"own prefix", Keys{Prefix: "acme"}, "acme:counts:2018051706"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.keys.Counts(at); got != tt.want {
				t.Errorf("Counts(%v) = %q, want %q", at, got, tt.want)
			}
		})
	}
}

func TestParseCounterField(t *testing.T) {
	tests := []struct {
		field   string
		code    int
		domain  string
		wantErr bool
	}{
		{"452|gmail.com", 452, "gmail.com", false},
		{"200|(other)", 200, "(other)", false},
		{"452", 0, "", true},
		{"x|gmail.com", 0, "", true},
		{"1000|gmail.com", 0, "", true},
		{"550|", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			code, domain, err := parseCounterField(tt.field)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseCounterField(%q) error = %v, wantErr %v", tt.field, err, tt.wantErr)
			}
			if code != tt.code || domain != tt.domain {
				t.Errorf("parseCounterField(%q) = %d, %q, want %d, %q", tt.field, code, domain, tt.code, tt.domain)
			}
		})
	}
}

// TestRecorderRoundTrip records from many goroutines against a real Redis
// and reads the counters back per hour.
func TestRecorderRoundTrip(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	keys := Keys{Prefix: prefix}
	rec := NewRecorder(rdb, keys)
	base := time.Date(2018, 5, 17, 22, 0, 0, 0, time.UTC)

	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				rec.Record(base.Add(time.Duration(i)*time.Second*7), "gmail.com", 200) // spans two hours
				if i%10 == 0 {
					rec.Record(base.Add(time.Duration(i)*time.Second*7), "gmail.com", 452)
				}
			}
		}()
	}
	wg.Wait()
	if err := rec.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rec.Add(base, "centrum.sk", 554, 5)
	if err := rec.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}

	got := map[string]int64{}
	err := ReadCounts(ctx, rdb, keys, base.Add(-time.Hour), base.Add(3*time.Hour), func(h time.Time, d string, c int, n int64) {
		got[h.Format("15")+" "+d+" "+time.Duration(c).String()] += n
	})
	if err != nil {
		t.Fatalf("ReadCounts: %v", err)
	}
	// 1000 records per goroutine at 7 s steps: i < 515 fall in hour 22 (3600/7 = 514.3).
	want := map[string]int64{
		"22 gmail.com 200ns":  8 * 515,
		"23 gmail.com 200ns":  8 * 485,
		"22 gmail.com 452ns":  8 * 52,
		"23 gmail.com 452ns":  8 * 48,
		"22 centrum.sk 554ns": 5,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("count %q = %d, want %d", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("ReadCounts gave %d counters, want %d: %v", len(got), len(want), got)
	}
	ttl, err := rdb.TTL(ctx, keys.Counts(base)).Result()
	if err != nil || ttl <= 0 {
		t.Errorf("TTL(%s) = %v, %v; want a positive expiry", keys.Counts(base), ttl, err)
	}
}

// TestRecorderKeepsCountsWhenRedisFails flushes against a closed client
// and checks nothing was dropped.
func TestRecorderKeepsCountsWhenRedisFails(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	keys := Keys{Prefix: prefix}
	good := NewRecorder(rdb, keys)

	broken := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	_ = broken.Close()
	rec := NewRecorder(broken, keys)
	at := time.Date(2018, 5, 8, 10, 0, 0, 0, time.UTC)
	rec.Add(at, "centrum.sk", 554, 3)
	if err := rec.Flush(ctx); err == nil {
		t.Fatal("Flush on a closed client: want an error")
	}
	// Hand the pending counts to a working recorder through the same path a retry takes.
	good.pending = rec.pending
	if err := good.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	var n int64
	if err := ReadCounts(ctx, rdb, keys, at, at.Add(time.Hour), func(_ time.Time, _ string, _ int, c int64) { n += c }); err != nil {
		t.Fatalf("ReadCounts: %v", err)
	}
	if n != 3 {
		t.Errorf("after a failed then a good flush: %d counted, want 3", n)
	}
}

func TestReadCountsReportsBadFields(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	keys := Keys{Prefix: prefix}
	at := time.Date(2018, 5, 8, 10, 0, 0, 0, time.UTC)
	rdb.HSet(ctx, keys.Counts(at), "550|azet.sk", "4", "junk", "1", "421|seznam.cz", "x")
	var n int64
	err := ReadCounts(ctx, rdb, keys, at, at.Add(time.Hour), func(_ time.Time, _ string, _ int, c int64) { n += c })
	if err == nil {
		t.Error("ReadCounts with bad fields: want an error naming them")
	}
	if n != 4 {
		t.Errorf("ReadCounts read %d, want the 4 of the good field", n)
	}
}

func BenchmarkRecorderRecord(b *testing.B) {
	rec := NewRecorder(nil, Keys{})
	at := time.Date(2018, 5, 8, 10, 0, 0, 0, time.UTC)
	domains := []string{"gmail.com", "azet.sk", "centrum.sk", "yahoo.com"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.Record(at, domains[i&3], 200)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
