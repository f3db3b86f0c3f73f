package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
)

// retryAfter is a failed send that asks asynq for a retry after a delay
// of its own: the domain's retry schedule, or the throttle delay. A
// throttle retry does not spend the task's retry budget (it is
// policy.ErrThrottled to IsFailure).
type retryAfter struct {
	*SendError
	in       time.Duration
	throttle bool
}

func (e *retryAfter) Unwrap() error { return e.SendError }

// Is makes a throttle retry policy.ErrThrottled.
func (e *retryAfter) Is(target error) bool { return e.throttle && target == policy.ErrThrottled }

// Reasons of archived tasks, at the start of their last error.
const (
	ReasonSuppressed = "suppressed"
	ReasonExpired    = "expired"
	ReasonResent     = "resent small"
	ReasonReview     = "flagged for review"
	ReasonTooLarge   = "too large"
)

// isReview reports whether class makes a message wait for an operator.
func isReview(c bounces.Class) bool {
	return c == bounces.ClassSpamBlocked || c == bounces.ClassPolicyBlocked || c == bounces.ClassAuthFailure
}

// act does what the diagnosis of a failed send says (DESIGN.md's table)
// and returns the task's outcome to asynq.
func (h *Handler) act(ctx context.Context, t *asynq.Task, p SendPayload, route policy.Route, se *SendError, log zerolog.Logger) error {
	s := route.Settings
	class := se.Diagnosis.Class
	h.outcome(ctx, route, isReview(class), log)
	now := h.now()
	if rule, ok := h.policy().Suspension(se.Reply, p.Domain); ok {
		if age := now.Sub(p.Enqueued); !p.Enqueued.IsZero() && age > s.MaxAge.D() {
			return fmt.Errorf("%s after %s: %w: %w", ReasonExpired, age.Round(time.Second), se, asynq.SkipRetry)
		}
		h.suspend(ctx, p, route, rule, se, now, log)
		if class == bounces.ClassRateLimited {
			if _, err := h.Loop.Throttled(ctx, route.Key, s); err != nil {
				log.Warn().Err(err).Msg("feedback: cut the rate")
			}
		}
		return &retryAfter{SendError: se, in: rule.Suspend.D(), throttle: true}
	}
	switch {
	case class == bounces.ClassRateLimited:
		r, err := h.Loop.Throttled(ctx, route.Key, s)
		if err != nil {
			log.Warn().Err(err).Msg("feedback: cut the rate")
			r = s.MinRate
		}
		in := max(time.Second, 2*r.Interval())
		log.Info().Str("key", route.Key).Str("rate", r.String()).Msg("deferred: rate cut")
		return &retryAfter{SendError: se, in: in, throttle: true}

	case class == bounces.ClassInvalidRecipient || class == bounces.ClassComplaint:
		return h.suppress(ctx, p, se, now, log, "")

	case class == bounces.ClassMailboxFull:
		n, err := h.Loop.MailboxFull(ctx, p.To)
		if err != nil {
			return fmt.Errorf("queue: %w", err) // Redis is away: retry
		}
		if n >= int64(s.MailboxFullAttempts) {
			return h.suppress(ctx, p, se, now, log, fmt.Sprintf(" after %d mailbox-full answers", n))
		}
		return h.retry(ctx, p, se, s, now, 2, log)

	case class == bounces.ClassMessageTooLarge:
		if err := h.Loop.RememberTooLarge(ctx, p.Domain); err != nil {
			log.Warn().Err(err).Msg("feedback: remember the size limit")
		}
		if p.Small || !h.Templates.HasSmall(p.Template) {
			log.Info().Msg("too large, no smaller variant")
			return fmt.Errorf("%s: %w: %w", ReasonTooLarge, se, asynq.SkipRetry)
		}
		id, err := h.resendSmall(ctx, p, now)
		if err != nil {
			return fmt.Errorf("queue: resend small: %w", err) // retry the whole: nothing was resent
		}
		log.Info().Str("resent_as", id).Msg("too large: resent small")
		return fmt.Errorf("%s as %s: %w: %w", ReasonResent, id, se, asynq.SkipRetry)

	case isReview(class):
		if q, _ := asynq.GetQueueName(ctx); q == policy.ReviewQueue {
			// An operator ran it from review and it was refused again.
			return fmt.Errorf("%s again: %w: %w", ReasonReview, se, asynq.SkipRetry)
		}
		id, err := h.flagForReview(ctx, p, se, now)
		if err != nil {
			return fmt.Errorf("queue: flag for review: %w", err)
		}
		log.Info().Str("review_task", id).Msg("flagged for review")
		return fmt.Errorf("%s as %s: %w: %w", ReasonReview, id, se, asynq.SkipRetry)

	case !se.Temporary() && class != bounces.ClassUnknown && class != bounces.ClassTransient:
		// Permanent answers of no actionable class (none today): archive.
		// A transient diagnosis of a 5xx answer (500-504, a command or
		// syntax error in the session) is retried: the message is not at
		// fault.
		return fmt.Errorf("%w: %w", se, asynq.SkipRetry)

	default: // transient, unknown
		return h.retry(ctx, p, se, s, now, 1, log)
	}
}

