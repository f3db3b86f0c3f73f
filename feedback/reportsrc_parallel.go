package feedback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback/report"
)

// MinParallelSize is the smallest input ReadSourceAt splits across
// goroutines; a smaller one is read sequentially.
const MinParallelSize = 4 << 20

// minParallelSize is MinParallelSize; tests lower it.
var minParallelSize int64 = MinParallelSize

// A parallel read splits its input into ranges of about partSize bytes,
// at least one and at most partsPerWorker per worker; tests lower
// partSize.
var partSize int64 = 16 << 20

const partsPerWorker = 8

// ReadOptions tune ReadSourceAt. The zero value reads with GOMAXPROCS
// goroutines and reports no progress.
type ReadOptions struct {
	// Workers is the number of goroutines that read a large NDJSON input;
	// 0 means runtime.GOMAXPROCS(0), 1 reads sequentially.
	Workers int
	// ProgressFunc, when not nil, is called with the number of bytes just
	// read, concurrently from several goroutines.
	ProgressFunc func(n int64)
}

// ReadSourceAt counts the size bytes of r, a regular file or anything that
// can be read at any offset, into c, like ReadSource. An NDJSON input of at
// least MinParallelSize bytes is read in parallel: it is split into byte
// ranges that start at line starts (one to eight per worker, which take
// them in turn), each range is decoded by its own bounces.NDJSONReader
// (NextKey: only the time, domain and code of each event) into its own
// report.Counts, and the Counts are merged into c in the order of the
// ranges. Counts, skipped
// records and their locations (file:line, the line numbers of the whole
// input) are those ReadSource would give. Other formats and small inputs
// are read sequentially with ReadSource (a Postfix log carries no year,
// which its reader infers from month and the order of its lines).
func ReadSourceAt(ctx context.Context, name string, r io.ReaderAt, size int64, f Format, c *report.Counts, month report.Month, opts ReadOptions) error {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if f == FormatAuto {
		head := make([]byte, min(size, int64(sniffSize)))
		n, err := r.ReadAt(head, 0)
		if err != nil && err != io.EOF {
			return fmt.Errorf("feedback: %s: %w", name, err)
		}
		if detected, ok := DetectFormat(head[:n]); ok {
			f = detected
		} // else ReadSource says why it cannot tell
	}
	if f != FormatNDJSON || workers < 2 || size < minParallelSize {
		return ReadSource(ctx, name, progressReader{io.NewSectionReader(r, 0, size), opts.ProgressFunc}, f, c, month)
	}
	// More ranges than workers, taken in turn: a worker slowed down (by
	// another process on its core) leaves more ranges to the others.
	nparts := int(min(max(size/partSize, int64(workers)), int64(workers)*partsPerWorker))
	bounds, err := lineBounds(r, size, nparts)
	if err != nil {
		return fmt.Errorf("feedback: %s: %w", name, err)
	}
	parts := make([]ndjsonPart, len(bounds)-1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(workers, len(parts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(parts) {
					return
				}
				// After an error, the ranges left fail at once with the
				// cancellation.
				sec := io.NewSectionReader(r, bounds[i], bounds[i+1]-bounds[i])
				parts[i].read(ctx, name, progressReader{sec, opts.ProgressFunc}, c.Location())
				if parts[i].err != nil {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range parts { // the first error that is not the cancellation it caused
		if p.err != nil && !errors.Is(p.err, context.Canceled) {
			return fmt.Errorf("feedback: %s: %w", name, p.err)
		}
	}
	for _, p := range parts {
		if p.err != nil {
			return fmt.Errorf("feedback: %s: %w", name, p.err)
		}
	}
	line := 0
	for i, p := range parts {
		if err := c.Merge(p.counts); err != nil {
			return fmt.Errorf("feedback: %s: %w", name, err)
		}
		for _, re := range p.skips {
			re.Line += line
			re.Offset += bounds[i]
			c.Skip(name, re)
		}
		for n := int64(len(p.skips)); n < p.skipped; n++ {
			c.Skip(name, nil) // counted, not listed: past report.MaxSkippedListed
		}
		line += p.lines
	}
	return nil
}

// ndjsonPart is one byte range of an NDJSON input, counted on its own.
type ndjsonPart struct {
	counts  *report.Counts
	skips   []*bounces.RecordError // the first report.MaxSkippedListed, lines counted from the range's start
	skipped int64                  // all skipped records
	lines   int                    // lines in the range
	err     error
}

// read counts the events of r, a range of the input name, into p.counts,
// keeping the skipped records aside so that their lines can be renumbered.
func (p *ndjsonPart) read(ctx context.Context, name string, r io.Reader, loc *time.Location) {
	p.counts = report.NewCounts(loc)
	nr := bounces.NewNDJSONReader(ctxReader{ctx: ctx, r: r}, name)
	for {
		k, err := nr.NextKey()
		if err == nil {
			p.counts.AddUnix(k.Unix, k.Domain, k.Code, 1)
			continue
		}
		if err == io.EOF {
			break
		}
		var re *bounces.RecordError // escapes: declared only on errors
		if !errors.As(err, &re) {
			p.err = err
			break
		}
		p.skipped++
		if len(p.skips) < report.MaxSkippedListed {
			cp := *re
			p.skips = append(p.skips, &cp)
		}
	}
	p.lines = nr.Lines()
}

// lineBounds splits [0, size) into n ranges, each starting at a line start
// (and never at a line that starts with a byte order mark, which the
// reader of the whole input keeps but a range's reader would drop). It
// returns the n+1 bounds; ranges may be empty.
func lineBounds(r io.ReaderAt, size int64, n int) ([]int64, error) {
	bounds := make([]int64, n+1)
	bounds[n] = size
	buf := make([]byte, 64<<10)
	for k := 1; k < n; k++ {
		pos := max(size*int64(k)/int64(n), bounds[k-1])
		var err error
		if pos, err = nextLineStart(r, size, pos, buf); err != nil {
			return nil, err
		}
		for pos < size {
			m, err := r.ReadAt(buf[:3], pos)
			if err != nil && err != io.EOF {
				return nil, err
			}
			if !bytes.HasPrefix(buf[:m], []byte("\xef\xbb\xbf")) {
				break
			}
			if pos, err = nextLineStart(r, size, pos+1, buf); err != nil {
				return nil, err
			}
		}
		bounds[k] = pos
	}
	return bounds, nil
}

// nextLineStart returns the first line start at or after pos: pos itself
// when the byte before it is '\n', else the byte after the next '\n', or
// size when there is none.
func nextLineStart(r io.ReaderAt, size, pos int64, buf []byte) (int64, error) {
	if pos <= 0 {
		return 0, nil
	}
	for at := pos - 1; at < size; {
		m, err := r.ReadAt(buf[:min(int64(len(buf)), size-at)], at)
		if m == 0 && err != nil {
			return 0, err
		}
		if i := bytes.IndexByte(buf[:m], '\n'); i >= 0 {
			return at + int64(i) + 1, nil
		}
		at += int64(m)
	}
	return size, nil
}

// progressReader calls fn with the bytes of each read; a nil fn does
// nothing.
type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.fn != nil && n > 0 {
		p.fn(int64(n))
	}
	return n, err
}
