package bounces

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// MaxLineBytes is the longest line (without its end) the line-based readers
// (NDJSONReader, PostfixReader, ExportReader) accept. A longer line is
// skipped whole and reported as a *RecordError; it is never held in memory
// beyond this size.
const MaxLineBytes = 1 << 20

// lineReader reads lines of at most max bytes from a bufio.Reader and
// counts them. Memory stays bounded by max whatever the input.
type lineReader struct {
	br   *bufio.Reader
	name string
	max  int
	line int   // number of the line last returned, 1-based
	off  int64 // offset of the line last returned
	next int64 // offset of the next line
	buf  []byte
	err  error // sticky: io.EOF or the read error
}

func newLineReader(r io.Reader, name string) lineReader {
	return lineReader{br: bufio.NewReaderSize(r, 64<<10), name: name, max: MaxLineBytes}
}

// read returns the next line without its "\n" or "\r\n". tooLong reports a
// line over max bytes, which was consumed and dropped. The line is valid
// until the next call. err is io.EOF at the end, or a wrapped read error.
func (l *lineReader) read() (line []byte, tooLong bool, err error) {
	if l.err != nil {
		return nil, false, l.err
	}
	l.buf = l.buf[:0]
	l.off = l.next
	n := 0 // bytes of the line, including its end
	for {
		frag, err := l.br.ReadSlice('\n')
		n += len(frag)
		l.next += int64(len(frag))
		if err == bufio.ErrBufferFull {
			if !tooLong && len(l.buf)+len(frag) <= l.max+2 {
				l.buf = append(l.buf, frag...)
			} else {
				tooLong = true
				l.buf = l.buf[:0]
			}
			continue
		}
		if err == io.EOF {
			if n == 0 {
				l.err = io.EOF
				return nil, false, io.EOF
			}
			l.err = io.EOF // returned by the next call
		} else if err != nil {
			l.err = fmt.Errorf("bounces: %s: read: %w", l.name, err)
			return nil, false, l.err
		}
		l.line++
		if tooLong {
			return nil, true, nil
		}
		line = frag
		if len(l.buf) > 0 {
			l.buf = append(l.buf, frag...)
			line = l.buf
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
		}
		if len(line) > l.max {
			return nil, true, nil
		}
		if l.line == 1 {
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		return line, false, nil
	}
}

var utf8BOM = []byte("\xef\xbb\xbf")

// recordError returns a *RecordError for the line last read.
func (l *lineReader) recordError(format string, args ...any) *RecordError {
	return &RecordError{File: l.name, Line: l.line, Offset: l.off, Reason: fmt.Sprintf(format, args...)}
}

func (l *lineReader) tooLongError() *RecordError {
	return l.recordError("line longer than %d bytes", l.max)
}

// isBlank reports whether b holds only spaces, tabs and carriage returns.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// NDJSONReader reads events in the design's NDJSON format, one JSON object
// per line:
//
//	{"time":"2018-05-17T08:03:11Z","recipient":"jana@centrum.sk","code":554,"enhanced":"5.7.1","text":"554 5.7.1 Message rejected as spam","source":"smtp"}
//
// time is RFC 3339 or UNIX seconds (a JSON number or a numeric string, with
// an optional decimal fraction) and is returned in UTC; code is the basic
// reply code, an integer from 100 to 999 (a numeric string is accepted);
// campaign, message_id, recipient, domain, enhanced, text and source are
// optional strings (null is the same as absent). domain, when absent, is
// taken from recipient; both are normalised with Event.Normalize. source is
// one of the names ParseSource knows; absent, it is SourceUnset. Unknown
// fields are ignored and blank lines skipped. Keys match exactly (unlike
// encoding/json, "Code" is not "code"); of a repeated key the last counts.
//
// A line that is not a JSON object, lacks time or code, holds a value of
// the wrong type or a bad value, or is longer than MaxLineBytes is returned
// as a *RecordError with its line number and the reason, and reading goes
// on. Lines are decoded by a hand-written scanner; a line it does not
// understand (escapes, nested values, anything unusual) is decoded by
// encoding/json with the same result.
//
// An NDJSONReader streams: memory does not grow with the input. It is not
// safe for concurrent use.
type NDJSONReader struct {
	lines lineReader
	keys  keyOrder
	day   dayCache
}

// NewNDJSONReader returns a reader of the events in r; name is used in
// errors ("-" for standard input).
func NewNDJSONReader(r io.Reader, name string) *NDJSONReader {
	return &NDJSONReader{lines: newLineReader(r, name)}
}

// Next returns the next event. At the end it returns io.EOF; for a bad line
// a *RecordError (call Next again to go on); for a read error, that error
// (wrapped). The event is zero whenever the error is not nil.
func (r *NDJSONReader) Next() (Event, error) {
	return r.next(false)
}

// NextBorrowed is Next without the one allocation per event: the strings of
// the event it returns share memory with the reader's buffer and are valid
// only until the next call of Next or NextBorrowed; a caller that keeps one
// must copy it (strings.Clone). It is meant for consumers that use each
// event at once, like a report counting events per day, domain and code.
// Errors are the same as Next's and own their memory.
func (r *NDJSONReader) NextBorrowed() (Event, error) {
	return r.next(true)
}

// EventKey is what a report counts of an event: its time in UNIX seconds
// (Event.Time.Unix()), its normalised domain (Event.Domain) and its reply
// code (Event.Code).
type EventKey struct {
	Unix   int64
	Domain string
	Code   int
}

// NextKey is NextBorrowed for consumers that need only the EventKey of each
// event: it reads the same lines, skips the same ones with the same
// errors, and returns the key of the event NextBorrowed would return,
// without building the rest of it. Domain shares memory with the reader's
// buffer and is valid only until the next call.
func (r *NDJSONReader) NextKey() (EventKey, error) {
	for {
		line, tooLong, err := r.lines.read()
		if err != nil {
			return EventKey{}, err
		}
		if tooLong {
			return EventKey{}, r.lines.tooLongError()
		}
		if isBlank(line) {
			continue
		}
		s := unsafe.String(unsafe.SliceData(line), len(line))
		var f eventFields
		if f.scanFastKeys(s, &r.keys) {
			if k, ok := f.key(&r.day); ok {
				return k, nil
			}
		}
		// Anything unusual, valid or not, is decoded in full.
		ev, reason := decodeEventString(s, line, nil)
		if reason != "" {
			return EventKey{}, r.lines.recordError("%s", reason)
		}
		return EventKey{Unix: ev.Time.Unix(), Domain: ev.Domain, Code: ev.Code}, nil
	}
}

// Lines returns the number of lines read so far, blank and bad ones
// included: after io.EOF, the number of lines of the input.
func (r *NDJSONReader) Lines() int { return r.lines.line }

func (r *NDJSONReader) next(borrow bool) (Event, error) {
	for {
		line, tooLong, err := r.lines.read()
		if err != nil {
			return Event{}, err
		}
		if tooLong {
			return Event{}, r.lines.tooLongError()
		}
		if isBlank(line) {
			continue
		}
		var s string
		if borrow {
			s = unsafe.String(unsafe.SliceData(line), len(line))
		} else {
			s = string(line)
		}
		ev, reason := decodeEventString(s, line, &r.keys)
		if reason != "" {
			return Event{}, r.lines.recordError("%s", reason)
		}
		return ev, nil
	}
}

// DecodeEvent decodes one event in the NDJSON format (a single JSON object,
// surrounding white space allowed), with the rules of NDJSONReader.
func DecodeEvent(b []byte) (Event, error) {
	ev, reason := decodeEventLine(b)
	if reason != "" {
		return Event{}, fmt.Errorf("bounces: event: %s", reason)
	}
	return ev, nil
}

// decodeEventLine decodes one line; reason is empty on success.
func decodeEventLine(line []byte) (Event, string) {
	return decodeEventString(string(line), line, nil)
}

// decodeEventString decodes one line, given both as s and as line (the
// same bytes); the event's strings share s's memory. reason, when not
// empty, never does. o, when not nil, is the key order of the lines
// before (see keyOrder).
func decodeEventString(s string, line []byte, o *keyOrder) (Event, string) {
	var f eventFields
	if !f.scanFastKeys(s, o) {
		f = eventFields{}
		if reason := f.scanSlow(line); reason != "" {
			return Event{}, reason
		}
	}
	return f.event()
}

// jsonKind is the type of a JSON value as the event decoder sees it.
type jsonKind uint8

const (
	jsonAbsent jsonKind = iota
	jsonNull
	jsonString
	jsonNumber
	jsonBool
	jsonOther // object or array
)

var jsonKindNames = [...]string{"absent", "null", "a string", "a number", "a boolean", "an object or array"}

// jsonValue is one known field of a line: its kind and, for a string, its
// decoded text, for a number, its literal.
type jsonValue struct {
	kind jsonKind
	s    string
}

// eventFields holds the known fields of one line. Both decoders fill it and
// event interprets it, so they cannot disagree on meaning.
type eventFields struct {
	time, campaign, messageID, recipient, domain, code, enhanced, text, source jsonValue
}

// fieldOf returns the slot of a known key, or noSlot.
func fieldOf(key string) fieldSlot {
	// By length first: each case then compares a few bytes.
	switch len(key) {
	case 4:
		switch key {
		case "time":
			return slotTime
		case "code":
			return slotCode
		case "text":
			return slotText
		}
	case 6:
		switch key {
		case "domain":
			return slotDomain
		case "source":
			return slotSource
		}
	case 8:
		switch key {
		case "campaign":
			return slotCampaign
		case "enhanced":
			return slotEnhanced
		}
	case 9:
		if key == "recipient" {
			return slotRecipient
		}
	case 10:
		if key == "message_id" {
			return slotMessageID
		}
	}
	return noSlot
}

// field returns the value of a known key, or nil.
func (f *eventFields) field(key string) *jsonValue {
	if k := fieldOf(key); k != noSlot {
		return f.slot(k)
	}
	return nil
}

// scanFast reads s when it is a JSON object whose keys are plain strings
// and whose values are plain strings (no escapes, valid UTF-8), numbers,
// true, false or null. It returns false for anything else, valid or not,
// leaving the line to scanSlow. When it returns true, s is valid JSON and
// the fields hold what encoding/json would find.
func (f *eventFields) scanFast(s string) bool {
	return f.scanFastKeys(s, nil)
}

// fieldSlot numbers the known fields in the order of eventFields; noSlot
// is an unknown key.
type fieldSlot uint8

const (
	slotTime fieldSlot = iota
	slotCampaign
	slotMessageID
	slotRecipient
	slotDomain
	slotCode
	slotEnhanced
	slotText
	slotSource
	numSlots
	noSlot = numSlots
)

// slot returns the jsonValue of a slot below numSlots.
func (f *eventFields) slot(k fieldSlot) *jsonValue {
	return &(*[numSlots]jsonValue)(unsafe.Pointer(f))[k]
}

// keyPattern is `"key":` of a known key, as words compared at once.
type keyPattern struct {
	n      int    // length, 7 to 13
	lo, hi uint64 // the first 8 bytes (0 for the 8th when n is 7), the last 8
	slot   fieldSlot
}

var keyPatterns = func() (p [numSlots]keyPattern) {
	keys := [numSlots]string{"time", "campaign", "message_id", "recipient", "domain", "code", "enhanced", "text", "source"}
	for k, key := range keys {
		pat := `"` + key + `":`
		p[k] = keyPattern{n: len(pat), lo: load64(pat+"\x00", 0), slot: fieldSlot(k)}
		if len(pat) >= 8 {
			p[k].hi = load64(pat, len(pat)-8)
		}
	}
	return p
}()

// match reports whether s[i:] starts with the pattern. It needs 8 bytes
// at i (a valid line has them after any key: a value and "}").
func (p *keyPattern) match(s string, i int) bool {
	if i+max(p.n, 8) > len(s) {
		return false
	}
	x := load64(s, i)
	if p.n < 8 {
		x &= 1<<56 - 1 // the pattern's 8th byte is 0
	}
	return x == p.lo && (p.n <= 8 || load64(s, i+p.n-8) == p.hi)
}

// maxKeyOrder is the most keys a keyOrder remembers.
const maxKeyOrder = 16

// keyOrder remembers the known keys of the lines read, in order: lines of
// one producer repeat them, so that each key of the next line is checked
// with one comparison instead of being scanned and looked up. The zero
// value is empty.
type keyOrder struct {
	n    int
	keys [maxKeyOrder]*keyPattern
}

// scanFastKeys is scanFast; o, when not nil, is the key order of the
// lines before, which it updates.
func (f *eventFields) scanFastKeys(s string, o *keyOrder) bool {
	i := skipJSONSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	i = skipJSONSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return skipJSONSpace(s, i+1) == len(s)
	}
	for k := 0; ; k++ {
		var p *jsonValue
		if o != nil && k < o.n && o.keys[k].match(s, i) {
			// `"key":` as in the lines before.
			p = f.slot(o.keys[k].slot)
			i += o.keys[k].n
		} else {
			if i >= len(s) || s[i] != '"' {
				return false
			}
			key, j, ok := fastJSONString(s, i)
			if !ok {
				return false
			}
			i = skipJSONSpace(s, j)
			if i >= len(s) || s[i] != ':' {
				return false
			}
			i++
			slot := fieldOf(key)
			if slot != noSlot {
				p = f.slot(slot)
			}
			if o != nil && k < maxKeyOrder && k <= o.n {
				if slot != noSlot && j == i-1 { // `"key":` with no space
					o.keys[k] = &keyPatterns[slot]
					o.n = k + 1
				} else {
					o.n = k
				}
			}
		}
		i = skipJSONSpace(s, i)
		v, j, ok := fastJSONValue(s, i)
		if !ok {
			return false
		}
		if p != nil {
			*p = v
		}
		i = skipJSONSpace(s, j)
		if i >= len(s) {
			return false
		}
		switch s[i] {
		case ',':
			i = skipJSONSpace(s, i+1)
		case '}':
			return skipJSONSpace(s, i+1) == len(s)
		default:
			return false
		}
	}
}

