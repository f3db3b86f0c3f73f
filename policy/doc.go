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
// Validate names the key of every problem ("policy.providers.google.rate:
// ..."): a domain listed by two providers, a provider name that is not an
// asynq queue name ([a-z0-9_-]+) or is reserved ("default"; "review", the
// feedback issue's queue of flagged messages), a priority on a domain entry,
// negative numbers, domains not written normalised.
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
// priority 1). Burst goes with the rate: a level that sets rate but not
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
