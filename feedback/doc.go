// Package feedback is the loop: it turns each diagnosed outcome into
// counters, adaptive per-domain rates, suppressions and review flags kept in
// Redis, and produces the monthly root-cause report.
//
// It is built by the report and feedback-loop issues; until then it holds
// nothing but this comment.
package feedback
