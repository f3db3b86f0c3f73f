package queue_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/bounceloop/bounceloop/bounces"
	"github.com/bounceloop/bounceloop/feedback"
	"github.com/bounceloop/bounceloop/policy"
	"github.com/bounceloop/bounceloop/queue"
	"github.com/bounceloop/bounceloop/queue/compose"
)

// A campaign sender enqueues one message per recipient. The embedded
// Redis stands in for a real one here (in production: the [redis] address).
func ExampleClient_EnqueueBatch() {
	emb, err := queue.StartEmbedded()
	if err != nil {
		panic(err)
	}
	defer emb.Close()
	rdb := redis.NewClient(&redis.Options{Addr: emb.Addr()})
	defer rdb.Close()

	keys := feedback.Keys{Prefix: "example"}
	sup := feedback.NewSuppressions(rdb, keys)
	ctx := context.Background()
	_ = sup.Add(ctx, "gone@azet.sk", feedback.Suppression{Class: bounces.ClassInvalidRecipient, Code: 550})

	client := queue.NewClient(rdb, queue.ClientOptions{
		Config:       queue.Config{From: "news@shop.example"},
		Policy:       policy.DefaultConfig(),
		Templates:    compose.Default(),
		Suppressions: sup,
	})
	data := map[string]any{"first_name": "Jana", "offer": "20% off"}
	results, err := client.EnqueueBatch(ctx, []queue.Message{
		{Campaign: "may", ID: "m1@shop.example", To: "jana@centrum.sk", Template: "newsletter", Data: data},
		{Campaign: "may", ID: "m1@shop.example", To: "jana@centrum.sk", Template: "newsletter", Data: data},
		{Campaign: "may", ID: "m2@shop.example", To: "gone@azet.sk", Template: "newsletter", Data: data},
		{Campaign: "may", ID: "m3@shop.example", To: "petr@gmail.com", Template: "newsletter", Data: map[string]any{"first_name": "Petr"}},
		{Campaign: "may", ID: "m4@shop.example", To: "not an address", Template: "notice", Data: data},
	})
	if err != nil {
		panic(err)
	}
	for _, r := range results {
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %s %s%s", r.ID, r.Status, r.Queue, r.Reason)))
	}
	// Output:
	// m1@shop.example enqueued centrum
	// m1@shop.example duplicate centrum
	// m2@shop.example suppressed
	// m3@shop.example invalid template "newsletter": compose: template "newsletter": newsletter/text.txt: template: newsletter/text.txt:5:14: executing "newsletter/text.txt" at <.offer>: map has no entry for key "offer"
	// m4@shop.example invalid recipient: not an address: no angle-addr
}
