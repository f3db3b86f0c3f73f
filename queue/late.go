package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
)

// Later bounces: DSNs, ARF complaints, webhook events and MTA log lines
// that arrive after the receiver accepted a message.
//
// When a receiver accepts a message, the handler keeps its sent record
// (feedback.SentRecord, [queue] sent_record_ttl, default 5 days): the
// campaign, recipient, domain, template, rate key and queue, and the task's
// payload when the template has a small variant and the full one was sent.
// A later bounce names the message by its Message-ID, which is the message
// id (the asynq task id): it is matched to the record, takes the
// recipient, domain and campaign from it (an event that names no
// recipient, such as a redacted complaint, still acts), and takes the send
// path's diagnosis -> action path:
//
//	invalid_recipient (hard)  the recipient is suppressed
//	complaint (ARF)           the recipient is suppressed
//	message_too_large         the domain is remembered as size-limited, and
//	                          the message is resent small as a new task
//	                          "small.<id>" linked to the first (ResentOf),
//	                          as the send path does
//	anything else             counted only (rates and review windows follow
//	                          the send path's own answers, which see every
//	                          attempt)
//
// An event without a record (no message id, an id not ours, a record that
// expired) is counted and suppresses by its own recipient, but cannot be
// resent: IngestResult.NotResent says so.
//
// Each event is applied once: its feedback.LateFingerprint (message id,
// recipient, complaint or bounce, answer) is claimed with SET NX before it
// acts and kept for sent_record_ttl, so a replayed webhook batch or a file
// ingested twice neither acts nor counts again. Duplicates are not counted
// in the report's counters; they are reported (IngestResult.Duplicate).

// Late is one later bounce for Handler.IngestBatch.
type Late struct {
	// Event is the bounce, its domain normalised (Event.Normalize).
	Event bounces.Event
	// Report, when set, is the bounce message's report Event came from
	// (ReportEvent): its full diagnosis (Report.Diagnose, which weighs the
	// report's action and the SMTP command that was refused) is used in
	// place of the classifier's reading of the answer alone.
	Report *bounces.Report
}

// Why a late message_too_large was not resent small
// (IngestResult.NotResent).
const (
	NotResentUnmatched = "no sent record"
	NotResentSmall     = "the small variant was sent"
	NotResentNoSmall   = "the template has no small variant"
	NotResentBadRecord = "the sent record cannot be read"
	NotResentNoQueue   = "no queue to resend on"
)

// IngestResult is what Handler.IngestBatch did with one later bounce.
type IngestResult struct {
	Diagnosis bounces.Diagnosis
	// Domain is the recipient domain the event was counted under: the
	// sent record's when it matched, else the event's.
	Domain string
	// Duplicate is true for an event applied before (within the queue's
	// sent_record_ttl): nothing was done and nothing counted.
	Duplicate bool
	// Matched is true when the event's message id has a sent record.
	Matched bool
	// Suppressed is true when the recipient was put on the suppression
	// list.
	Suppressed bool
	// ResentAs is the id of the small variant enqueued for a late
	// message_too_large.
	ResentAs string
	// NotResent says why a late message_too_large was not resent (one of
	// the NotResent constants), "" otherwise.
	NotResent string
	// Flagged is true when a late spam, policy or authentication block
	// was copied into the review queue (its sent record kept the payload;
	// without it the block still counts in the provider's review window,
	// which pauses the queue past its threshold).
	Flagged bool
}

// LateTally adds up IngestResults: the webhook's answer and the ingest
// command's summary show it.
type LateTally struct {
	// Matched and Unmatched count the applied events with and without a
	// sent record; Duplicates the events not applied again.
	Matched    int `json:"matched,omitempty"`
	Unmatched  int `json:"unmatched,omitempty"`
	Duplicates int `json:"duplicates,omitempty"`
	// Suppressed, Resent and Flagged count the actions taken.
	Suppressed int `json:"suppressed,omitempty"`
	Resent     int `json:"resent,omitempty"`
	Flagged    int `json:"flagged,omitempty"`
	// NotResent counts the message_too_large events that could not be
	// resent, by reason.
	NotResent map[string]int `json:"not_resent,omitempty"`
}

// Add counts r.
func (t *LateTally) Add(r IngestResult) {
	switch {
	case r.Duplicate:
		t.Duplicates++
		return
	case r.Matched:
		t.Matched++
	default:
		t.Unmatched++
	}
	if r.Suppressed {
		t.Suppressed++
	}
	if r.ResentAs != "" {
		t.Resent++
	}
	if r.Flagged {
		t.Flagged++
	}
	if r.NotResent != "" {
		if t.NotResent == nil {
			t.NotResent = map[string]int{}
		}
		t.NotResent[r.NotResent]++
	}
}

// Limits of IngestBatch.
const (
	// lateClaimHold is how long a claimed later bounce is held before it
	// is confirmed: a claim left by a failure lapses after it.
	lateClaimHold = 2 * time.Minute
	// lateBatch is the most events of one Redis round trip.
	lateBatch = 512
)

