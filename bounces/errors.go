package bounces

import (
	"errors"
	"fmt"
)

// ErrSkipped is wrapped by every *RecordError so callers can count skipped
// records with errors.Is.
var ErrSkipped = errors.New("record skipped")

// RecordError reports one bad record of an input that the parser skipped:
// where it was (file and line, or byte offset when lines do not apply) and
// why. Parsers return it and go on with the next record.
type RecordError struct {
	File   string // the input's name; "-" for standard input
	Line   int    // 1-based line, 0 when not known
	Offset int64  // byte offset of the record, -1 when not known
	Reason string // why the record was skipped
}

// Location returns "file:line", "file@offset" or "file".
func (e *RecordError) Location() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d", e.File, e.Line)
	case e.Offset >= 0:
		return fmt.Sprintf("%s@%d", e.File, e.Offset)
	default:
		return e.File
	}
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("bounces: %s: %s", e.Location(), e.Reason)
}

// Unwrap makes errors.Is(err, ErrSkipped) true.
func (e *RecordError) Unwrap() error { return ErrSkipped }
