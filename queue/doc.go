// Package queue is bounceloop's sending queue and the only package that
// imports asynq: task types and payloads, the enqueue client, the thin
// handlers, server and scheduler wiring, and the HTTP side (asynqmon,
// reports, webhook, metrics).
//
// It is built by the sending-queue issue; until then it holds nothing but
// this comment.
package queue