func skipJSONSpace(s string, i int) int {
	// One comparison in the usual case: no white space at all.
	for i < len(s) && s[i] <= ' ' && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
		i++
	}
	return i
}

// jsonStringStop flags the bytes fastJSONString must look at: the quote,
// the backslash, control characters and the bytes of non-ASCII runes.
var jsonStringStop = func() (t [256]bool) {
	for c := range t {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf
	}
	return t
}()

// fastJSONString reads the string starting with the quote at s[i]; it
// fails on escapes, control characters and invalid UTF-8.
func fastJSONString(s string, i int) (string, int, bool) {
	// Eight bytes at a time: the first byte of a word that is a quote, a
	// backslash, a control character or non-ASCII ends the plain run. A
	// quote ends the string; anything else goes through the byte loop.
	j := i + 1
	for ; j+8 <= len(s); j += 8 {
		if m := stopMask(load64(s, j)); m != 0 {
			j += bits.TrailingZeros64(m) >> 3
			if s[j] == '"' {
				return s[i+1 : j], j + 1, true
			}
			return fastJSONStringLoop(s, i)
		}
	}
	for ; j < len(s); j++ {
		if c := s[j]; jsonStringStop[c] {
			if c == '"' {
				return s[i+1 : j], j + 1, true
			}
			return fastJSONStringLoop(s, i)
		}
	}
	return "", 0, false
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// load64 returns the eight bytes of s at i as a little-endian word.
func load64(s string, i int) uint64 {
	w := s[i : i+8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// stopMask returns a word whose lowest set bit, if any, is the high bit of
// the first byte of x that jsonStringStop flags (a quote, a backslash, a
// byte below 0x20 or from 0x80). Bits above the lowest may be spurious (a
// borrow of the classic "has zero byte" test); the lowest is exact.
func stopMask(x uint64) uint64 {
	q := x ^ (swarLo * '"')
	b := x ^ (swarLo * '\\')
	return ((q-swarLo)&^q | (b-swarLo)&^b | (x-swarLo*0x20)&^x | x) & swarHi
}

// fastJSONStringLoop is fastJSONString byte by byte.
func fastJSONStringLoop(s string, i int) (string, int, bool) {
	ascii := true
	for j := i + 1; j < len(s); j++ {
		c := s[j]
		if !jsonStringStop[c] {
			continue
		}
		switch {
		case c == '"':
			v := s[i+1 : j]
			if !ascii && !utf8.ValidString(v) {
				return "", 0, false
			}
			return v, j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		default:
			ascii = false
		}
	}
	return "", 0, false
}

// plainASCII reports whether s holds only bytes from 0x20 to 0x7f other
// than the backslash. It does not look for the quote: its callers cut s at
// the first one.
func plainASCII(s string) bool {
	const lo, hi = swarLo, swarHi
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s, i)
		// A byte's high bit is set in the mask when the byte is >= 0x80,
		// < 0x20, or a backslash (the classic "has zero byte" tests, which
		// are exact for bytes below 0x80).
		b := x ^ (lo * '\\')
		if (x|(x-lo*0x20)|(b-lo)&^b)&hi != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if jsonStringStop[s[i]] {
			return false
		}
	}
	return true
}

// fastJSONValue reads a plain value at s[i].
func fastJSONValue(s string, i int) (jsonValue, int, bool) {
	if i >= len(s) {
		return jsonValue{}, 0, false
	}
	switch c := s[i]; {
	case c == '"':
		v, j, ok := fastJSONString(s, i)
		return jsonValue{jsonString, v}, j, ok
	case c == '-' || c >= '0' && c <= '9':
		j := jsonNumberEnd(s, i)
		if j < 0 {
			return jsonValue{}, 0, false
		}
		return jsonValue{jsonNumber, s[i:j]}, j, true
	case c == 't' && len(s)-i >= 4 && s[i:i+4] == "true":
		return jsonValue{jsonBool, "true"}, i + 4, true
	case c == 'f' && len(s)-i >= 5 && s[i:i+5] == "false":
		return jsonValue{jsonBool, "false"}, i + 5, true
	case c == 'n' && len(s)-i >= 4 && s[i:i+4] == "null":
		return jsonValue{jsonNull, ""}, i + 4, true
	}
	return jsonValue{}, 0, false
}

// jsonNumberEnd returns the end of the JSON number at s[i], or -1 when it
// is not one (RFC 8259 grammar).
func jsonNumberEnd(s string, i int) int {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return -1
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return -1
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i
}

// scanSlow decodes the line with encoding/json; it returns the reason when
// the line is not a JSON object.
func (f *eventFields) scanSlow(line []byte) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return "not a JSON object"
		}
		return "not a JSON object: " + err.Error()
	}
	if m == nil {
		return "not a JSON object"
	}
	for k, raw := range m {
		p := f.field(k)
		if p == nil || len(raw) == 0 {
			continue
		}
		switch raw[0] {
		case '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "not a JSON object: " + err.Error() // cannot happen: raw is valid
			}
			*p = jsonValue{jsonString, s}
		case 'n':
			*p = jsonValue{jsonNull, ""}
		case 't', 'f':
			*p = jsonValue{jsonBool, string(raw)}
		case '{', '[':
			*p = jsonValue{jsonOther, ""}
		default:
			*p = jsonValue{jsonNumber, string(raw)}
		}
	}
	return ""
}

