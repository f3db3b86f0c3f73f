package queue

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/sender"
)

// Sender delivers one message over SMTP; *sender.Pool is the real one.
type Sender interface {
	Send(ctx context.Context, key, domain string, lim sender.Limits, env sender.Envelope) sender.Result
}

var _ Sender = (*sender.Pool)(nil)

// Handler sends TypeSend tasks: it waits for the domain's slot, renders
// the message, speaks SMTP, diagnoses the answer, records it and tells
// asynq what happened (completed with the answer as result, retried with
// the answer as error, or archived).
type Handler struct {
	Config     Config // defaults applied
	Policy     policy.Config
	Limiter    *policy.Limiter
	Templates  *compose.Store
	Sender     Sender
	Classifier *bounces.Classifier
	Recorder   *feedback.Recorder // nil: no counters
	// Loop, when set, makes each class's action happen (see act); nil
	// leaves failures to asynq's ordinary retry (temporary answers) or
	// archives them (permanent ones).
	Loop *feedback.Loop
	// Inspector pauses a provider's queue past its review threshold.
	Inspector *asynq.Inspector
	// Redis is where resends and review copies are written.
	Redis        redis.UniversalClient
	Suppressions *feedback.Suppressions // nil: no check before sending
	Metrics      *Metrics               // nil: none
	Log          zerolog.Logger
	HashKey      []byte // key of the hash that stands for addresses in logs
	Now          func() time.Time
	// OnEvent, when set, is called with every answer and its diagnosis
	// (the feedback loop and tests listen here).
	OnEvent func(ctx context.Context, e bounces.Event, d bounces.Diagnosis)

	reloaded atomic.Pointer[policy.Config] // set by SetPolicy; nil: Policy
	outcomes outcomeBatch
	redisRTs pipeBatch // the send path's Redis round trips, shared by the workers
	hashers  sync.Pool // of hmac hashes keyed with HashKey, for addrHash
}

// SetPolicy replaces the policy the handler routes and paces by; the
// next task uses it (config reload). Safe for concurrent use.
func (h *Handler) SetPolicy(c policy.Config) { h.reloaded.Store(&c) }

// policy returns the policy in force.
func (h *Handler) policy() policy.Config {
	if c := h.reloaded.Load(); c != nil {
		return *c
	}
	return h.Policy
}

// SendError is the error of a send that did not deliver: the answer and
// its diagnosis. Its text is the answer, so asynq shows it as the task's
// last error.
type SendError struct {
	Reply     bounces.Reply
	Diagnosis bounces.Diagnosis
}

func (e *SendError) Error() string {
	text := e.Reply.Text
	if text == "" {
		text = fmt.Sprintf("%d %s", e.Reply.Code, e.Reply.Enhanced)
	}
	return fmt.Sprintf("%s (%s, rule %s)", text, e.Diagnosis.Class, e.Diagnosis.Rule)
}

// Temporary reports whether a later attempt may succeed.
func (e *SendError) Temporary() bool { return !permanent(e.Reply) }

// permanent reports whether an answer is a permanent failure (5xx, or a
// 5.x.x status without a basic code).
func permanent(r bounces.Reply) bool {
	if r.Code != 0 {
		return r.Code >= 500
	}
	return strings.HasPrefix(r.Enhanced, "5.")
}

// AddrHash returns the keyed hash that stands for an address in logs.
func AddrHash(key []byte, addr string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.ToLower(addr)))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// addrHash is AddrHash(h.HashKey, addr) with the keyed hashes kept for
// reuse (HashKey must not change once tasks run).
func (h *Handler) addrHash(addr string) string {
	m, _ := h.hashers.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, h.HashKey)
	}
	m.Reset()
	var buf [128]byte
	m.Write(append(buf[:0], strings.ToLower(addr)...))
	var sum [sha256.Size]byte
	out := hex.EncodeToString(m.Sum(sum[:0])[:8])
	h.hashers.Put(m)
	return out
}

