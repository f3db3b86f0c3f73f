package bounces

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// DailyCount is one cell of the wide CSV export: how many answers with
// reply code Code came from recipient domain Domain in the bucket (a day)
// starting at Start.
type DailyCount struct {
	Start  time.Time // bucket start, UTC
	Code   int       // basic reply code, or the export's 200, 499, 605
	Domain string    // normalised domain, or "(other)" for all the others
	Count  int64     // > 0
}

// exportColumn is one column of the export's header.
type exportColumn struct {
	name   string // the header as written
	code   int
	domain string
	ok     bool // a count column that could be read
}

// ExportReader reads the wide CSV export of the original analysis: a
// "timestamp" column of bucket starts in UNIX seconds and one column per
// reply code and recipient domain, headed "<code> (<domain>)" and
// decorated with "count(campaign)" anywhere (before or after, with any
// spacing, in any case): "count(campaign) 452 (gmail.com)". The domain
// "(other)" collects all other domains; "count(campaign) 499 ((other))"
// is its column. Domains are normalised with NormalizeDomain.
//
// Fields may be quoted as RFC 4180 says, but a record cannot span lines.
// Each non-empty, non-zero cell becomes one DailyCount, row by row and left
// to right; empty cells are zero. A column whose header cannot be read is
// reported once by Next, as a *RecordError at the header's line naming the
// column, and ignored. A cell that is not a count is a *RecordError naming
// the line and the column; the rest of its row still counts. A row with a
// bad timestamp, a different number of fields than the header or a line
// longer than MaxLineBytes is a *RecordError and skipped whole.
//
// An ExportReader streams: memory does not grow with the number of rows. It
// is not safe for concurrent use.
type ExportReader struct {
	lines      lineReader
	headerLine int
	tsCol      int // index of the timestamp column
	cols       []exportColumn
	pending    []*RecordError // the header's bad columns, reported first
	row        []string       // the fields of the current row
	col        int            // the next field of row to look at
	start      time.Time      // the current row's bucket
	rowLine    int
	rowOff     int64
}

// NewExportReader reads the header of the export in r and returns a reader
// of its counts; name is used in errors. It fails when the input is empty,
// the header has no "timestamp" column (or two), no column it can read, or
// on a read error; the error names the column or says what is missing.
func NewExportReader(r io.Reader, name string) (*ExportReader, error) {
	x := &ExportReader{lines: newLineReader(r, name)}
	var line []byte
	for {
		l, tooLong, err := x.lines.read()
		if err == io.EOF {
			return nil, fmt.Errorf("bounces: %s: empty export, want a header with a \"timestamp\" column", name)
		}
		if err != nil {
			return nil, err
		}
		if tooLong {
			return nil, fmt.Errorf("bounces: %s:%d: header longer than %d bytes", name, x.lines.line, x.lines.max)
		}
		if !isBlank(l) {
			line = l
			break
		}
	}
	x.headerLine = x.lines.line
	fields, reason := splitCSVLine(string(line), nil)
	if reason != "" {
		return nil, fmt.Errorf("bounces: %s:%d: header: %s", name, x.headerLine, reason)
	}
	x.cols = make([]exportColumn, len(fields))
	ts, n := -1, 0
	for i, h := range fields {
		h = strings.TrimSpace(h)
		x.cols[i].name = h
		if strings.EqualFold(h, "timestamp") {
			if ts >= 0 {
				return nil, fmt.Errorf("bounces: %s:%d: header: columns %d and %d are both %q", name, x.headerLine, ts+1, i+1, h)
			}
			ts = i
			continue
		}
		code, domain, reason := parseExportColumn(h)
		if reason != "" {
			x.pending = append(x.pending, &RecordError{File: name, Line: x.headerLine, Offset: x.lines.off,
				Reason: fmt.Sprintf("column %d %q: %s; column ignored", i+1, clip(h), reason)})
			continue
		}
		x.cols[i] = exportColumn{name: h, code: code, domain: domain, ok: true}
		n++
	}
	if ts < 0 {
		return nil, fmt.Errorf("bounces: %s:%d: header: no \"timestamp\" column", name, x.headerLine)
	}
	if n == 0 {
		return nil, fmt.Errorf("bounces: %s:%d: header: no \"<code> (<domain>)\" column", name, x.headerLine)
	}
	x.tsCol = ts
	return x, nil
}

// Columns returns the number of count columns the reader understood.
func (x *ExportReader) Columns() int {
	n := 0
	for _, c := range x.cols {
		if c.ok {
			n++
		}
	}
	return n
}

