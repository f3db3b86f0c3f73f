package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue/compose"
)

// Message is one message to one recipient, as a campaign sender hands it
// to the queue.
type Message struct {
	Campaign string            // the campaign's name (reports group by it)
	ID       string            // the message id, "left@right"; generated when empty. It is the asynq task id and the Message-ID header.
	From     string            // bare sender address; Config.From when empty
	To       string            // bare recipient address
	Template string            // the template's name in the template folder
	Data     map[string]any    // the template's data
	Headers  map[string]string // extra headers (List-Unsubscribe, ...)
}

// Status is what became of a message at enqueue.
type Status uint8

// The statuses of an enqueue.
const (
	StatusEnqueued   Status = iota // a task was created
	StatusDuplicate                // a task with this message id exists
	StatusSuppressed               // the recipient is suppressed (counted as 605)
	StatusInvalid                  // refused; Result.Reason says why
)

var statusNames = [...]string{"enqueued", "duplicate", "suppressed", "invalid"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Result is the outcome of enqueueing one message.
type Result struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Queue  string `json:"queue,omitempty"`  // the asynq queue it went to
	Reason string `json:"reason,omitempty"` // why it was refused (StatusInvalid)
}

// ClientOptions are the parts a Client needs besides Redis.
type ClientOptions struct {
	Config       Config                 // the [queue] section (defaults applied)
	Policy       policy.Config          // routes domains to queues
	Templates    *compose.Store         // templates are rendered at enqueue so that a bad one is refused now
	Suppressions *feedback.Suppressions // nil: no suppression check
	Recorder     *feedback.Recorder     // nil: suppressed recipients are not counted
	Now          func() time.Time       // nil: time.Now
}

// Client enqueues messages: it checks each (address syntax, no CR/LF,
// template renders, recipient not suppressed), routes it to the queue of
// its domain's provider group and writes one asynq task per message. Safe
// for concurrent use.
type Client struct {
	rdb  redis.UniversalClient
	opts ClientOptions

	rendered sync.Map // renderKey → struct{}: shapes of input known to render
}

// NewClient returns a client writing to rdb.
func NewClient(rdb redis.UniversalClient, opts ClientOptions) *Client {
	opts.Config = opts.Config.WithDefaults()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Client{rdb: rdb, opts: opts}
}

// From is the sender of messages that name none.
func (c *Client) From() string { return c.opts.Config.From }