// retry schedules the next attempt on the domain's schedule (slower by
// factor), or archives the message as expired past its max age.
func (h *Handler) retry(ctx context.Context, p SendPayload, se *SendError, s policy.Settings, now time.Time, factor int, log zerolog.Logger) error {
	if age := now.Sub(p.Enqueued); !p.Enqueued.IsZero() && age > s.MaxAge.D() {
		log.Info().Dur("age", age).Msg("expired")
		return fmt.Errorf("%s after %s: %w: %w", ReasonExpired, age.Round(time.Second), se, asynq.SkipRetry)
	}
	n, _ := asynq.GetRetryCount(ctx)
	sched := s.RetrySchedule
	in := time.Minute
	if len(sched) > 0 {
		in = sched[min(n, len(sched)-1)].D()
	}
	return &retryAfter{SendError: se, in: in * time.Duration(factor)}
}

// suppress puts the recipient on the suppression list and archives the
// message.
func (h *Handler) suppress(ctx context.Context, p SendPayload, se *SendError, now time.Time, log zerolog.Logger, why string) error {
	if h.Suppressions != nil {
		err := h.Suppressions.Add(ctx, p.To, feedback.Suppression{
			Class: se.Diagnosis.Class, Code: se.Reply.Code, Answer: se.Reply.Text, Campaign: p.Campaign, Time: now,
		})
		if err != nil {
			return fmt.Errorf("queue: %w", err) // retry: the suppression must not be lost
		}
	}
	log.Info().Msg("suppressed")
	return fmt.Errorf("%s%s: %w: %w", ReasonSuppressed, why, se, asynq.SkipRetry)
}

// resendSmall enqueues the small variant of p as a new message linked to
// it and returns the new message id ("small.<id>").
func (h *Handler) resendSmall(ctx context.Context, p SendPayload, now time.Time) (string, error) {
	q := p
	q.ID = "small." + p.ID
	q.Small = true
	q.ResentOf = p.ID
	q.Enqueued = now
	b, err := json.Marshal(q)
	if err != nil {
		return "", err
	}
	route := h.policy().Route(p.Domain)
	_, err = pipelineEnqueue(ctx, h.Redis, []taskMessage{{
		Type: TypeSend, Payload: b, ID: q.ID, Queue: route.Queue,
		Retry: h.Config.MaxRetry, Timeout: h.Config.TaskTimeout.D(), Retention: h.Config.Retention.D(),
	}}, now)
	return q.ID, err // an existing id (a retry of this step) is fine
}

// flagForReview writes a copy of p into the paused review queue as an
// archived task whose error is the answer: the web UI lists it there, and
// an operator deletes it, or runs it (it waits pending until review is
// resumed, then it is sent again; see Stack.setupReview).
func (h *Handler) flagForReview(ctx context.Context, p SendPayload, se *SendError, now time.Time) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	id := "review." + p.ID
	_, err = addArchived(ctx, h.Redis, taskMessage{
		Type: TypeSend, Payload: b, ID: id, Queue: policy.ReviewQueue, Retry: 0,
		ErrorMsg: se.Error(), LastFailedAt: now, Timeout: h.Config.TaskTimeout.D(), Retention: h.Config.Retention.D(),
	}, now)
	return id, err
}

// suspend applies a suspension rule: a provider scope pauses the
// provider's queue until the suspension ends (Stack resumes it); the
// message itself waits the suspension out in any scope.
func (h *Handler) suspend(ctx context.Context, p SendPayload, route policy.Route, rule policy.Rule, se *SendError, now time.Time, log zerolog.Logger) {
	log = log.With().Str("suspension", rule.ID).Dur("suspend", rule.Suspend.D()).Logger()
	until := now.Add(rule.Suspend.D())
	if rule.Scope != policy.ScopeProvider || route.Queue == policy.DefaultQueue || h.Inspector == nil {
		// Hold back the domain (a provider scope outside any provider
		// group: the default queue is never paused) or the recipient.
		field := feedback.HoldDomain(p.Domain)
		if rule.Scope == policy.ScopeRecipient {
			field = feedback.HoldRecipient(p.To)
		}
		hold := feedback.Hold{Rule: rule.ID, Reason: se.Reply.Text, Since: now.UTC(), Until: until.UTC()}
		if err := h.Loop.SetHold(ctx, field, hold); err != nil {
			log.Warn().Err(err).Msg("feedback: hold back; only this message waits")
			return
		}
		log.Warn().Str("scope", string(rule.Scope)).Time("until", until).Msg("held back")
		return
	}
	if pauses, err := h.Loop.Pauses(ctx); err == nil {
		if p, ok := pauses[route.Queue]; ok && (p.Until.IsZero() || !p.Until.Before(until)) {
			return // paused already (for review, or by a suspension lasting as long)
		}
	}
	if err := h.Inspector.PauseQueue(route.Queue); err != nil && !strings.Contains(err.Error(), "already paused") {
		log.Error().Err(err).Str("queue", route.Queue).Msg("cannot suspend the queue")
		return
	}
	reason := fmt.Sprintf("suspended by rule %s until %s", rule.ID, until.UTC().Format(time.RFC3339))
	if err := h.Loop.NoteSuspension(ctx, route.Queue, reason, until); err != nil {
		log.Warn().Err(err).Msg("feedback: note the suspension")
	}
	log.Warn().Str("queue", route.Queue).Time("until", until).Msg("queue suspended")
}

