package report

import (
	"errors"
	"io"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
)

// ExportBucket is the width of the wide CSV export's buckets: a day.
const ExportBucket = 24 * time.Hour

// AddExport counts every cell of an export (each a bucket of ExportBucket
// starting at its timestamp). Bad records are recorded with Skip under
// source and reading goes on; it returns nil at the end of the input, or
// the first error that is not a bad record (a read error).
func (c *Counts) AddExport(x *bounces.ExportReader, source string) error {
	for {
		dc, err := x.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, bounces.ErrSkipped) {
				c.Skip(source, err)
				continue
			}
			return err
		}
		c.AddBucket(dc.Start, ExportBucket, dc.Domain, dc.Code, dc.Count)
	}
}

// AddEvents counts the events returned by next (the Next or NextBorrowed
// method of a bounces.NDJSONReader, or a PostfixReader's Next) until
// io.EOF, each on the day of its time; no string of an event is kept past
// the next call of next. An event without a domain takes it from its recipient. Bad
// records are recorded with Skip under source; it returns nil at the end
// of the input, or the first error that is not a bad record.
func (c *Counts) AddEvents(next func() (bounces.Event, error), source string) error {
	for {
		e, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, bounces.ErrSkipped) {
				c.Skip(source, err)
				continue
			}
			return err
		}
		if e.Domain == "" && e.Recipient != "" {
			if err := e.Normalize(); err != nil {
				c.Skip(source, err)
				continue
			}
		}
		c.Add(e.Time, e.Domain, e.Code, 1)
	}
}
