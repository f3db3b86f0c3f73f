package compose

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	gmtextproto "github.com/emersion/go-message/textproto"
)

// Input is one message to render.
type Input struct {
	// From and To are single addresses, "name@example.com" or
	// "Display Name <name@example.com>"; a non-ASCII display name is
	// RFC 2047 encoded.
	From, To string
	// MessageID is the msg-id without angle brackets, "left@right", each
	// side made of atext and dots (the queue's message id). Required.
	MessageID string
	// Campaign, when not empty, is written as X-Bounceloop-Campaign.
	Campaign string
	// Template names the template in the Store.
	Template string
	// Data is the template data; templates read it as {{.field}}.
	Data map[string]any
	// Headers are extra header fields (List-Unsubscribe, ...), written in
	// name order. Names are printable ASCII without ':'; the fields Render
	// writes itself (From, To, Subject, Date, Message-ID, MIME-Version,
	// X-Bounceloop-Campaign, Content-*) cannot be set here.
	Headers map[string]string
	// Small selects the small variant: its own text and HTML, no attachments.
	Small bool
	// Date is the Date header; the zero value means time.Now().
	Date time.Time
}

// CampaignHeader is the header field that carries Input.Campaign.
const CampaignHeader = "X-Bounceloop-Campaign"

// Limits on header values, below the 998-octet line limit of RFC 5322 so that
// a value without white space never needs folding.
const (
	maxHeaderValue = 900
	maxHeaderName  = 76
	maxMessageID   = 250
)

const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// Render builds the whole RFC 5322 message for in (see the package
// documentation for its structure). The result has CRLF line endings; its
// length is the message size. The same Input renders to the same bytes.
//
// Errors: ErrNoTemplate (unknown name), ErrNoSmall (Small without a small
// variant), ErrHeaderInjection (CR or LF in a header value or in the
// rendered subject), ErrInvalidHeader, and *TemplateError for a template that
// fails with this data (a missing data field, for one), naming the template
// and file. Render never returns both a message and an error. Safe for
// concurrent use.
func (s *Store) Render(in Input) ([]byte, error) {
	t, ok := s.templates[in.Template]
	if !ok {
		return nil, fmt.Errorf("compose: template %q: %w", in.Template, ErrNoTemplate)
	}
	v := &t.full
	attachments := t.attachments
	if in.Small {
		if t.small == nil {
			return nil, fmt.Errorf("compose: template %q: %w", in.Template, ErrNoSmall)
		}
		v, attachments = t.small, nil
	}

	top, err := topFields(in)
	if err != nil {
		return nil, err
	}

	// Render every template before writing anything, into buffers kept
	// for the next Render.
	bufs := getBuffers()
	defer putBuffers(bufs)
	text, html, out := &bufs[0], &bufs[1], &bufs[2]
	if err := t.subject.Execute(out, in.Data); err != nil {
		return nil, &TemplateError{Template: t.name, File: t.subject.Name(), Err: err}
	}
	subject := string(bytes.TrimSpace(out.Bytes()))
	out.Reset()
	if err := checkValue("subject", subject); err != nil {
		return nil, &TemplateError{Template: t.name, File: t.subject.Name(), Err: err}
	}
	if err := v.text.Execute(text, in.Data); err != nil {
		return nil, &TemplateError{Template: t.name, File: v.text.Name(), Err: err}
	}
	if v.html != nil {
		if err := v.html.Execute(html, in.Data); err != nil {
			return nil, &TemplateError{Template: t.name, File: v.html.Name(), Err: err}
		}
	}

	// Top-level header, in the order written.
	fields := make([][2]string, 0, 12)
	fields = append(fields, top[:3]...) // Date, From, To
	fields = append(fields, [2]string{"Subject", encodeText(subject)}, top[3], [2]string{"MIME-Version", "1.0"})
	fields = append(fields, top[4:]...) // campaign, extra headers

	tag := boundaryTag(in.MessageID)
	var body func(*message.Writer) error
	out.Grow(2048 + text.Len()*2 + html.Len()*2 + attachmentsSize(attachments))
	switch {
	case len(attachments) > 0:
		boundary := "=_bl_mixed_" + tag
		fields = append(fields, [2]string{"Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": boundary})})
		body = func(w *message.Writer) error {
			if err := writeInline(w, tag, text, html, v.html != nil); err != nil {
				return err
			}
			for _, a := range attachments {
				if err := writeAttachment(w, a); err != nil {
					return err
				}
			}
			return nil
		}
	case v.html != nil:
		boundary := "=_bl_alter_" + tag
		fields = append(fields, [2]string{"Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": boundary})})
		body = func(w *message.Writer) error {
			if err := writePart(w, "text/plain", text); err != nil {
				return err
			}
			return writePart(w, "text/html", html)
		}
	default:
		// Text only: the header and the quoted-printable body written
		// directly, as message.CreateWriter would write them (the golden
		// files pin the bytes), without its copy of the header.
		fields = append(fields,
			[2]string{"Content-Type", "text/plain; charset=utf-8"},
			[2]string{"Content-Transfer-Encoding", "quoted-printable"})
		if err := writeFields(out, fields); err != nil {
			return nil, fmt.Errorf("compose: template %q: write header: %w", t.name, err)
		}
		qp := quotedprintable.NewWriter(out)
		if _, err := qp.Write(text.Bytes()); err != nil {
			return nil, fmt.Errorf("compose: template %q: write body: %w", t.name, err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("compose: template %q: write body: %w", t.name, err)
		}
		return bytes.Clone(out.Bytes()), nil
	}

	w, err := message.CreateWriter(out, newHeader(fields))
	if err != nil {
		return nil, fmt.Errorf("compose: template %q: write header: %w", t.name, err)
	}
	if err := body(w); err != nil {
		return nil, fmt.Errorf("compose: template %q: write body: %w", t.name, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compose: template %q: write body: %w", t.name, err)
	}
	return bytes.Clone(out.Bytes()), nil
}

