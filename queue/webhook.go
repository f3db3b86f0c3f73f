package queue

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
)

// WebhookConfig is the [webhook] section: POST /bounces on the HTTP
// listener of serve, where an ESP or an MTA delivers later bounces.
type WebhookConfig struct {
	// Secret is the key of the HMAC-SHA256 signature every request must
	// carry (see WebhookSignature). Empty, the default, disables the
	// endpoint: it answers 404. It is better given in the environment
	// variable BOUNCELOOP_WEBHOOK_SECRET, which overrides it. At least
	// MinWebhookSecret bytes.
	Secret string `toml:"secret"`
	// MaxBody is the largest request body accepted, in bytes; a larger one
	// is answered 413. 0 means DefaultWebhookMaxBody (10 MiB); at most
	// MaxWebhookMaxBody (the body is held in memory while it is applied).
	MaxBody int64 `toml:"max_body"`
}

// The webhook's constants.
const (
	// WebhookSecretEnv names the environment variable that overrides
	// WebhookConfig.Secret.
	WebhookSecretEnv = "BOUNCELOOP_WEBHOOK_SECRET"
	// WebhookSignatureHeader is the request header with the body's
	// signature, "sha256=<hex>".
	WebhookSignatureHeader = "X-Bounceloop-Signature"
	// DefaultWebhookMaxBody is WebhookConfig.MaxBody's default.
	DefaultWebhookMaxBody = 10 << 20
	// MaxWebhookMaxBody is the largest WebhookConfig.MaxBody allowed.
	MaxWebhookMaxBody = 1 << 30
	// MinWebhookSecret is the shortest secret allowed, in bytes.
	MinWebhookSecret = 16
)

// WithDefaults returns c with MaxBody's default applied and the secret of
// the environment, when set, in place of the configured one.
func (c WebhookConfig) WithDefaults() WebhookConfig {
	if c.MaxBody == 0 {
		c.MaxBody = DefaultWebhookMaxBody
	}
	if v := os.Getenv(WebhookSecretEnv); v != "" {
		c.Secret = v
	}
	return c
}

// Validate checks the section; errors name the key. Call it on the result
// of WithDefaults to check a secret from the environment too.
func (c WebhookConfig) Validate() error {
	var errs []error
	if c.Secret != "" && len(c.Secret) < MinWebhookSecret {
		errs = append(errs, fmt.Errorf("queue: webhook.secret: must be at least %d bytes (or empty to disable the webhook)", MinWebhookSecret))
	}
	if c.MaxBody < 0 || c.MaxBody > MaxWebhookMaxBody {
		errs = append(errs, fmt.Errorf("queue: webhook.max_body: %d is not in 0..%d (0 means %d)", c.MaxBody, MaxWebhookMaxBody, DefaultWebhookMaxBody))
	}
	return errors.Join(errs...)
}

// WebhookSignature returns the value of the signature header for body:
// "sha256=" and the hex HMAC-SHA256 of the body keyed with secret.
func WebhookSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// WebhookAnswer is the JSON body of the webhook's answers.
type WebhookAnswer struct {
	// Accepted is the number of events taken: applied, or recognised as
	// duplicates of events applied before (LateTally.Duplicates).
	Accepted int `json:"accepted"`
	// LateTally says how many accepted events matched a sent record, how
	// many were duplicates, and what was done (suppressed, resent small,
	// not resent and why); fields that are 0 are left out.
	LateTally
	// Ignored is the number of events with nothing to apply (automatic
	// replies in a bounce message).
	Ignored int `json:"ignored,omitempty"`
	// Skipped lists the records that were not applied and why.
	Skipped []WebhookSkip `json:"skipped,omitempty"`
	// Error says why the request as a whole was refused or stopped.
	Error string `json:"error,omitempty"`
}

// WebhookSkip is one record the webhook did not apply.
type WebhookSkip struct {
	// Line is the 1-based line of the body for NDJSON, 0 (absent) for a
	// bounce message.
	Line   int    `json:"line,omitempty"`
	Reason string `json:"reason"`
}

