package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/policy/redistest"
	"github.com/bounceloop/bounceloop/queue/compose"
	"github.com/bounceloop/bounceloop/queue/internal/smtpsim"
)

// TestTwoProcessesShareDecisions runs two "bounceloop serve" processes on
// one Redis and checks that the decisions of the feedback loop made by one
// apply in the other within a second:
//
//   - a suspension rule of scope domain, hit by whichever process sent to
//     the domain, holds the domain back in both: nothing reaches it until
//     the hold ends, then everything does; another domain is not held;
//   - an address suppressed meanwhile (as by the loop of any process) is
//     not sent to by either: both check the shared list before sending.
func TestTwoProcessesShareDecisions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two serve processes")
	}
	rdb := redistest.DB(t)
	world, err := smtpsim.Start(smtpsim.Config{Seed: 1, CatchAll: "sim",
		Providers: []smtpsim.Provider{{Name: "sim", Domains: []string{"example.org", "example.net"}}},
		Domains:   map[string]smtpsim.Domain{"example.org": {TempFailReply: "421 4.7.0 Try again later, closing connection."}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	bin := buildBinary(t)
	const suspend = 4 * time.Second
	cfg := serveConfig(t, rdb, world.Addr("sim"), 4, fmt.Sprintf(`[policy.default]
retry_schedule = ["1s"]

[[policy.rules]]
id = "hold.example.org"
codes = [421]
domains = ["example.org"]
scope = "domain"
suspend = %q
`, suspend.String()))
	startServe(t, bin, cfg, 0)
	startServe(t, bin, cfg, 1)

	ctx := context.Background()
	keys := feedback.Keys{Prefix: "loadtest"} // serveConfig's prefix
	loop := feedback.NewLoop(rdb, keys, nil)
	sup := feedback.NewSuppressions(rdb, keys)
	c := NewClient(rdb, ClientOptions{Policy: policy.Config{}.WithDefaults(), Templates: compose.Default()})
	msg := func(to string) Message {
		return Message{Campaign: "shared", To: to, Template: "notice", Data: map[string]any{"first_name": "Jana"}}
	}
	enqueue := func(ms ...Message) []string {
		t.Helper()
		res, err := c.EnqueueBatch(ctx, ms)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(res))
		for i, r := range res {
			if r.Status != StatusEnqueued {
				t.Fatalf("%s: %v %s", ms[i].To, r.Status, r.Reason)
			}
			ids[i] = r.ID
		}
		return ids
	}

	// One process gets the 421 and holds example.org back.
	enqueue(msg("flaky-1@example.org"))
	var hold feedback.Hold
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && hold.Rule == ""; {
		if hs, err := loop.Holds(ctx); err == nil {
			hold = hs[feedback.HoldDomain("example.org")]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hold.Rule != "hold.example.org" {
		t.Fatalf("no hold of example.org after its 421 (holds: %+v)", hold)
	}
	time.Sleep(600 * time.Millisecond) // every process reads the holds at least every 0.5 s
	if time.Until(hold.Until) < 2*time.Second {
		t.Skipf("the machine is too slow: the hold ends in %v, too soon to observe", time.Until(hold.Until))
	}

	// Both processes take these; neither may send to example.org meanwhile.
	var held, free []Message
	for i := 0; i < 24; i++ {
		held = append(held, msg(fmt.Sprintf("ok-%d@example.org", i)))
		free = append(free, msg(fmt.Sprintf("ok-%d@example.net", i)))
	}
	heldIDs, freeIDs := enqueue(held...), enqueue(free...)
	accepted := func(ids []string) int {
		n := 0
		for _, id := range ids {
			n += world.Accepted(id)
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && accepted(freeIDs) < len(freeIDs); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := accepted(freeIDs); n != len(freeIDs) {
		t.Errorf("example.net: %d of %d delivered while example.org was held: another domain was held back", n, len(freeIDs))
	}
	if time.Now().Before(hold.Until) {
		if n := accepted(heldIDs); n != 0 {
			t.Errorf("%d messages reached example.org during its hold (until %v): a process ignored the other's decision", n, hold.Until)
		}
	} else {
		t.Log("the hold ended before example.net was served: its check is skipped")
	}

	// An address on the shared list is skipped by whichever process takes
	// its message (this client does not check the list at enqueue, as a
	// message enqueued before the address was suppressed).
	if err := sup.Add(ctx, "ok-late@example.net", feedback.Suppression{Class: bounces.ClassInvalidRecipient, Code: 550, Answer: "550 5.1.1 gone"}); err != nil {
		t.Fatal(err)
	}
	late := enqueue(msg("ok-late@example.net"))

	insp := asynq.NewInspectorFromRedisClient(rdb)
	defer insp.Close()
	waitFinal(t, insp, 60*time.Second)
	states := finalStates(t, insp)
	for _, id := range append(append([]string(nil), heldIDs...), freeIDs...) {
		if states[id] != "completed" || world.Accepted(id) != 1 {
			t.Errorf("%s: %q, accepted %d times; want completed once", id, states[id], world.Accepted(id))
		}
	}
	if world.Accepted(late[0]) != 0 || !strings.HasPrefix(states[late[0]], "archived: suppressed") {
		t.Errorf("the suppressed address: %q, accepted %d times; want archived as suppressed, never sent", states[late[0]], world.Accepted(late[0]))
	}
}
