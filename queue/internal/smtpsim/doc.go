// Package smtpsim is the simulated receiving world: real SMTP servers
// (github.com/emersion/go-smtp) on 127.0.0.1:0, one per simulated provider,
// scripted from the original analysis of the campaign answers
// (/work/shared/seed, the data set in bounces/testdata/export). Tests, the
// demo and the benchmarks send to it over real SMTP.
//
// # Providers and domains
//
// A Provider is one server (one listener) serving one or more domains; World.Routes
// gives domain -> "127.0.0.1:port" for sender.Config.Routes (and "*" for the
// catch-all provider). Each domain has its own Domain behaviour.
//
// # Decisions
//
// Every decision except the rate limit is deterministic: a 64-bit FNV-1a hash
// of (Config.Seed, lower-cased recipient) gives a number u in [0,1) and the
// domain's shares are laid end to end:
//
//	[0, UnknownShare)                     unknown user      at RCPT      (UnknownReply)
//	[.., +SpamShare)                      spam block        at end of DATA (SpamReply)
//	[.., +FullShare)                      mailbox full      at RCPT      (FullReply)
//	[.., +SizeShare)                      size-limited recipient: messages over SizeLimit bytes
//	                                      are refused at end of DATA (SizeReply)
//	the rest                              delivered
//
// Temporary failures are decided per attempt: hash(seed, n, recipient) where n
// counts the attempts the world has seen for that recipient, against
// TempFailShare, at RCPT (TempFailReply; a 421 reply also closes the
// connection, as RFC 5321 requires). The rate limit is a token bucket per
// domain (RatePerSec, Burst; scaled by Config.Scale) taken at RCPT; beyond it
// the domain answers RateReply.
//
// # Local-part prefixes
//
// For tests, a recipient's local part forces an outcome (the rate limit and
// faults still apply):
//
//	unknown-...   unknown user (UnknownReply)
//	spam-...      spam block (SpamReply)
//	full-...      mailbox full (FullReply)
//	big-...       size-limited recipient (SizeLimit, SizeReply; SizeLimit 0 means 10000 bytes)
//	tempfail-...  a temporary failure at every attempt (TempFailReply)
//	flaky-...     a temporary failure at the first attempt only, then delivered
//	ok-...        delivered (no share applies)
//
// # Faults
//
// For reliability tests a domain can misbehave (Domain.Fault, or
// World.SetFault at run time): FaultRefuse (the provider's listener is closed,
// so connections are refused; reopened on the same port when cleared),
// FaultTLS (the STARTTLS handshake fails), FaultGarbage (RCPT is answered with
// a line that is not SMTP), FaultDrop (the connection is closed in the middle
// of DATA), FaultStall (no answer to the end of DATA until the world
// closes) and FaultTarpit (connections are accepted but never greeted until
// the world closes). FaultRefuse, FaultTLS and FaultTarpit act before the
// recipient is known, so they apply to the whole provider serving the domain;
// FaultTarpit holds the connections opened while it is set.
//
// # Records
//
// The world records every attempt and every accepted message: counts per
// domain and answer code, bytes, and how many times each Message-ID was
// accepted (so tests can detect duplicates: Accepted, Duplicated); Stats
// returns a snapshot. All
// methods are safe for concurrent use.
package smtpsim
