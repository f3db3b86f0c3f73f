package queue

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
)

// KeyState is one rate key as operators see it: the configured rate and
// the feedback loop's current one.
type KeyState struct {
	Key        string      // "provider:<name>" or "domain:<domain>"
	Queue      string      // its asynq queue ("" for a key the config no longer has)
	Configured policy.Rate // from the policy in force
	Current    policy.Rate // the loop's rate; Configured when the loop has no state
	Adapted    bool        // the loop holds a state for the key
	Changed    time.Time   // the loop's last change (zero when not Adapted)
	Reason     string      // why it last changed
}

// KeyStates lists every rate key of pol — each provider group's, each
// [policy.domains] entry's, and every key the loop holds a state for —
// sorted by key. The `domains` command, the /domains page and the
// bounceloop_rate_per_second metric all read it.
func KeyStates(ctx context.Context, pol policy.Config, loop *feedback.Loop) ([]KeyState, error) {
	routes := map[string]policy.Route{}
	for name, p := range pol.Providers {
		d := name
		if len(p.Domains) > 0 {
			d = p.Domains[0]
		}
		routes["provider:"+name] = pol.Route(d)
	}
	for d := range pol.Domains {
		routes["domain:"+d] = pol.Route(d)
	}
	states, err := loop.RateStates(ctx)
	if err != nil {
		return nil, err
	}
	for k := range states {
		if _, ok := routes[k]; ok {
			continue
		}
		if d, ok := strings.CutPrefix(k, "domain:"); ok {
			routes[k] = pol.Route(d)
		} else {
			routes[k] = policy.Route{}
		}
	}
	out := make([]KeyState, 0, len(routes))
	for k, rt := range routes {
		ks := KeyState{Key: k, Queue: rt.Queue, Configured: rt.Settings.Rate, Current: rt.Settings.Rate}
		if st, ok := states[k]; ok {
			ks.Current, ks.Adapted, ks.Changed, ks.Reason = st.Rate, true, st.LastChange, st.LastReason
		}
		out = append(out, ks)
	}
	slices.SortFunc(out, func(a, b KeyState) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
