// Package policy holds the per-domain configuration, the domain matching,
// the decisions (what to do with a diagnosis) and the rate limiters.
//
// It is built by the sending-queue and feedback-loop issues; until then it
// holds nothing but this comment.
package policy