// event interprets the fields; reason is empty on success.
func (f *eventFields) event() (Event, string) {
	var ev Event
	var reason string
	if ev.Time, reason = eventTime(f.time); reason != "" {
		return Event{}, reason
	}
	if ev.Code, reason = eventCode(f.code); reason != "" {
		return Event{}, reason
	}
	if ev.Campaign, reason = eventString("campaign", f.campaign); reason != "" {
		return Event{}, reason
	}
	if ev.MessageID, reason = eventString("message_id", f.messageID); reason != "" {
		return Event{}, reason
	}
	if ev.Recipient, reason = eventString("recipient", f.recipient); reason != "" {
		return Event{}, reason
	}
	if ev.Domain, reason = eventString("domain", f.domain); reason != "" {
		return Event{}, reason
	}
	if ev.Enhanced, reason = eventString("enhanced", f.enhanced); reason != "" {
		return Event{}, reason
	}
	if ev.Text, reason = eventString("text", f.text); reason != "" {
		return Event{}, reason
	}
	switch f.source.kind {
	case jsonString:
		src, err := ParseSource(f.source.s)
		if err != nil {
			return Event{}, fmt.Sprintf("source: unknown %q", clip(f.source.s))
		}
		ev.Source = src
	case jsonAbsent, jsonNull:
	default:
		return Event{}, "source: want a string, got " + jsonKindNames[f.source.kind]
	}
	given := ev.Domain != ""
	if err := ev.Normalize(); err != nil {
		if errors.Is(err, ErrBadRecipient) {
			return Event{}, "recipient: " + strings.TrimPrefix(err.Error(), ErrBadRecipient.Error()+": ")
		}
		if given {
			return Event{}, fmt.Sprintf("domain: %q is not a domain name", clip(ev.Domain))
		}
		return Event{}, fmt.Sprintf("recipient: %q has no valid domain", clip(ev.Recipient))
	}
	return ev, ""
}

