package queue

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bounceloop/bounceloop/bounces"
)

// RecipientReader reads a recipients CSV: a header row with an "email"
// column (any case), optional "message_id" and "from" columns, and any
// other columns, which become the template's data fields. It streams.
type RecipientReader struct {
	// DefaultFrom is the sender of rows without a "from" column; it names
	// the domain of derived message ids. Set it to the client's
	// Config.From.
	DefaultFrom string

	r        *csv.Reader
	name     string
	campaign string
	template string
	email    int
	id       int
	from     int
	fields   []string
}

// NewRecipientReader reads the header of r (named name in errors). Each
// message gets campaign and template.
func NewRecipientReader(r io.Reader, name, campaign, template string) (*RecipientReader, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("queue: %s: empty file, want a header with an email column", name)
		}
		return nil, fmt.Errorf("queue: %s:1: %w", name, err)
	}
	rr := &RecipientReader{r: cr, name: name, campaign: campaign, template: template, email: -1, id: -1, from: -1}
	rr.fields = make([]string, len(head))
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		switch strings.ToLower(h) {
		case "email":
			rr.email = i
		case "message_id":
			rr.id = i
		case "from":
			rr.from = i
		}
		rr.fields[i] = h
	}
	if rr.email < 0 {
		return nil, fmt.Errorf("queue: %s:1: no \"email\" column in the header %q", name, strings.Join(head, ","))
	}
	return rr, nil
}

// Next returns the next recipient's message and its line. A row that
// cannot be read is a *bounces.RecordError (reading goes on); io.EOF ends.
// A row without a message_id gets one derived from campaign and address
// (see MessageIDFor), so enqueueing the same file twice enqueues nothing
// twice.
func (rr *RecipientReader) Next() (Message, int, error) {
	rec, err := rr.r.Read()
	if err == io.EOF {
		return Message{}, 0, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return Message{}, pe.StartLine, &bounces.RecordError{File: rr.name, Line: pe.StartLine, Offset: -1, Reason: pe.Err.Error()}
		}
		return Message{}, 0, fmt.Errorf("queue: %s: %w", rr.name, err)
	}
	line, _ := rr.r.FieldPos(0)
	if len(rec) != len(rr.fields) {
		return Message{}, line, &bounces.RecordError{File: rr.name, Line: line, Offset: -1,
			Reason: fmt.Sprintf("%d fields, the header has %d", len(rec), len(rr.fields))}
	}
	m := Message{Campaign: rr.campaign, Template: rr.template, To: strings.TrimSpace(rec[rr.email]), Data: make(map[string]any, len(rec))}
	for i, v := range rec {
		switch i {
		case rr.email:
			m.Data["email"] = m.To
		case rr.id:
			m.ID = strings.TrimSpace(v)
		case rr.from:
			m.From = strings.TrimSpace(v)
		default:
			m.Data[rr.fields[i]] = v
		}
	}
	if m.ID == "" && m.To != "" {
		from := m.From
		if from == "" {
			from = rr.DefaultFrom
		}
		m.ID = MessageIDFor(rr.campaign, m.To, from)
	}
	return m, line, nil
}

// MessageIDFor derives a stable message id from the campaign and the
// recipient: "<32 hex>@<sender domain or bounceloop.invalid>".
func MessageIDFor(campaign, to, from string) string {
	sum := sha256.Sum256([]byte(campaign + "\x00" + strings.ToLower(strings.TrimSpace(to))))
	domain := "bounceloop.invalid"
	if d, err := bounces.DomainOf(from); err == nil && d != "" {
		domain = d
	}
	return hex.EncodeToString(sum[:16]) + "@" + domain
}