// ProcessTask implements asynq.Handler.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := decodeSendPayload(t.Payload())
	if err != nil {
		return err
	}
	now := h.now()
	log := h.Log.With().Str("task_id", p.ID).Str("domain", p.Domain).Str("rcpt_hash", h.addrHash(p.To)).Logger()
	ctx = log.WithContext(ctx)

	if h.Suppressions != nil {
		var preSend func() (bool, bool, string, error)
		h.redisRTs.do(h.Suppressions.Pipeline, func(pl redis.Pipeliner) {
			preSend = h.Suppressions.PreSendIn(ctx, pl, p.To, p.ID)
		})
		sup, sent, answer, err := preSend()
		if err != nil {
			return fmt.Errorf("queue: %w", err) // Redis is away: retry
		}
		if sent {
			// A receiver accepted it already: a worker died after the 250 and
			// before asynq heard of it. Never send it twice.
			log.Warn().Msg("already accepted by the receiver: not sent again")
			if w := t.ResultWriter(); w != nil {
				_, _ = w.Write([]byte(answer))
			}
			return nil
		}
		if sup {
			h.record(ctx, p, now, bounces.Reply{Code: 605, Text: "605 recipient is suppressed"})
			log.Info().Msg("suppressed before sending")
			return fmt.Errorf("suppressed: the recipient is on the suppression list: %w", asynq.SkipRetry)
		}
	}

	route := h.policy().Route(p.Domain)
	rate, burst := route.Settings.Rate, route.Settings.Burst
	if h.Loop != nil {
		if err := h.held(ctx, p, route.Settings, now, log); err != nil {
			return err // a suspension rule holds the domain or the recipient back
		}
		if eff, err := h.Loop.EffectiveRate(ctx, route.Key, route.Settings); err == nil && eff != rate {
			rate, burst = eff, adaptiveBurst(eff, burst)
		}
		if !p.Small && h.Templates.HasSmall(p.Template) {
			if big, err := h.Loop.TooLarge(ctx, p.Domain); err == nil && big {
				p.Small = true // the domain refused the full size before
			}
		}
	}
	if err := h.Limiter.Wait(ctx, route.Key, rate, burst, h.Config.ThrottleWait.D()); err != nil {
		var te *policy.ThrottledError
		if errors.As(err, &te) {
			h.Metrics.throttled(route.Key)
			log.Debug().Dur("retry_in", te.RetryIn).Msg("throttled")
		}
		return err
	}

	data, err := h.Templates.Render(compose.Input{
		From: p.From, To: p.To, MessageID: p.ID, Campaign: p.Campaign, Template: p.Template,
		Data: p.Data, Headers: p.Headers, Small: p.Small, Date: now,
	})
	if err != nil {
		log.Error().Err(err).Str("template", p.Template).Msg("cannot render")
		return fmt.Errorf("render: %v: %w", err, asynq.SkipRetry)
	}

	res := h.Sender.Send(ctx, route.Key, p.Domain, sender.Limits{
		MaxConnections: route.Settings.MaxConnections, MaxMessagesPerConnection: route.Settings.MaxMessagesPerConnection,
	}, sender.Envelope{From: p.From, To: p.To, Data: data})
	d := h.record(ctx, p, h.now(), res.Reply)

	if res.Sent {
		log.Debug().Str("class", d.Class.String()).Int("code", res.Reply.Code).Str("rule", d.Rule).Msg("delivered")
		resultWritten := false
		if h.Suppressions != nil {
			// The idempotency record: written before asynq hears of the
			// delivery, so a worker that dies now does not send it again. If
			// Redis refuses it, asynq's own completion is at risk too: the
			// message could then be sent again, and the log says so. The
			// sent record later bounces are matched to (late.go) and the
			// task's result (the answer, shown in the web UI; when asynq's
			// Redis is ours) go in the same round trip, which other workers'
			// may share (pipeBatch).
			resultKey := ""
			if rw := t.ResultWriter(); rw != nil && h.Redis != nil {
				if q, ok := asynq.GetQueueName(ctx); ok {
					resultKey, resultWritten = asynqTaskKey(q, rw.TaskID()), true
				}
			}
			var marked func() error
			cmds := h.redisRTs.do(h.Suppressions.Pipeline, func(pl redis.Pipeliner) {
				marked = h.Suppressions.MarkSentIn(ctx, pl, p.ID, res.Reply.Text, h.Config.Retention.D())
				h.keepSentTo(ctx, h.Suppressions.In(pl).SentRecords(), t, p, route, log)
				if resultKey != "" {
					pl.HSet(ctx, resultKey, "result", res.Reply.Text)
				}
			})
			if err := h.markSentAgain(ctx, p.ID, res.Reply.Text, marked()); err != nil {
				log.Error().Err(err).Msg("delivered, but the delivery could not be recorded")
			} else if err := cmdsErr(cmds); err != nil {
				log.Warn().Err(err).Msg("delivered, but its sent record or result could not be written: a later bounce of it may be unmatched")
			}
		}
		if h.Loop != nil {
			h.outcome(ctx, route, false, log)
			if err := h.Loop.Delivered(ctx, route.Key, route.Settings); err != nil {
				log.Warn().Err(err).Msg("feedback: record the delivery")
			}
		}
		if w := t.ResultWriter(); w != nil && !resultWritten {
			_, _ = w.Write([]byte(res.Reply.Text))
		}
		return nil
	}
	log = log.With().Str("class", d.Class.String()).Int("code", res.Reply.Code).Str("rule", d.Rule).Logger()
	se := &SendError{Reply: res.Reply, Diagnosis: d}
	if h.Loop != nil {
		return h.act(ctx, t, p, route, se, log)
	}
	if !se.Temporary() {
		log.Info().Str("stage", res.Stage).Msg("permanent failure")
		return fmt.Errorf("%w: %w", se, asynq.SkipRetry)
	}
	log.Info().Str("stage", res.Stage).Msg("temporary failure")
	return se
}