// key returns the EventKey of the event that event would return, when
// that is quick to tell: ok is false for anything unusual (a bad line
// among them), which event must then decode.
func (f *eventFields) key(day *dayCache) (k EventKey, ok bool) {
	if f.time.kind == jsonString {
		k.Unix, ok = day.rfc3339ZUnix(f.time.s)
	}
	if !ok {
		t, reason := eventTime(f.time)
		if reason != "" {
			return EventKey{}, false
		}
		k.Unix = t.Unix()
	}
	if c := f.code.s; f.code.kind == jsonNumber && len(c) == 3 && c[0] >= '1' && c[0] <= '9' && isDigit(c[1]) && isDigit(c[2]) {
		k.Code = int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
	} else {
		code, reason := eventCode(f.code)
		if reason != "" {
			return EventKey{}, false
		}
		k.Code = code
	}
	// Known fields that must be strings when present.
	const okKinds = 1<<jsonAbsent | 1<<jsonNull | 1<<jsonString
	if (1<<f.campaign.kind|1<<f.messageID.kind|1<<f.recipient.kind|1<<f.domain.kind|
		1<<f.enhanced.kind|1<<f.text.kind|1<<f.source.kind)&^okKinds != 0 {
		return EventKey{}, false
	}
	if f.source.kind == jsonString && !knownSource(f.source.s) {
		return EventKey{}, false
	}
	// The domain, as Event.Normalize gives it, in the common cases: a
	// plain lower-case host name, given or after the recipient's last "@".
	if d := f.domain.s; d != "" { // kind is string
		if !plainHost(d) {
			return EventKey{}, false
		}
		k.Domain = d
		return k, true
	}
	if r := f.recipient.s; r != "" {
		at := strings.LastIndexByte(r, '@')
		// DomainOf trims spaces and angle brackets around the address:
		// none must be there.
		if c := r[0]; at < 0 || c <= ' ' || c == '<' || c == '>' || c >= utf8.RuneSelf || !plainHost(r[at+1:]) {
			return EventKey{}, false
		}
		k.Domain = r[at+1:]
	}
	return k, true
}