// renderBuffers are the buffers of one Render: text, HTML, output (which
// holds the subject first). Kept in a pool; buffers grown past
// maxPooledBuffer (a large attachment) are not kept.
type renderBuffers [3]bytes.Buffer

const maxPooledBuffer = 64 << 10

var bufferPool = sync.Pool{New: func() any { return new(renderBuffers) }}

func getBuffers() *renderBuffers { return bufferPool.Get().(*renderBuffers) }

func putBuffers(b *renderBuffers) {
	for i := range b {
		if b[i].Cap() > maxPooledBuffer {
			return
		}
		b[i].Reset()
	}
	bufferPool.Put(b)
}

// topFields checks the header values of in and returns Date, From, To,
// Message-ID, then the campaign and extra header fields.
func topFields(in Input) ([][2]string, error) {
	from, err := formatAddress("From", in.From)
	if err != nil {
		return nil, err
	}
	to, err := formatAddress("To", in.To)
	if err != nil {
		return nil, err
	}
	if err := checkMessageID(in.MessageID); err != nil {
		return nil, err
	}
	date := in.Date
	if date.IsZero() {
		date = time.Now()
	}
	fields := [][2]string{
		{"Date", date.Format(dateLayout)},
		{"From", from},
		{"To", to},
		{"Message-ID", "<" + in.MessageID + ">"},
	}
	if in.Campaign != "" {
		if err := checkValue(CampaignHeader, in.Campaign); err != nil {
			return nil, fmt.Errorf("compose: campaign: %w", err)
		}
		fields = append(fields, [2]string{CampaignHeader, encodeText(in.Campaign)})
	}
	if len(in.Headers) > 0 {
		names := make([]string, 0, len(in.Headers))
		for k := range in.Headers {
			names = append(names, k)
		}
		slices.Sort(names)
		seen := make(map[string]string, len(names))
		for _, k := range names {
			ck, err := checkHeaderName(k)
			if err != nil {
				return nil, err
			}
			if prev, dup := seen[ck]; dup {
				return nil, fmt.Errorf("compose: header %q: given twice (as %q and %q): %w", ck, prev, k, ErrInvalidHeader)
			}
			seen[ck] = k
			if err := checkValue(ck, in.Headers[k]); err != nil {
				return nil, fmt.Errorf("compose: header %q: %w", ck, err)
			}
			fields = append(fields, [2]string{ck, mime.QEncoding.Encode("utf-8", in.Headers[k])})
		}
	}
	return fields, nil
}

