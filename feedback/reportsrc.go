package feedback

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback/report"
)

// Format is the format of a report source file.
type Format string

// The formats a report reads. FormatAuto detects the format by content.
const (
	FormatAuto    Format = ""
	FormatExport  Format = "export"  // the wide CSV export (timestamp + "<code> (<domain>)" columns)
	FormatNDJSON  Format = "ndjson"  // NDJSON events
	FormatPostfix Format = "postfix" // Postfix mail log
)

// ParseFormat returns the format named s ("auto" or "" for FormatAuto).
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatExport, FormatNDJSON, FormatPostfix:
		return f, nil
	case "auto", FormatAuto:
		return FormatAuto, nil
	}
	return FormatAuto, fmt.Errorf("feedback: unknown input format %q (want auto, export, ndjson or postfix)", s)
}

var (
	syslogLine = regexp.MustCompile(`^(?:[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) \S+ \S+`)
	sniffSize  = 64 << 10
)

// DetectFormat tells the format of a source from its first bytes: NDJSON
// when the first non-blank line is a JSON object, the export when the
// first line is a CSV header with a timestamp column, a Postfix log when a
// line in head is a syslog line of postfix. It returns false when it cannot
// tell.
func DetectFormat(head []byte) (Format, bool) {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	sc := bufio.NewScanner(bytes.NewReader(head))
	sc.Buffer(make([]byte, 0, 4096), len(head)+1)
	first := true
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if first {
			first = false
			switch {
			case line[0] == '{':
				return FormatNDJSON, true
			case bytes.Contains(bytes.ToLower(line), []byte("timestamp")) && bytes.Contains(line, []byte(",")):
				return FormatExport, true
			}
		}
		if syslogLine.Match(line) && bytes.Contains(line, []byte(" postfix")) {
			return FormatPostfix, true
		}
	}
	return FormatAuto, false
}

// ReadSource counts the source r (named name in skipped records) into c,
// detecting its format unless f says it. Postfix logs carry no year: the
// log is taken to end in month or before it (its first traditional
// timestamp is in month's year, or in the year before when its month comes
// later than month's: a log that began in December, read for January), and
// a January line after December ones moves to the next year. Bad records are recorded in c (c.Skip) and reading goes on;
// the error is for a source that cannot be read or recognised at all.
func ReadSource(ctx context.Context, name string, r io.Reader, f Format, c *report.Counts, month report.Month) error {
	br := bufio.NewReaderSize(r, sniffSize)
	if f == FormatAuto {
		head, err := br.Peek(sniffSize)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return fmt.Errorf("feedback: %s: %w", name, err)
		}
		var ok bool
		if f, ok = DetectFormat(head); !ok {
			if len(bytes.TrimSpace(head)) == 0 {
				return fmt.Errorf("feedback: %s: empty input", name)
			}
			return fmt.Errorf("feedback: %s: cannot tell the format (not NDJSON, the wide CSV export or a Postfix log); use --input-format", name)
		}
	}
	in := ctxReader{ctx: ctx, r: br}
	var err error
	switch f {
	case FormatExport:
		var x *bounces.ExportReader
		if x, err = bounces.NewExportReader(in, name); err == nil {
			err = c.AddExport(x, name)
		}
	case FormatNDJSON:
		err = c.AddEvents(bounces.NewNDJSONReader(in, name).NextBorrowed, name)
	case FormatPostfix:
		pr := bounces.NewPostfixReader(in, name, month.Year, c.Location())
		pr.SetLatestMonth(month.Month)
		err = c.AddEvents(pr.Next, name)
	default:
		return fmt.Errorf("feedback: %s: unknown format %q", name, f)
	}
	if err != nil {
		return fmt.Errorf("feedback: %s: %w", name, err)
	}
	return nil
}

// ctxReader stops a long read when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ReadRedisCounts counts the hourly counters of [from, to) kept in Redis
// by a Recorder into c, each hour as a bucket of an hour. A counter that
// cannot be read is recorded as skipped under source "redis"; a Redis
// failure is returned.
func ReadRedisCounts(ctx context.Context, rdb redis.Cmdable, keys Keys, from, to time.Time, c *report.Counts) error {
	err := ReadCounts(ctx, rdb, keys, from, to, func(hour time.Time, domain string, code int, n int64) {
		c.AddBucket(hour, time.Hour, domain, code, n)
	})
	var ce *CounterError
	if err != nil && !errors.As(err, &ce) {
		return err
	}
	if err != nil {
		for _, e := range unjoin(err) {
			c.Skip("redis", e)
		}
	}
	return nil
}

// unjoin returns the errors joined in err.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