// plainHost reports whether NormalizeDomain returns d as it is because it
// is a non-empty lower-case ASCII host name without empty labels.
func plainHost(d string) bool {
	return d != "" && d[0] != '.' && d[len(d)-1] != '.' && isASCIILower(d) && !strings.Contains(d, "..")
}

// knownSource reports whether ParseSource accepts s.
func knownSource(s string) bool {
	for _, n := range sourceNames {
		if n == s {
			return true
		}
	}
	return false
}

func eventString(name string, v jsonValue) (string, string) {
	switch v.kind {
	case jsonString:
		return v.s, ""
	case jsonAbsent, jsonNull:
		return "", ""
	}
	return "", name + ": want a string, got " + jsonKindNames[v.kind]
}

// maxUnix is the last second of year 9999.
const maxUnix = 253402300799

func eventTime(v jsonValue) (time.Time, string) {
	switch v.kind {
	case jsonAbsent, jsonNull:
		return time.Time{}, `missing "time"`
	case jsonNumber:
		t, ok := parseUnix(v.s)
		if !ok {
			return time.Time{}, fmt.Sprintf("time: %s is not UNIX seconds after 1970 and before 10000", clip(v.s))
		}
		return t, ""
	case jsonString:
		if t, ok := parseRFC3339Z(v.s); ok {
			return t, ""
		}
		if t, ok := parseUnix(v.s); ok {
			return t, ""
		}
		t, err := time.Parse(time.RFC3339, v.s)
		if err != nil || t.IsZero() {
			return time.Time{}, fmt.Sprintf("time: %q is neither RFC 3339 nor UNIX seconds", clip(v.s))
		}
		return t.UTC(), ""
	}
	return time.Time{}, "time: want a string or a number, got " + jsonKindNames[v.kind]
}