// reserved are the fields Render writes itself (canonical keys).
var reserved = map[string]bool{
	"From": true, "To": true, "Subject": true, "Date": true,
	"Message-Id": true, "Mime-Version": true, "X-Bounceloop-Campaign": true,
}

// checkHeaderName validates an extra header name and returns its canonical
// form.
func checkHeaderName(k string) (string, error) {
	if strings.ContainsAny(k, "\r\n") {
		return "", fmt.Errorf("compose: header name %q: %w", k, ErrHeaderInjection)
	}
	if k == "" || len(k) > maxHeaderName {
		return "", fmt.Errorf("compose: header name %q: empty or longer than %d bytes: %w", k, maxHeaderName, ErrInvalidHeader)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < '!' || c > '~' || c == ':' {
			return "", fmt.Errorf("compose: header name %q: must be printable ASCII without ':': %w", k, ErrInvalidHeader)
		}
	}
	ck := textproto.CanonicalMIMEHeaderKey(k)
	if reserved[ck] || strings.HasPrefix(ck, "Content-") {
		return "", fmt.Errorf("compose: header %q: set by Render, cannot be overridden: %w", k, ErrInvalidHeader)
	}
	return ck, nil
}

// checkValue rejects CR and LF (ErrHeaderInjection), other control
// characters, invalid UTF-8 and values over maxHeaderValue bytes
// (ErrInvalidHeader).
func checkValue(what, v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("%s %q: %w", what, v, ErrHeaderInjection)
	}
	if len(v) > maxHeaderValue {
		return fmt.Errorf("%s: %d bytes, more than %d: %w", what, len(v), maxHeaderValue, ErrInvalidHeader)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s %q: not valid UTF-8: %w", what, v, ErrInvalidHeader)
	}
	for _, r := range v {
		if r < ' ' && r != '\t' || r == 0x7f {
			return fmt.Errorf("%s %q: control character: %w", what, v, ErrInvalidHeader)
		}
	}
	return nil
}

// formatAddress parses one address and formats it for the header.
func formatAddress(field, s string) (string, error) {
	if plainAddress(s) {
		return s, nil // what parsing and formatting would give, for less
	}
	if err := checkValue(field, s); err != nil {
		return "", fmt.Errorf("compose: %w", err)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("compose: %s %q: %v: %w", field, s, err, ErrInvalidHeader)
	}
	f := a.String()
	if a.Name == "" {
		f = strings.TrimSuffix(strings.TrimPrefix(f, "<"), ">")
	}
	return f, nil
}