// Enqueue enqueues one message. The error is for Redis failures only; a
// refused message is a Result with StatusInvalid.
func (c *Client) Enqueue(ctx context.Context, m Message) (Result, error) {
	rs, err := c.EnqueueBatch(ctx, []Message{m})
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

// EnqueueBatch enqueues messages in two Redis round trips whatever their
// number (the suppression check and one pipeline of enqueues). Results are
// in the order of ms. On a Redis error nothing is known about the batch's
// tasks: enqueueing the same batch again is safe, since a message id
// already enqueued comes back as StatusDuplicate.
func (c *Client) EnqueueBatch(ctx context.Context, ms []Message) ([]Result, error) {
	now := c.opts.Now()
	out := make([]Result, len(ms))
	payloads := make([]SendPayload, len(ms))
	var check []int // indexes of messages that passed the local checks
	for i, m := range ms {
		p, err := c.prepare(m, now)
		out[i] = Result{ID: p.ID}
		if err != nil {
			out[i].Status, out[i].Reason = StatusInvalid, err.Error()
			continue
		}
		payloads[i] = p
		check = append(check, i)
	}
	if len(check) == 0 {
		return out, nil
	}
	if c.opts.Suppressions != nil {
		addrs := make([]string, len(check))
		for j, i := range check {
			addrs[j] = payloads[i].To
		}
		sup, err := c.opts.Suppressions.Check(ctx, addrs)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		kept := check[:0]
		for j, i := range check {
			if sup[j] {
				out[i].Status = StatusSuppressed
				if c.opts.Recorder != nil {
					c.opts.Recorder.Record(now, payloads[i].Domain, 605)
				}
				continue
			}
			kept = append(kept, i)
		}
		check = kept
	}
	msgs := make([]taskMessage, 0, len(check))
	for _, i := range check {
		route := c.opts.Policy.Route(payloads[i].Domain)
		b, err := json.Marshal(payloads[i])
		if err != nil {
			out[i].Status, out[i].Reason = StatusInvalid, fmt.Sprintf("template data cannot be encoded: %v", err)
			continue
		}
		out[i].Queue = route.Queue
		msgs = append(msgs, taskMessage{
			Type: TypeSend, Payload: b, ID: payloads[i].ID, Queue: route.Queue,
			Retry: c.opts.Config.MaxRetry, Timeout: c.opts.Config.TaskTimeout.D(), Retention: c.opts.Config.Retention.D(),
		})
	}
	created, err := pipelineEnqueue(ctx, c.rdb, msgs, now)
	if err != nil {
		return nil, err
	}
	k := 0
	for _, i := range check {
		if out[i].Status == StatusInvalid {
			continue
		}
		if !created[k] {
			out[i].Status = StatusDuplicate
		}
		k++
	}
	return out, nil
}

// prepare checks m and builds its payload.
func (c *Client) prepare(m Message, now time.Time) (SendPayload, error) {
	p := SendPayload{Campaign: m.Campaign, ID: m.ID, From: m.From, To: m.To, Template: m.Template, Data: m.Data, Headers: m.Headers, Enqueued: now}
	if p.From == "" {
		p.From = c.opts.Config.From
	}
	if strings.ContainsAny(m.Campaign, "\r\n") {
		return p, errors.New("campaign: contains CR or LF")
	}
	domain, err := CheckAddress(p.To)
	if err != nil {
		return p, fmt.Errorf("recipient: %w", err)
	}
	p.Domain = domain
	fromDomain, err := CheckAddress(p.From)
	if err != nil {
		return p, fmt.Errorf("from: %w", err)
	}
	if p.ID == "" {
		p.ID = NewMessageID(fromDomain)
	} else if err := CheckMessageID(p.ID); err != nil {
		return p, fmt.Errorf("message id: %w", err)
	}
	if m.Template == "" {
		return p, errors.New("template: no template named")
	}
	if c.opts.Templates != nil {
		if err := c.checkRenders(p); err != nil {
			return p, fmt.Errorf("template %q: %w", m.Template, err)
		}
	}
	return p, nil
}

// checkRenders renders p's message once per shape of input (template,
// data keys, header keys) and again whenever a string value holds CR or
// LF, so that a template that fails is refused at enqueue, not at send.
func (c *Client) checkRenders(p SendPayload) error {
	key, plain := renderKey(p)
	if plain {
		if _, ok := c.rendered.Load(key); ok {
			return nil
		}
	}
	_, err := c.opts.Templates.Render(compose.Input{
		From: p.From, To: p.To, MessageID: p.ID, Campaign: p.Campaign, Template: p.Template,
		Data: p.Data, Headers: p.Headers, Date: p.Enqueued,
	})
	if err != nil {
		return err
	}
	if plain {
		c.rendered.Store(key, struct{}{})
	}
	return nil
}

// renderKey returns the shape of p's input and whether all its string
// values are free of CR and LF (only then may a cached render stand in).
func renderKey(p SendPayload) (string, bool) {
	plain := true
	keys := make([]string, 0, len(p.Data)+len(p.Headers)+1)
	keys = append(keys, p.Template)
	for k, v := range p.Data {
		keys = append(keys, "d:"+k)
		if s, ok := v.(string); ok && strings.ContainsAny(s, "\r\n") {
			plain = false
		} else if !ok {
			if _, isNum := v.(float64); !isNum {
				plain = false // nested values: render every time
			}
		}
	}
	for k, v := range p.Headers {
		keys = append(keys, "h:"+k)
		if strings.ContainsAny(v, "\r\n") {
			plain = false
		}
	}
	sort.Strings(keys[1:])
	return strings.Join(keys, "\x00"), plain
}

// CheckAddress checks that s is a bare email address (no display name, no
// CR or LF, a local part and a domain with a dot) and returns its
// normalised domain. White space (around it too), control characters and
// invisible format characters (U+200B, bidirectional overrides) are
// refused: the address goes into the To header and the SMTP RCPT command
// as it is.
func CheckAddress(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", errors.New("contains CR or LF")
	}
	if s == "" {
		return "", errors.New("empty address")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("not an address: %v", strings.TrimPrefix(err.Error(), "mail: "))
	}
	if a.Name != "" || a.Address != strings.TrimSpace(s) {
		return "", errors.New("not a bare address (no display name or angle brackets)")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", fmt.Errorf("contains white space, a control or an invisible character (%U)", r)
		}
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 {
		return "", errors.New("no local part")
	}
	d, err := bounces.NormalizeDomain(a.Address[at+1:])
	if err != nil {
		return "", errors.New("bad domain")
	}
	if !strings.Contains(d, ".") || strings.HasPrefix(d, "[") {
		return "", errors.New("domain must be a fully qualified name")
	}
	return d, nil
}

// CheckMessageID checks a message id: "left@right" where both sides are
// dot-separated RFC 5322 atoms (letters, digits and !#$%&'*+-/=?^_`{|}~),
// at most 250 bytes. It is the Message-ID header without angle brackets.
func CheckMessageID(id string) error {
	if len(id) > 250 {
		return errors.New("longer than 250 bytes")
	}
	left, right, ok := strings.Cut(id, "@")
	if !ok || strings.Contains(right, "@") {
		return errors.New(`must be "left@right"`)
	}
	for _, side := range []string{left, right} {
		if side == "" || strings.HasPrefix(side, ".") || strings.HasSuffix(side, ".") || strings.Contains(side, "..") {
			return errors.New(`must be "left@right" of dot-separated atoms`)
		}
		for i := 0; i < len(side); i++ {
			if c := side[i]; !isAtext(c) && c != '.' {
				return fmt.Errorf("character %q not allowed", c)
			}
		}
	}
	return nil
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// NewMessageID returns a new random message id at domain.
func NewMessageID(domain string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "@" + domain
}