// Webhook is the handler of POST /bounces: later bounces pushed by an ESP
// or an MTA, applied with Handler.IngestBatch: matched to the sent record
// of their message id, acted on and counted once (see late.go).
//
// The body is either NDJSON events in the design's format (Content-Type
// application/x-ndjson, application/ndjson or application/json), one per
// line, or one bounce message (message/rfc822: a DSN, an ARF report or a
// non-standard bounce, see bounces.ParseMessage; each report is applied
// with its full diagnosis, Report.Diagnose). An event without "time" gets
// the time of the request; one without "source" is SourceWebhook.
// Every request carries WebhookSignatureHeader, "sha256=" and the hex
// HMAC-SHA256 of the body keyed with the secret, compared in constant time.
//
// Answers (a WebhookAnswer as JSON, except 404 and 405):
//
//	200  every event applied: {"accepted":N,"matched":M,"unmatched":U,
//	     "duplicates":D,"suppressed":S,"resent":R,"not_resent":{"no sent
//	     record":K}} (zero counts left out)
//	400  some records could not be read: the others ARE applied, and
//	     {"accepted":N,"skipped":[{"line":L,"reason":"..."}]} names the
//	     rest; resend the skipped lines, fixed (a whole batch sent again
//	     is safe: the events applied before are duplicates, neither acted
//	     on nor counted again); also an empty body or a message that is
//	     not a bounce
//	401  a missing or bad signature
//	404  no secret configured: the webhook is disabled
//	405  a method other than POST
//	413  a body over MaxBody
//	415  another content type
//	503  Redis failed: the events before the failure are applied
//	     ("accepted"), the rest not; retry later
//
// Addresses are not logged above debug level (a keyed hash then). A
// Webhook is safe for concurrent use.
type Webhook struct {
	h   *Handler
	cfg WebhookConfig
	log zerolog.Logger
}

// NewWebhook returns the webhook of h with the configuration c (defaults
// applied by NewWebhook) logging to log.
func NewWebhook(h *Handler, c WebhookConfig, log zerolog.Logger) *Webhook {
	return &Webhook{h: h, cfg: c.WithDefaults(), log: log.With().Str("component", "webhook").Logger()}
}

// webhook is the server's POST /bounces handler.
func (s *Server) webhook() http.Handler {
	return NewWebhook(s.o.Handler, s.o.Webhook, s.o.Log)
}

// The body kinds the webhook takes.
const (
	bodyNDJSON  = "ndjson"
	bodyMessage = "message"
)