// Ingest applies one later bounce and returns its diagnosis; see
// IngestBatch. The event's domain must be normalised (Event.Normalize).
func (h *Handler) Ingest(ctx context.Context, e bounces.Event) (bounces.Diagnosis, error) {
	res, err := h.IngestBatch(ctx, []Late{{Event: e}})
	if err != nil {
		return bounces.Diagnosis{}, err
	}
	return res[0].Diagnosis, nil
}

// IngestBatch applies later bounces (a DSN, an ARF complaint, a webhook
// event, an MTA log line) as the send path applies an answer: each is
// matched to its sent record, diagnosed, acted on and counted, once (see
// the comment at the top of late.go). An event without a time gets the
// handler's clock.
//
// It looks up the records and claims the events in one Redis round trip
// per 512 events; the actions (suppressions, resends) take one each. On an
// error (Redis) the results of the events applied before it are returned
// with it; the rest are not applied, and their claims are released, so a
// retry of the whole batch applies them and nothing twice.
func (h *Handler) IngestBatch(ctx context.Context, late []Late) ([]IngestResult, error) {
	out := make([]IngestResult, 0, len(late))
	for len(late) > 0 {
		n := min(len(late), lateBatch)
		res, err := h.ingestBatch(ctx, late[:n])
		out = append(out, res...)
		if err != nil {
			return out, err
		}
		late = late[n:]
	}
	return out, nil
}

func (h *Handler) ingestBatch(ctx context.Context, late []Late) ([]IngestResult, error) {
	now := h.now()
	events := make([]bounces.Event, len(late))
	for i, l := range late {
		events[i] = l.Event
		if events[i].Time.IsZero() {
			events[i].Time = now
		}
		events[i].MessageID = feedback.NormalizeMessageID(events[i].MessageID)
	}
	ttl := h.sentRecordTTL()
	var sr *feedback.SentRecords
	matches := make([]feedback.LateMatch, len(events))
	if h.Suppressions != nil {
		sr = h.Suppressions.SentRecords()
		m, err := sr.Claim(ctx, events, min(lateClaimHold, ttl))
		if err != nil {
			return nil, fmt.Errorf("queue: ingest: %w", err)
		}
		matches = m
	} else {
		for i := range matches {
			matches[i].First = true // nowhere to remember events: every one is new
		}
	}
	out := make([]IngestResult, 0, len(late))
	applied := make([]string, 0, len(late))
	for i := range events {
		r, err := h.ingestOne(ctx, events[i], late[i].Report, matches[i], now)
		if err != nil {
			if sr != nil {
				var release []string
				for _, m := range matches[i:] {
					if m.First {
						release = append(release, m.Fingerprint)
					}
				}
				h.settleClaims(ctx, sr, applied, release, ttl)
			}
			return out, err
		}
		if matches[i].First {
			applied = append(applied, matches[i].Fingerprint)
		}
		out = append(out, r)
	}
	if sr != nil {
		h.settleClaims(ctx, sr, applied, nil, ttl)
	}
	return out, nil
}

// settleClaims confirms the claims of applied events and releases the
// others. A failure is logged: a confirmed claim that was not written
// lapses after lateClaimHold (a duplicate after that acts again), a
// released one that was not deleted takes a retry within lateClaimHold
// for a duplicate.
func (h *Handler) settleClaims(ctx context.Context, sr *feedback.SentRecords, applied, release []string, ttl time.Duration) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := sr.Confirm(sctx, applied, ttl); err != nil {
		h.Log.Warn().Err(err).Int("events", len(applied)).Msg("ingest: the applied events are not remembered: a duplicate after two minutes would act again")
	}
	if err := sr.Release(sctx, release); err != nil {
		h.Log.Warn().Err(err).Int("events", len(release)).Msg("ingest: the events not applied stay claimed for two minutes: a retry before that takes them for duplicates")
	}
}