// Next returns the next non-zero count. At the end it returns io.EOF; for
// a bad header column, row or cell a *RecordError (call Next again to go
// on); for a read error, that error (wrapped). The count is zero whenever
// the error is not nil.
func (x *ExportReader) Next() (DailyCount, error) {
	if len(x.pending) > 0 {
		e := x.pending[0]
		x.pending = x.pending[1:]
		return DailyCount{}, e
	}
	for {
		for x.col < len(x.row) {
			i := x.col
			x.col++
			c := x.cols[i]
			if !c.ok {
				continue
			}
			cell := strings.TrimSpace(x.row[i])
			if cell == "" || cell == "0" {
				continue
			}
			n, ok := parseCount(cell)
			if !ok {
				return DailyCount{}, &RecordError{File: x.lines.name, Line: x.rowLine, Offset: x.rowOff,
					Reason: fmt.Sprintf("column %q: %q is not a count", clip(c.name), clip(cell))}
			}
			if n == 0 {
				continue
			}
			return DailyCount{Start: x.start, Code: c.code, Domain: c.domain, Count: n}, nil
		}
		if err := x.nextRow(); err != nil {
			return DailyCount{}, err
		}
	}
}

// nextRow reads the next row into x.row.
func (x *ExportReader) nextRow() error {
	x.row, x.col = x.row[:0], 0
	for {
		line, tooLong, err := x.lines.read()
		if err != nil {
			return err
		}
		if tooLong {
			return x.lines.tooLongError()
		}
		if isBlank(line) {
			continue
		}
		row, reason := splitCSVLine(string(line), x.row[:0])
		if reason != "" {
			return x.lines.recordError("%s", reason)
		}
		if len(row) != len(x.cols) {
			return x.lines.recordError("%d fields, the header has %d; row skipped", len(row), len(x.cols))
		}
		ts := strings.TrimSpace(row[x.tsCol])
		start, ok := parseUnix(ts)
		if !ok {
			return x.lines.recordError("timestamp: %q is not UNIX seconds; row skipped", clip(ts))
		}
		x.row, x.start = row, start
		x.rowLine, x.rowOff = x.lines.line, x.lines.off
		return nil
	}
}

// parseCount reads a non-negative decimal integer.
func parseCount(s string) (int64, bool) {
	if len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

const exportDecoration = "count(campaign)"

// parseExportColumn reads a "<code> (<domain>)" header, with or without
// the count(campaign) decoration.
func parseExportColumn(h string) (code int, domain, reason string) {
	s := h
	if i := indexFoldASCII(s, exportDecoration); i >= 0 {
		s = s[:i] + " " + s[i+len(exportDecoration):]
	}
	s = strings.TrimSpace(s)
	const want = `want "<code> (<domain>)"`
	if len(s) < 3 || !isDigit(s[0]) || s[0] == '0' || !isDigit(s[1]) || !isDigit(s[2]) || len(s) > 3 && isDigit(s[3]) {
		return 0, "", "no reply code, " + want
	}
	code = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	rest := strings.TrimSpace(s[3:])
	if len(rest) < 2 || rest[0] != '(' || rest[len(rest)-1] != ')' {
		return 0, "", "no (domain), " + want
	}
	d := strings.TrimSpace(rest[1 : len(rest)-1])
	if d == "" {
		return 0, "", "empty domain"
	}
	domain, err := NormalizeDomain(d)
	if err != nil || domain == "" {
		return 0, "", fmt.Sprintf("bad domain %q", clip(d))
	}
	return code, domain, ""
}

// indexFoldASCII is strings.Index, ignoring ASCII case.
func indexFoldASCII(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

var errCSVQuote = errors.New(`bare " in a field, or a quoted field not closed on its line`)

// splitCSVLine splits one CSV line into fields, appending to dst. Quoted
// fields follow RFC 4180 ("" is a quote) but must end on the line.
func splitCSVLine(line string, dst []string) ([]string, string) {
	for {
		if len(line) > 0 && line[0] == '"' {
			var b strings.Builder
			i := 1
			for {
				j := strings.IndexByte(line[i:], '"')
				if j < 0 {
					return dst, errCSVQuote.Error()
				}
				b.WriteString(line[i : i+j])
				i += j + 1
				if i < len(line) && line[i] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			dst = append(dst, b.String())
			line = line[i:]
			if line == "" {
				return dst, ""
			}
			if line[0] != ',' {
				return dst, errCSVQuote.Error()
			}
			line = line[1:]
			continue
		}
		end := strings.IndexByte(line, ',')
		if end < 0 {
			if strings.IndexByte(line, '"') >= 0 {
				return dst, errCSVQuote.Error()
			}
			return append(dst, line), ""
		}
		if strings.IndexByte(line[:end], '"') >= 0 {
			return dst, errCSVQuote.Error()
		}
		dst = append(dst, line[:end])
		line = line[end+1:]
	}
}