// ServeHTTP implements http.Handler.
func (wh *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if wh.cfg.Secret == "" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST only", http.StatusMethodNotAllowed)
		return
	}
	sig, ok := parseSignature(r.Header.Get(WebhookSignatureHeader))
	if !ok {
		wh.log.Warn().Str("remote", r.RemoteAddr).Msg("webhook: missing or malformed signature")
		wh.answer(w, http.StatusUnauthorized, WebhookAnswer{Error: "missing or malformed " + WebhookSignatureHeader + " header (want sha256=<hex HMAC-SHA256 of the body>)"})
		return
	}
	kind, ok := bodyKind(r.Header.Get("Content-Type"))
	if !ok {
		wh.answer(w, http.StatusUnsupportedMediaType, WebhookAnswer{Error: "content type must be application/x-ndjson, application/json or message/rfc822"})
		return
	}
	tooLarge := WebhookAnswer{Error: fmt.Sprintf("body over %d bytes", wh.cfg.MaxBody)}
	if r.ContentLength > wh.cfg.MaxBody {
		wh.answer(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wh.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			wh.answer(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		wh.answer(w, http.StatusBadRequest, WebhookAnswer{Error: "cannot read the body"})
		return
	}
	mac := hmac.New(sha256.New, []byte(wh.cfg.Secret))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sig) {
		wh.log.Warn().Str("remote", r.RemoteAddr).Msg("webhook: bad signature")
		wh.answer(w, http.StatusUnauthorized, WebhookAnswer{Error: "bad signature"})
		return
	}

	ctx := r.Context()
	now := wh.h.now()
	var ans WebhookAnswer
	var events []lineEvent
	switch kind {
	case bodyNDJSON:
		events, ans.Skipped = decodeNDJSONBody(body, now)
	default:
		events, ans.Ignored, ans.Skipped = decodeMessageBody(body)
	}
	status := http.StatusOK
	if len(events) == 0 && len(ans.Skipped) == 0 && ans.Ignored == 0 {
		status, ans.Error = http.StatusBadRequest, "no events in the body"
	}
	late := make([]Late, len(events))
	for i, le := range events {
		late[i] = Late{Event: le.e, Report: le.rep}
	}
	results, err := wh.h.IngestBatch(ctx, late)
	if err != nil {
		wh.log.Error().Err(err).Int("accepted", len(results)).Msg("webhook: cannot apply the events")
		status, ans.Error = http.StatusServiceUnavailable, "cannot apply the events (storage unavailable); the accepted ones are applied, retry the rest later (or the whole batch: applied events are recognised as duplicates)"
	}
	for i, r := range results {
		ans.Accepted++
		ans.Add(r)
		if e := wh.log.Debug(); e.Enabled() {
			e.Str("domain", r.Domain).Str("rcpt_hash", AddrHash(wh.h.HashKey, events[i].e.Recipient)).
				Str("class", r.Diagnosis.Class.String()).Str("rule", r.Diagnosis.Rule).Bool("matched", r.Matched).
				Bool("duplicate", r.Duplicate).Str("resent_as", r.ResentAs).Msg("webhook: event applied")
		}
	}
	if len(ans.Skipped) > 0 && status == http.StatusOK {
		status = http.StatusBadRequest
	}
	wh.flush(ctx)
	ev := wh.log.Info()
	if status != http.StatusOK {
		ev = wh.log.Warn()
	}
	ev.Str("body", kind).Int("bytes", len(body)).Int("accepted", ans.Accepted).Int("ignored", ans.Ignored).
		Int("skipped", len(ans.Skipped)).Int("matched", ans.Matched).Int("unmatched", ans.Unmatched).
		Int("duplicates", ans.Duplicates).Int("suppressed", ans.Suppressed).Int("resent", ans.Resent).
		Int("status", status).Msg("webhook: request")
	if e := wh.log.Debug(); e.Enabled() {
		for _, s := range ans.Skipped {
			wh.log.Debug().Int("line", s.Line).Str("reason", s.Reason).Msg("webhook: skipped")
		}
	}
	wh.answer(w, status, ans)
}

// flush writes the counters of the request to Redis; a failure leaves
// them to the recorder's next flush.
func (wh *Webhook) flush(ctx context.Context) {
	if wh.h.Recorder == nil {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := wh.h.Recorder.Flush(fctx); err != nil {
		wh.log.Warn().Err(err).Msg("webhook: cannot flush the counters; the next flush retries")
	}
}

func (wh *Webhook) answer(w http.ResponseWriter, status int, a WebhookAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(a)
}

// parseSignature decodes "sha256=<hex>".
func parseSignature(v string) ([]byte, bool) {
	h, ok := strings.CutPrefix(strings.TrimSpace(v), "sha256=")
	if !ok {
		return nil, false
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, false
	}
	return b, true
}

// bodyKind tells the kind of body from its content type.
func bodyKind(ct string) (string, bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/json":
		return bodyNDJSON, true
	case "message/rfc822":
		return bodyMessage, true
	}
	return "", false
}

// lineEvent is an event read from a body and its line (0 for a message),
// with the report it came from for a bounce message.
type lineEvent struct {
	e    bounces.Event
	rep  *bounces.Report
	line int
}

// decodeNDJSONBody reads the events of an NDJSON body: the good ones, and
// the lines that are not. An event without time gets now; one without
// source is SourceWebhook.
func decodeNDJSONBody(body []byte, now time.Time) ([]lineEvent, []WebhookSkip) {
	var events []lineEvent
	var skipped []WebhookSkip
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	for n := 1; len(body) > 0; n++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		e, err := decodeEventAt(line, now)
		if err != nil {
			skipped = append(skipped, WebhookSkip{Line: n, Reason: strings.TrimPrefix(err.Error(), "bounces: event: ")})
			continue
		}
		if e.Source == bounces.SourceUnset {
			e.Source = bounces.SourceWebhook
		}
		events = append(events, lineEvent{e: e, line: n})
	}
	return events, skipped
}