// ingestOne applies one later bounce e (its time set) with its record
// match m.
func (h *Handler) ingestOne(ctx context.Context, e bounces.Event, rep *bounces.Report, m feedback.LateMatch, now time.Time) (IngestResult, error) {
	var r IngestResult
	if m.Found {
		r.Matched = true
		if m.Record.Recipient != "" {
			e.Recipient = m.Record.Recipient
		}
		if m.Record.Domain != "" {
			e.Domain = m.Record.Domain
		}
		if m.Record.Campaign != "" {
			e.Campaign = m.Record.Campaign
		}
	}
	r.Domain = e.Domain
	if rep != nil {
		r.Diagnosis = rep.Diagnose(h.Classifier)
	} else {
		r.Diagnosis = h.Classifier.ClassifyEvent(e)
	}
	if !m.First {
		r.Duplicate = true
		return r, nil
	}
	d := r.Diagnosis
	switch {
	case IngestSuppresses(e, d) && h.Suppressions != nil:
		err := h.Suppressions.Add(ctx, e.Recipient, feedback.Suppression{Class: d.Class, Code: e.Code, Answer: e.Text, Campaign: e.Campaign, Time: e.Time})
		if err != nil {
			return r, fmt.Errorf("queue: ingest: %w", err)
		}
		r.Suppressed = true
	case d.Class == bounces.ClassMessageTooLarge:
		if h.Loop != nil && e.Domain != "" {
			if err := h.Loop.RememberTooLarge(ctx, e.Domain); err != nil {
				return r, fmt.Errorf("queue: ingest: %w", err)
			}
		}
		id, why, err := h.resendLate(ctx, m, now)
		if err != nil {
			return r, fmt.Errorf("queue: ingest: resend small: %w", err)
		}
		r.ResentAs, r.NotResent = id, why
	case d.Class == bounces.ClassMailboxFull && h.Loop != nil && e.Recipient != "":
		// As the send path: suppressed after the configured answers.
		n, err := h.Loop.MailboxFull(ctx, e.Recipient)
		if err != nil {
			return r, fmt.Errorf("queue: ingest: %w", err)
		}
		if n >= int64(h.policy().Route(e.Domain).Settings.MailboxFullAttempts) && h.Suppressions != nil {
			err := h.Suppressions.Add(ctx, e.Recipient, feedback.Suppression{Class: d.Class, Code: e.Code, Answer: e.Text, Campaign: e.Campaign, Time: e.Time})
			if err != nil {
				return r, fmt.Errorf("queue: ingest: %w", err)
			}
			r.Suppressed = true
		}
	case isReview(d.Class) && h.Loop != nil && e.Domain != "":
		// As the send path: the block counts in the provider's review
		// window (past its threshold the queue pauses) and, when the
		// record kept the payload, a copy waits in the review queue.
		route := h.policy().Route(e.Domain)
		h.outcome(ctx, route, true, h.Log.With().Str("domain", e.Domain).Logger())
		if m.Found && m.Record.Payload != nil && h.Redis != nil {
			if p, err := decodeSendPayload(m.Record.Payload); err == nil {
				se := &SendError{Reply: bounces.Reply{Code: e.Code, Enhanced: e.Enhanced, Text: e.Text}, Diagnosis: d}
				if _, err := h.flagForReview(ctx, p, se, now); err != nil {
					return r, fmt.Errorf("queue: ingest: flag for review: %w", err)
				}
				r.Flagged = true
			}
		}
	}
	h.count(ctx, e, d)
	return r, nil
}

// resendLate resends the message of a late message_too_large small, as
// the send path does, and returns the new id, or why it cannot.
func (h *Handler) resendLate(ctx context.Context, m feedback.LateMatch, now time.Time) (id, why string, err error) {
	switch {
	case !m.Found:
		return "", NotResentUnmatched, nil
	case m.Record.Small:
		return "", NotResentSmall, nil
	case m.Record.Payload == nil || h.Templates == nil || !h.Templates.HasSmall(m.Record.Template):
		return "", NotResentNoSmall, nil
	case h.Redis == nil:
		return "", NotResentNoQueue, nil
	}
	p, err := decodeSendPayload(m.Record.Payload)
	if err != nil {
		return "", NotResentBadRecord, nil
	}
	id, err = h.resendSmall(ctx, p, now)
	if err != nil {
		return "", "", err
	}
	return id, "", nil
}

// keepSent writes the sent record of the accepted message p (task t,
// route) so that a later bounce of it can be matched and acted on: the
// task's payload is kept when the message can be resent small. A failure
// is logged: a later bounce of the message is then unmatched (counted,
// suppressed by its own recipient, never resent).
func (h *Handler) keepSent(ctx context.Context, t *asynq.Task, p SendPayload, route policy.Route, log zerolog.Logger) {
	if h.Suppressions == nil {
		return
	}
	h.keepSentTo(ctx, h.Suppressions.SentRecords(), t, p, route, log)
}

// keepSentTo is keepSent through recs: the send path passes the records
// over the pipeline of the idempotency record (one round trip), and logs
// that pipeline's errors itself.
func (h *Handler) keepSentTo(ctx context.Context, recs *feedback.SentRecords, t *asynq.Task, p SendPayload, route policy.Route, log zerolog.Logger) {
	rec := feedback.SentRecord{Campaign: p.Campaign, Recipient: p.To, Domain: p.Domain, Template: p.Template, Small: p.Small,
		Key: route.Key, Queue: route.Queue, Sent: h.now()}
	if !p.Small && h.Templates != nil && h.Templates.HasSmall(p.Template) {
		rec.Payload = t.Payload()
	}
	if err := recs.Keep(ctx, p.ID, rec, h.sentRecordTTL()); err != nil {
		log.Warn().Err(err).Msg("delivered, but its sent record could not be written: a later bounce of it will be unmatched")
	}
}

// sentRecordTTL is Config.SentRecordTTL or its default.
func (h *Handler) sentRecordTTL() time.Duration {
	if d := h.Config.SentRecordTTL.D(); d > 0 {
		return d
	}
	return DefaultSentRecordTTL
}