// plainAddress reports whether s is a bare address that formatAddress
// would return as it is: a dot-atom local part of letters, digits and
// RFC 5322 atext symbols, "@", and a domain of letters, digits and hyphens
// in labels separated by single dots.
func plainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at >= len(s)-1 || len(s) > maxHeaderValue {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if !isDotAtom(local) || !dotsBetween(local) || !dotsBetween(domain) {
		return false
	}
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// dotsBetween reports whether s neither starts nor ends with a dot nor
// has two in a row.
func dotsBetween(s string) bool {
	return s != "" && s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..")
}

// checkMessageID accepts "left@right" with atext and dots on both sides.
func checkMessageID(id string) error {
	if strings.ContainsAny(id, "\r\n") {
		return fmt.Errorf("compose: Message-ID %q: %w", id, ErrHeaderInjection)
	}
	left, right, ok := strings.Cut(id, "@")
	switch {
	case id == "":
		return fmt.Errorf("compose: Message-ID is empty: %w", ErrInvalidHeader)
	case len(id) > maxMessageID:
		return fmt.Errorf("compose: Message-ID: %d bytes, more than %d: %w", len(id), maxMessageID, ErrInvalidHeader)
	case !ok || left == "" || right == "" || !isDotAtom(left) || !isDotAtom(right):
		return fmt.Errorf("compose: Message-ID %q: want left@right without angle brackets, spaces or specials: %w", id, ErrInvalidHeader)
	}
	return nil
}

func isDotAtom(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// newHeader builds a header that is written in the order of fields.
// go-message writes fields last-added first, hence the reverse. MIME-Version
// and Message-ID keep their usual capitalisation through AddRaw (their
// values never need folding).
func newHeader(fields [][2]string) message.Header {
	var h message.Header
	for i := len(fields) - 1; i >= 0; i-- {
		k, v := fields[i][0], fields[i][1]
		switch k {
		case "MIME-Version", "Message-ID":
			h.AddRaw([]byte(k + ": " + v + "\r\n"))
		default:
			h.Add(k, v)
		}
	}
	return h
}

// writeFields writes fields in order as newHeader's header is written by
// go-message: a field that fits in a 76-character line as "Name: value"
// directly, a longer one (folded) through go-message's own formatting.
func writeFields(w *bytes.Buffer, fields [][2]string) error {
	for _, f := range fields {
		k, v := f[0], f[1]
		if k != "MIME-Version" && k != "Message-ID" {
			k = textproto.CanonicalMIMEHeaderKey(k)
			if len(k)+2+len(v) > 76 {
				var h gmtextproto.Header
				h.Add(k, v)
				if err := gmtextproto.WriteHeader(w, h); err != nil {
					return err
				}
				w.Truncate(w.Len() - 2) // the blank line that ends a header
				continue
			}
		}
		w.WriteString(k)
		w.WriteString(": ")
		w.WriteString(v)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	return nil
}

// boundaryTag derives the boundary suffix from the Message-ID. Boundaries
// start with "=_", which quoted-printable and base64 never produce.
func boundaryTag(id string) string {
	h := fnv.New64a()
	io.WriteString(h, id)
	return fmt.Sprintf("%016x", h.Sum64())
}

func writeInline(w *message.Writer, tag string, text, html *bytes.Buffer, hasHTML bool) error {
	if !hasHTML {
		return writePart(w, "text/plain", text)
	}
	alt, err := w.CreatePart(newHeader([][2]string{
		{"Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": "=_bl_alter_" + tag})},
	}))
	if err != nil {
		return err
	}
	if err := writePart(alt, "text/plain", text); err != nil {
		return err
	}
	if err := writePart(alt, "text/html", html); err != nil {
		return err
	}
	return alt.Close()
}

func writePart(w *message.Writer, mediaType string, body *bytes.Buffer) error {
	p, err := w.CreatePart(newHeader([][2]string{
		{"Content-Type", mediaType + "; charset=utf-8"},
		{"Content-Disposition", "inline"},
		{"Content-Transfer-Encoding", "quoted-printable"},
	}))
	if err != nil {
		return err
	}
	if _, err := p.Write(body.Bytes()); err != nil {
		return err
	}
	return p.Close()
}

func writeAttachment(w *message.Writer, a attachment) error {
	p, err := w.CreatePart(newHeader([][2]string{
		{"Content-Type", a.contentType},
		{"Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.filename})},
		{"Content-Transfer-Encoding", "base64"},
	}))
	if err != nil {
		return err
	}
	if _, err := p.Write(a.data); err != nil {
		return err
	}
	return p.Close()
}

func attachmentsSize(as []attachment) int {
	n := 0
	for _, a := range as {
		n += len(a.data)*4/3 + len(a.data)/57*2 + 256
	}
	return n
}

// encodeText encodes an unstructured header value (RFC 2047) when it is not
// plain ASCII. ASCII text containing "=?" is encoded too (as base64 words),
// so that no reader decodes it as an encoded word it never was.
func encodeText(s string) string {
	if !strings.Contains(s, "=?") {
		return mime.QEncoding.Encode("utf-8", s)
	}
	var b strings.Builder
	for len(s) > 0 {
		n := min(len(s), 45) // 60 base64 characters: words stay under 75
		for n < len(s) && n > 1 && !utf8.RuneStart(s[n]) {
			n--
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("=?utf-8?b?")
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(s[:n])))
		b.WriteString("?=")
		s = s[n:]
	}
	return b.String()
}
