// Package policy holds the per-domain sending configuration, the routing of
// a recipient domain to a queue and a rate-limit key, and the rate limiters
// shared by every worker process through Redis. The feedback issue adds the
// decisions (what to do with a diagnosis) here.
//
// # Configuration
//
// Config is the [policy] section of config.toml:
//
//	[policy.default]                  # domains of no provider, and the base of all
//	rate = "10/s"
//
//	[policy.providers.google]         # a provider group: one asynq queue "google"
//	domains = ["gmail.com", "googlemail.com"]
//	rate = "20/s"
//	max_connections = 6
//
//	[policy.domains."centrum.sk"]     # one domain's own settings and key
//	rate = "1/s"
//
// The server uses the file's section merged over DefaultConfig
// (Config.WithDefaults): the built-in groups google, microsoft, yahoo,
// apple, seznam, centrum, azet and zoznam, at conservative rates (no
// provider publishes a sending rate; see the comments in DefaultConfig). A
// provider named in the file replaces the built-in group's settings field by
// field where set, and its domain list when the file gives one; new
// providers and domain entries are added.
//
// # Feedback settings
//
// The same tables carry the feedback loop's settings, inherited field by
// field like the others (a level that does not set a field takes it from
// the next, then from the built-in default):
//
//	key                    built-in       rule
//	min_rate               rate / 10      floor of the adaptive rate; <= rate
//	max_rate               rate × 10      ceiling of the adaptive rate; >= rate
//	throttle_cut           0.8            rate_limited multiplies the rate by it; in (0, 1)
//	recovery_step          0.1            raise, a fraction of max(rate now, rate of the last cut); in (0, 1]
//	recovery_interval      "1s"           at most one cut and one raise per interval; >= 1s
//	retry_schedule         ["5m", "15m", "1h", "4h"]  transient retries, the last repeats; not empty, > 0
//	max_age                "48h"          transient retries give up after it
//	mailbox_full_attempts  3              mailbox_full answers before the address is suppressed
//	review_threshold       0.05           share of flagged attempts that pauses the queue; in (0, 1]
//	review_window          500            over the queue's last N attempts; <= 100000
//
// The built-in min_rate and max_rate are computed from the resolved rate
// of the route (rate / 10, but at least one message a day; rate × 10, but
// at most MaxRatePerSecond), so they follow a domain's own rate; a min_rate
// or max_rate set at some level is inherited like any other field. The loop
// (package feedback) keeps each key's effective rate within [min_rate,
// max_rate]: it starts at rate, is cut × throttle_cut on a rate_limited
// answer (at most once per recovery_interval, never below min_rate) and,
// after a recovery_interval with no throttling in which the key delivered
// at least half of what its rate allows, rises by recovery_step × max(rate
// now, rate it was last cut from), never above max_rate: a constant step
// back up to where the receiver deferred, a growing one above it (AIMD;
// docs/loop.md). review_threshold and
// review_window belong to a queue, so, like priority, they are errors in a
// domain entry.
//
// Validate names the key of every problem ("policy.providers.google.rate:
// ..."): a domain listed by two providers, a provider name that is not an
// asynq queue name ([a-z0-9_-]+) or is reserved ("default"; "review", the
// feedback issue's queue of flagged messages), a priority, review_threshold
// or review_window on a domain entry, negative numbers, fractions out of
// range, an empty retry_schedule, domains not written normalised, and a
// resolved min_rate <= rate <= max_rate that does not hold: reported at the
// level that sets one of the three, naming the key it sets
// ("policy.domains.\"a.example\".max_rate: 4/s is below the rate 5/s
// (inherited)"), once, not again at every level inheriting it.
//
// # Routing
//
// Config.Route(domain) normalises the domain and finds:
//
//   - the provider: the group listing the domain or its nearest listed
//     parent ("mx.gmail.com" goes with gmail.com; parents are matched only
//     when listed, so "notgmail.com" does not);
//   - the domain entry: the [policy.domains] entry of the domain or of its
//     nearest listed parent.
//
// The queue is the provider's name, else "default". The key (rate limit and
// connection pool) is "domain:<entry>" when a domain entry matched,
// "provider:<name>" otherwise when a provider did (gmail.com and
// googlemail.com share one pace), and "domain:<domain>" for everything else
// (each unlisted domain has its own pace at the default settings).
//
// Settings inherit field by field: domain entry -> provider -> default ->
// built-in (rate 10/s, max_connections 4, max_messages_per_connection 100,
// priority 1, and the feedback settings below). Route's Settings are fully
// resolved: no field is zero. Burst goes with the rate: a level that sets rate but not
// burst gets the rate's default burst, max(1, messages per second rounded
// up), and not the burst of a less specific level.
//
// # Rate limiting
//
// Limiter.Wait(ctx, key, rate, burst, maxWait) gives one slot of key, in
// two stages:
//
//  1. Local smoothing: a golang.org/x/time/rate limiter per key in each
//     process, at the same rate and burst, reserves a token. If the token
//     is further away than maxWait (or ctx's deadline), the reservation is
//     cancelled and Wait returns *ThrottledError at once. Otherwise Wait
//     waits for it (a timer and ctx.Done, never a bare sleep). This spreads
//     a process's workers over time so they do not hammer Redis.
//  2. The shared limit: GCRA in Redis (github.com/go-redis/redis_rate/v10,
//     one Lua script, one key "<prefix>:rate:<key>"), the authority across
//     processes. GCRA keeps one theoretical arrival time (TAT) per key: a
//     request is allowed when TAT - now <= burst × interval, and moves TAT
//     one interval (Per/N) on. When Redis refuses, it says when the next
//     slot is (RetryAfter): if that is within what is left of maxWait, Wait
//     waits and asks again; otherwise it gives the local token back and
//     returns *ThrottledError{Key, RetryIn: RetryAfter}, so the worker is
//     freed and the task is retried later without spending its retry
//     budget.
//
// At 100/s and more, stage 2 leases slots: one GCRA call takes up to
// rate × 20 ms of them (at most the burst, at most 64) and the process
// hands them to its next Waits without Redis, so that a fast key costs one
// Redis call per lease rather than per message. Leased slots are counted
// in Redis when taken, so processes never exceed the shared rate between
// them; a slot not handed out within 250 ms, or when the key's rate or
// burst changes, lapses unused. While one Wait asks for a lease, the
// others of the key ask for one slot each, as below 100/s, where every
// Wait takes its own slot and pacing is exact.
//
// Fractional rates work: redis_rate wants an integer count per period, and
// only the interval matters to GCRA, so 0.5/s is sent as 1 per 2 s.
//
// Limits are passed on every call, never stored: a rate changed by a config
// reload or by the feedback loop applies at the next call. The local limiter
// is updated in place (SetLimitAt, SetBurstAt). In Redis, a cut applies at
// once to the slots not yet granted; a raise applies after the slots already
// granted at the old rate (at most burst old intervals, one second with the
// default burst). The zero Rate is unlimited: no limiter, no Redis call.
//
// Local limiters idle for a minute are dropped once more than 4096 keys are
// known. A Redis error fails the Wait (wrapped, with the key); ctx
// cancellation returns ctx.Err().
package policy
