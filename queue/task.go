package queue

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// TypeSend is the asynq task type of one message to one recipient.
const TypeSend = "message:send"

// SendPayload is the payload of a TypeSend task (JSON). The task id is
// the message id.
type SendPayload struct {
	Campaign string            `json:"campaign,omitempty"`
	ID       string            `json:"id"`
	From     string            `json:"from"`
	To       string            `json:"to"`
	Domain   string            `json:"domain"` // normalised recipient domain
	Template string            `json:"template"`
	Data     map[string]any    `json:"data,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Small    bool              `json:"small,omitempty"`     // send the template's small variant
	ResentOf string            `json:"resent_of,omitempty"` // the message this one resends (small variant)
	Enqueued time.Time         `json:"enqueued"`
}

// NewSendTask returns the task of p, with its id as task id.
func NewSendTask(p SendPayload, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("queue: encode payload: %w", err)
	}
	return asynq.NewTask(TypeSend, b, append([]asynq.Option{asynq.TaskID(p.ID)}, opts...)...), nil
}

// decodeSendPayload reads a TypeSend payload; a payload that cannot be read
// wraps asynq.SkipRetry (retrying cannot fix it).
func decodeSendPayload(b []byte) (SendPayload, error) {
	var p SendPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("queue: bad %s payload: %v: %w", TypeSend, err, asynq.SkipRetry)
	}
	if p.ID == "" || p.To == "" || p.Domain == "" || p.Template == "" {
		return p, fmt.Errorf("queue: bad %s payload: id, to, domain and template are required: %w", TypeSend, asynq.SkipRetry)
	}
	return p, nil
}