// held returns the retry of a message whose domain or recipient is held
// back by a suspension rule (see suspend), or nil. It does not spend the
// retry budget; past max_age the message expires.
func (h *Handler) held(ctx context.Context, p SendPayload, s policy.Settings, now time.Time, log zerolog.Logger) error {
	hold, ok, err := h.Loop.HeldUntil(ctx, p.Domain, p.To)
	if err != nil || !ok {
		return nil // Redis is away: the send path finds out itself
	}
	se := &SendError{
		Reply:     bounces.Reply{Enhanced: "4.0.0", Text: fmt.Sprintf("held back by rule %s until %s: %s", hold.Rule, hold.Until.UTC().Format(time.RFC3339), hold.Reason)},
		Diagnosis: bounces.Diagnosis{Class: bounces.ClassTransient, Rule: hold.Rule, Explanation: "a suspension rule holds the domain or the recipient back"},
	}
	if age := now.Sub(p.Enqueued); !p.Enqueued.IsZero() && age > s.MaxAge.D() {
		return fmt.Errorf("%s after %s: %w: %w", ReasonExpired, age.Round(time.Second), se, asynq.SkipRetry)
	}
	log.Debug().Str("rule", hold.Rule).Time("until", hold.Until).Msg("held back")
	return &retryAfter{SendError: se, in: hold.Until.Sub(now), throttle: true}
}

// outcomeBatch holds a process's unflagged outcomes per queue until a
// flagged one comes, a batch is full or it is old: one Redis call per
// batch instead of one per message.
type outcomeBatch struct {
	mu      sync.Mutex
	pending map[string]int       // queue → unflagged outcomes not yet written
	since   map[string]time.Time // queue → when the oldest of them came
}

// Limits of an outcome batch.
const (
	outcomeBatchSize = 64
	outcomeBatchAge  = 500 * time.Millisecond
)

// take adds an outcome and returns the outcomes to write now ("" for
// none): every pending '0' and then the '1' of a flagged one.
func (b *outcomeBatch) take(queue string, flagged bool, now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending, b.since = map[string]int{}, map[string]time.Time{}
	}
	if b.pending[queue] == 0 {
		b.since[queue] = now
	}
	if !flagged {
		b.pending[queue]++
		if b.pending[queue] < outcomeBatchSize && now.Sub(b.since[queue]) < outcomeBatchAge {
			return ""
		}
	}
	out := strings.Repeat("0", b.pending[queue])
	if flagged {
		out += "1"
	}
	b.pending[queue] = 0
	return out
}

// outcome adds an attempt to the provider queue's review window and
// pauses the queue past its threshold. Unflagged outcomes are written in
// batches (at most 64, or 0.5 s old); a flagged one is written at once
// with the batch before it, and the threshold is checked then.
func (h *Handler) outcome(ctx context.Context, route policy.Route, flagged bool, log zerolog.Logger) {
	s := route.Settings
	batch := h.outcomes.take(route.Queue, flagged, h.now())
	if batch == "" {
		return
	}
	share, n, err := h.Loop.Outcomes(ctx, route.Queue, batch, s.ReviewWindow)
	if err != nil {
		log.Warn().Err(err).Msg("feedback: review window")
		return
	}
	if !flagged || n < s.ReviewWindow || share < s.ReviewThreshold || h.Inspector == nil || route.Queue == policy.DefaultQueue {
		return
	}
	info, err := h.Inspector.GetQueueInfo(route.Queue)
	if err == nil && info.Paused {
		return
	}
	if err := h.Inspector.PauseQueue(route.Queue); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) && !strings.Contains(err.Error(), "already paused") {
		log.Error().Err(err).Str("queue", route.Queue).Msg("cannot pause the queue past its review threshold")
		return
	}
	reason := fmt.Sprintf("%.1f%% of the last %d attempts were spam, policy or authentication blocks (threshold %.1f%%)", share*100, n, s.ReviewThreshold*100)
	if err := h.Loop.NotePause(ctx, route.Queue, reason); err != nil {
		log.Warn().Err(err).Msg("feedback: note the pause")
	}
	h.Metrics.paused(route.Queue)
	log.Error().Str("queue", route.Queue).Str("reason", reason).Msg("ALERT: queue paused for review; resume with `bounceloop domains resume " + route.Queue + "` or in the web UI")
}