// decodeEventAt is bounces.DecodeEvent where an absent or null "time" is
// now.
func decodeEventAt(line []byte, now time.Time) (bounces.Event, error) {
	e, err := bounces.DecodeEvent(line)
	if err == nil || !lacksTime(line) {
		return e, err
	}
	// The last of repeated keys counts: a time appended at the end of the
	// object replaces a null one.
	obj := bytes.TrimSpace(line[1 : len(line)-1])
	with := make([]byte, 0, len(line)+32)
	with = append(with, '{')
	with = append(with, obj...)
	if len(obj) > 0 {
		with = append(with, ',')
	}
	with = append(with, `"time":`...)
	with = strconv.AppendInt(with, now.Unix(), 10)
	with = append(with, '}')
	e, err = bounces.DecodeEvent(with)
	if err == nil {
		e.Time = now // with its sub-second part
	}
	return e, err
}

// lacksTime reports whether line is a JSON object whose "time" is absent
// or null.
func lacksTime(line []byte) bool {
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return false
	}
	var v struct {
		Time json.RawMessage `json:"time"`
	}
	if json.Unmarshal(line, &v) != nil {
		return false
	}
	return v.Time == nil || string(v.Time) == "null"
}

// decodeMessageBody reads the events of a bounce message: one per
// recipient it reports on; automatic replies are counted as ignored.
func decodeMessageBody(body []byte) ([]lineEvent, int, []WebhookSkip) {
	reps, err := bounces.ParseMessage(bytes.NewReader(body))
	if err != nil {
		return nil, 0, []WebhookSkip{{Reason: strings.TrimPrefix(err.Error(), "bounces: ")}}
	}
	var events []lineEvent
	var skipped []WebhookSkip
	ignored := 0
	for i, rep := range reps {
		e, ok, err := ReportEvent(rep)
		switch {
		case err != nil:
			skipped = append(skipped, WebhookSkip{Reason: fmt.Sprintf("report %d of %d: %v", i+1, len(reps), err)})
		case !ok:
			ignored++
		default:
			events = append(events, lineEvent{e: e, rep: &reps[i]})
		}
	}
	return events, ignored, skipped
}

// ReportEvent returns the event of a bounce message's report for
// Handler.IngestBatch (Late.Event, with the report as Late.Report), its
// domain normalised. ok is false for a report with
// nothing to apply (an automatic reply: the message was delivered). The
// error is for a recipient without a usable domain.
//
// A refusal before any recipient was named (Report.Command CONN, EHLO,
// HELO or MAIL) is about our sender or host, not the recipient: its event
// keeps the domain but not the recipient, so that it is counted and never
// suppresses anybody.
func ReportEvent(rep bounces.Report) (e bounces.Event, ok bool, err error) {
	if rep.Action == bounces.ActionAutoReplied {
		return bounces.Event{}, false, nil
	}
	e = rep.Event()
	switch rep.Command {
	case "CONN", "EHLO", "HELO", "MAIL":
		if e.Domain != "" {
			e.Recipient = ""
		}
	}
	if e.Domain == "" && e.Recipient == "" {
		return e, true, nil // a redacted complaint: counted, nobody to suppress
	}
	if err := e.Normalize(); err != nil {
		return bounces.Event{}, false, errors.New("the recipient has no valid domain")
	}
	return e, true, nil
}

// IngestSuppresses reports whether Handler.Ingest puts the recipient of e
// on the suppression list given its diagnosis d: a hard invalid recipient
// or a complaint, with a recipient (e's own, or the sent record's when its
// message id has one).
func IngestSuppresses(e bounces.Event, d bounces.Diagnosis) bool {
	return (d.Class == bounces.ClassInvalidRecipient && d.Hard || d.Class == bounces.ClassComplaint) && e.Recipient != ""
}