// parseRFC3339Z reads the most common form of RFC 3339 times,
// "2018-05-17T08:03:11Z", from 1970 on, faster than time.Parse. It returns
// false for anything else (other forms, bad values), which time.Parse then
// reads or rejects; for what it accepts, the result is time.Parse's.
func parseRFC3339Z(s string) (time.Time, bool) {
	sec, ok := rfc3339ZUnix(s)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(sec, 0).UTC(), true
}

// rfc3339ZUnix is parseRFC3339Z in UNIX seconds.
func rfc3339ZUnix(s string) (int64, bool) {
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return 0, false
	}
	bad := false
	num2 := func(i int) int {
		a, b := s[i]-'0', s[i+1]-'0' // a byte below '0' wraps past 9
		bad = bad || a > 9 || b > 9
		return int(a)*10 + int(b)
	}
	y := num2(0)*100 + num2(2)
	mo, d, h, mi, sec := num2(5), num2(8), num2(11), num2(14), num2(17)
	if bad || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	return daysFromCivil(y, mo, d)*86400 + int64(h*3600+mi*60+sec), true
}

// dayCache remembers the date of the last time dayCache.rfc3339ZUnix
// read: lines in time order repeat it. The zero value is empty.
type dayCache struct {
	ymd  uint64 // "YYYY-MM-" as load64 reads it
	dd   [2]byte
	ok   bool
	days int64 // the day number of the date
}