// record diagnoses an answer of the send path, counts it and hands it to
// OnEvent.
func (h *Handler) record(ctx context.Context, p SendPayload, at time.Time, r bounces.Reply) bounces.Diagnosis {
	e := bounces.Event{Time: at, Campaign: p.Campaign, MessageID: p.ID, Recipient: p.To, Domain: p.Domain,
		Code: r.Code, Enhanced: r.Enhanced, Text: r.Text, Source: bounces.SourceSMTP}
	d := h.Classifier.Classify(r, p.Domain)
	h.count(ctx, e, d)
	return d
}

// count adds a diagnosed event (at e.Time) to the counters, the metrics
// and OnEvent. An answer without a basic code is counted under the code
// its enhanced status stands for (codeOfStatus).
func (h *Handler) count(ctx context.Context, e bounces.Event, d bounces.Diagnosis) {
	code := e.Code
	if code == 0 {
		code = codeOfStatus(e.Enhanced)
	}
	if h.Recorder != nil && e.Domain != "" {
		h.Recorder.Record(e.Time, e.Domain, code)
	}
	h.Metrics.answer(e.Domain, d.Class)
	if h.OnEvent != nil {
		h.OnEvent(ctx, e, d)
	}
}

// codeOfStatus stands in a basic code for an answer that had none (a
// connection failure): 451 for 4.x.x, 554 for 5.x.x, 250 for 2.x.x, else
// 451, so that counters and reports have a code to count.
func codeOfStatus(enhanced string) int {
	switch {
	case strings.HasPrefix(enhanced, "2."):
		return 250
	case strings.HasPrefix(enhanced, "5."):
		return 554
	default:
		return 451
	}
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// adaptiveBurstWindow is the burst of a rate the feedback loop adapted: a
// tenth of a second's worth. A key the loop probes sends near the
// receiver's limit, where a second's worth at once (after a stall of the
// machine, say) is deferred (docs/loop.md).
const adaptiveBurstWindow = 100 * time.Millisecond

// adaptiveBurst returns the burst for the adapted rate r: its
// adaptiveBurstWindow's worth, at least 1, at most the configured burst.
func adaptiveBurst(r policy.Rate, configured int) int {
	b := int(math.Ceil(r.PerSecond() * adaptiveBurstWindow.Seconds()))
	return max(1, min(b, max(configured, 1)))
}