// rfc3339ZUnix is rfc3339ZUnix that does not parse again the date of the
// last time it read.
func (c *dayCache) rfc3339ZUnix(s string) (int64, bool) {
	if len(s) != 20 || !c.ok || load64(s, 0) != c.ymd || s[8] != c.dd[0] || s[9] != c.dd[1] {
		sec, ok := rfc3339ZUnix(s)
		if ok {
			*c = dayCache{ymd: load64(s, 0), dd: [2]byte{s[8], s[9]}, ok: true, days: sec / 86400}
		}
		return sec, ok
	}
	// The date is the last one's, valid; the rest as rfc3339ZUnix.
	if s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return 0, false
	}
	h0, h1, m0, m1, s0, s1 := s[11]-'0', s[12]-'0', s[14]-'0', s[15]-'0', s[17]-'0', s[18]-'0'
	if h0 > 9 || h1 > 9 || m0 > 9 || m1 > 9 || s0 > 9 || s1 > 9 {
		return 0, false
	}
	h, mi, sec := int(h0)*10+int(h1), int(m0)*10+int(m1), int(s0)*10+int(s1)
	if h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	return c.days*86400 + int64(h*3600+mi*60+sec), true
}

// daysIn returns the number of days of month mo (1-12) of year y.
func daysIn(mo, y int) int {
	switch mo {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to y-mo-d of
// the proleptic Gregorian calendar, for y >= 0 (H. Hinnant's algorithm).
func daysFromCivil(y, mo, d int) int64 {
	if mo <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (mo + 9) % 12 // March is 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097+doe) - 719468
}

// parseUnix reads positive UNIX seconds with an optional decimal fraction
// ("1526544191", "1526544191.25"); digits past nanoseconds are dropped.
func parseUnix(s string) (time.Time, bool) {
	var sec int64
	i := 0
	for i < len(s) && isDigit(s[i]) {
		sec = sec*10 + int64(s[i]-'0')
		if sec > maxUnix {
			return time.Time{}, false
		}
		i++
	}
	if i == 0 || sec == 0 && i == len(s) {
		return time.Time{}, false
	}
	var nsec int64
	if i < len(s) {
		if s[i] != '.' || i+1 == len(s) {
			return time.Time{}, false
		}
		scale := int64(1e8)
		for i++; i < len(s); i++ {
			if !isDigit(s[i]) {
				return time.Time{}, false
			}
			nsec += int64(s[i]-'0') * scale
			scale /= 10
		}
	}
	if sec == 0 && nsec == 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec).UTC(), true
}

func eventCode(v jsonValue) (int, string) {
	switch v.kind {
	case jsonAbsent, jsonNull:
		return 0, `missing "code"`
	case jsonNumber, jsonString:
		n, err := strconv.Atoi(v.s)
		if err != nil || n < 100 || n > 999 || v.s[0] == '+' {
			return 0, fmt.Sprintf("code: %q is not a reply code (an integer from 100 to 999)", clip(v.s))
		}
		return n, ""
	}
	return 0, "code: want a number, got " + jsonKindNames[v.kind]
}

// AppendNDJSON appends e to dst as one line of the NDJSON format, ending in
// "\n", and returns the extended buffer. Keys come in a fixed order; time is
// written in RFC 3339 (with nanoseconds when there are any) in UTC; code is
// always written, the other fields only when not empty. Strings are escaped
// as JSON requires; invalid UTF-8 becomes U+FFFD.
func AppendNDJSON(dst []byte, e Event) []byte {
	dst = append(dst, `{"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = appendJSONField(dst, "campaign", e.Campaign)
	dst = appendJSONField(dst, "message_id", e.MessageID)
	dst = appendJSONField(dst, "recipient", e.Recipient)
	dst = appendJSONField(dst, "domain", e.Domain)
	dst = append(dst, `,"code":`...)
	dst = strconv.AppendInt(dst, int64(e.Code), 10)
	dst = appendJSONField(dst, "enhanced", e.Enhanced)
	dst = appendJSONField(dst, "text", e.Text)
	dst = appendJSONField(dst, "source", e.Source.String())
	return append(dst, "}\n"...)
}

// WriteNDJSON writes e to w as one line of the NDJSON format (see
// AppendNDJSON).
func WriteNDJSON(w io.Writer, e Event) error {
	var buf [512]byte
	if _, err := w.Write(AppendNDJSON(buf[:0], e)); err != nil {
		return fmt.Errorf("bounces: write event: %w", err)
	}
	return nil
}

func appendJSONField(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, v)
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
