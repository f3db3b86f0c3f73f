package bounces

import "strconv"

// DefaultRules returns the built-in rule table, a fresh copy on each call.
// docs/rules.md lists every rule with its source.
//
// The table is ordered by topic; precedence does not depend on the order
// except between rules of equal rank (see Rule), where the one listed first
// wins. So more specific wording is listed before more general wording.
func DefaultRules() []Rule {
	out := make([]Rule, len(builtinRules))
	copy(out, builtinRules)
	return out
}

// Sources cited by the rules (docs/rules.md has the full list).
const (
	srcAnalysis   = "the original analysis (shared/seed/000_4ceac9236f304a1a.txt)"
	srcRFC5321    = "RFC 5321 §4.2"
	srcRFC3463    = "RFC 3463"
	srcRFC5248    = "RFC 5248 / IANA enhanced status code registry"
	srcRFC7372    = "RFC 7372"
	srcRFC7505    = "RFC 7505"
	srcRFC7504    = "RFC 7504"
	srcRFC3834    = "RFC 3834"
	srcGoogle     = "https://support.google.com/a/answer/3726730 (Gmail SMTP errors and codes)"
	srcMicrosoft  = "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/non-delivery-reports-in-exchange-online"
	srcOutlook    = "https://sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx (Outlook.com postmaster)"
	srcYahoo      = "https://senders.yahooinc.com/smtp-error-codes/ and https://help.yahoo.com/kb/SLN3444.html"
	srcApple      = "https://support.apple.com/102322 (iCloud postmaster; codes as widely reported, Apple lists none)"
	srcSeznam     = "https://napoveda.seznam.cz/uzivatel-neexistuje"
	srcCentrum    = "https://pomoc.centrum.sk (antispam) and the original analysis"
	srcWording    = "wording of common MTAs (Postfix, Exim, Sendmail, qmail, Exchange), as in the Sisimai corpus"
	srcESP        = "ESP suppression answers (Amazon SES, SendGrid, Mailgun, Postmark)"
	srcGroups     = "https://support.google.com/groups/answer/6161288 (Google Groups: why a message to a group bounces); the localised bounce templates of Google Groups"
	srcSendAs     = "https://support.google.com/mail/?p=CustomFromDenied (Gmail 'Send mail as' through another SMTP server)"
	srcOrange     = "https://postmaster.orange.fr (Orange/Wanadoo postmaster: OFR error codes)"
	srcExchange   = "Exchange Server / Exchange Online SMTP answer to an invalid HELO/EHLO domain (501 5.5.4 Invalid domain name)"
	srcPermanent  = "RFC 5321 §4.2.1 and RFC 3463 (a 5yz reply and a class 5 status are permanent failures); Sendmail's 554 5.5.0 Service unavailable (EX_UNAVAILABLE)"
	srcPostfixDNS = "Postfix DNS lookup errors (\"Host not found, try again\": the resolver's TRY_AGAIN, a temporary failure; \"Host not found\" alone is NXDOMAIN)"
	srcDomino     = "HCL (Lotus) Domino answer for an unknown user (\"User ... not listed in Domino Directory\")"
)

// Provider domains.
var (
	googleDomains    = []string{"gmail.com", "googlemail.com"}
	microsoftDomains = []string{"hotmail.com", "outlook.com", "live.com", "msn.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es", "outlook.cz", "outlook.sk", "live.co.uk"}
	yahooDomains     = []string{"yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "yahoo.it", "yahoo.es", "yahoo.ca", "yahoo.com.br", "yahoo.co.jp", "verizon.net"}
	appleDomains     = []string{"icloud.com", "me.com", "mac.com"}
	seznamDomains    = []string{"seznam.cz", "email.cz", "post.cz", "spoluzaci.cz"}
	centrumDomains   = []string{"centrum.sk"}
)

// enhRange returns prefix.lo .. prefix.hi ("5.7", 606, 649).
func enhRange(prefix string, lo, hi int) []string {
	out := make([]string, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		out = append(out, prefix+"."+strconv.Itoa(i))
	}
	return out
}

// codeRange returns the basic codes lo..hi.
func codeRange(lo, hi int) []int {
	out := make([]int, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

func concat(a ...[]string) []string {
	var out []string
	for _, x := range a {
		out = append(out, x...)
	}
	return out
}

var builtinRules = []Rule{
	// ---- Providers -------------------------------------------------------

	// Google / Gmail / Google Workspace. Every Gmail answer ends in "- gsmtp".
	{ID: "google.rate.4.2.1", Provider: "google", Text: []string{"receiving mail too quickly", "receiving email too quickly", "receiving mail at a rate", "receiving email at a rate", "peak smtp relay limit exceeded"}, Class: ClassRateLimited, Hard: ptr(false),
		Explanation: "Gmail: the recipient receives mail too fast (450 4.2.1); slow down for this domain and retry later", Source: srcGoogle},
	{ID: "google.rate.4.2.1.domain", Domains: googleDomains, Enhanced: []string{"4.2.1"}, Class: ClassRateLimited,
		Explanation: "Gmail 4.2.1: the recipient receives mail too fast; slow down and retry later", Source: srcGoogle},
	{ID: "google.rate.4.7.28", Provider: "google", Text: []string{"unusual rate of", "unusual amount of unsolicited", "exceeded the quota for sending messages that have the same message-id"}, Class: ClassRateLimited, Hard: ptr(false),
		Explanation: "Gmail: an unusual rate of mail from your IP or domain (421 4.7.28); cut the rate", Source: srcGoogle},
	{ID: "google.rate.sending-limit", Provider: "google", Text: []string{"daily user sending limit exceeded", "smtp relay limit exceeded", "smtp relay sending limit exceeded", "this email has been rate limited. for more information"}, Class: ClassRateLimited, Hard: ptr(false),
		Explanation: "Gmail: a sending limit of the account or relay was exceeded; slow down", Source: srcGoogle},
	{ID: "google.ptr", Provider: "google", Text: []string{"does not have a ptr record", "doesn't have a ptr record", "missing ptr records", "ipv6 sending guidelines regarding ptr"}, Class: ClassPolicyBlocked,
		Explanation: "Gmail: the sending IP has no valid PTR record (5.7.25 / 4.7.23); fix reverse DNS", Source: srcGoogle},
	{ID: "google.auth", Provider: "google", Text: []string{"gmail requires all senders to authenticate", "gmail requires all bulk email senders to authenticate", "gmail requires bulk email senders to authenticate", "isn't aligned with either the authenticated spf or dkim", "doesn't have a dmarc record", "does not pass authentication checks", "fails to pass authentication checks", "unauthenticated email from", "does not have authentication information"}, Class: ClassAuthFailure,
		Explanation: "Gmail: the message failed SPF/DKIM/DMARC (5.7.26 family); fix the sender's authentication", Source: srcGoogle},
	{ID: "google.tls", Provider: "google", Text: []string{"tls required for rcpt domain", "not using a tls connection", "wasn't sent over a tls connection", "remote server does not support tls"}, Class: ClassPolicyBlocked,
		Explanation: "Gmail: TLS is required (421 4.7.0 / 5.7.29); enable STARTTLS", Source: srcGoogle},
	{ID: "google.spam", Provider: "google", Text: []string{"likely unsolicited mail", "likely unsolicited email", "suspicious due to the nature of the content", "content presents a potential security issue"}, Class: ClassSpamBlocked,
		Explanation: "Gmail: the message looks like spam or carries unsafe content (550 5.7.1); review the content", Source: srcGoogle},
	{ID: "google.reputation", Provider: "google", Text: []string{"very low reputation of the sending"}, Class: ClassPolicyBlocked,
		Explanation: "Gmail: the sending IP or domain has a very low reputation; review the sending practice", Source: srcGoogle},
	{ID: "google.policy", Provider: "google", Text: []string{"has a policy that prohibit", "ip not in whitelist for rcpt domain", "not authorized to send email directly to our servers", "not rfc 5322 compliant", "missing a valid address in the from: header", "missing a valid message-id", "multiple addresses in the from: header"}, Class: ClassPolicyBlocked,
		Explanation: "Gmail: a policy of the recipient or of Gmail refuses the message; review the message and setup", Source: srcGoogle},
	{ID: "google.no-account", Provider: "google", Text: []string{"the email account that you tried to reach does not exist", "the email account that you tried to reach is disabled", "the email account that you tried to reach is inactive", "we weren't able to find the recipient domain"}, Class: ClassInvalidRecipient,
		Explanation: "Gmail: the account does not exist or is disabled (550 5.1.1 / 5.2.1); suppress the address", Source: srcGoogle},
	{ID: "google.no-connect", Provider: "google", Text: []string{"did not accept our requests to connect", "message will be retried for"}, Class: ClassTransient,
		Explanation: "Gmail (as sender): the recipient's server could not be reached; it retries, then gives up", Source: srcGoogle},
	{ID: "google.groups-spam", Provider: "google", Text: []string{"rejected due to spam classification"}, Class: ClassSpamBlocked,
		Explanation: "Google Groups: the message was classified as spam", Source: srcGoogle},
	{ID: "google.groups.no-post", Provider: "google", Text: googleGroupsNoPost, Class: ClassPolicyBlocked,
		Explanation: "Google Groups: the group may not exist or we may not post to it (not a member, posting restricted); review the list address and the group's settings", Source: srcGroups},
	{ID: "google.send-mail-as", Provider: "google", Text: []string{"the settings for your 'send mail as' account", "'send mail as' feature"}, Class: ClassPolicyBlocked,
		Explanation: "Gmail: the 'Send mail as' SMTP settings of the sending account are wrong (CustomFromDenied); fix the sender's setup", Source: srcSendAs},
	{ID: "google.inbox-full", Provider: "google", Text: []string{"inbox is out of storage space", "account that you tried to reach is over quota"}, Class: ClassMailboxFull,
		Explanation: "Gmail: the recipient's inbox is out of storage (452 4.2.2 / 552 5.2.2); retry later", Source: srcGoogle},
	{ID: "google.size", Provider: "google", Text: []string{"exceeded google's message size limits", "exceeds google's limit of", "size of your message"}, Class: ClassMessageTooLarge,
		Explanation: "Gmail: the message exceeds Google's size limits (552 5.3.4); resend a smaller message", Source: srcGoogle},

	// Microsoft: Outlook.com / Hotmail and Exchange Online.
	{ID: "microsoft.rate.4.7.650", Provider: "microsoft", Enhanced: []string{"4.7.650"}, Class: ClassRateLimited,
		Explanation: "Microsoft: the sending IP is temporarily rate limited due to its reputation (451 4.7.650); cut the rate", Source: srcMicrosoft},
	{ID: "microsoft.rate.text", Provider: "microsoft", Text: []string{"temporarily rate limited due to ip reputation", "server busy. please try again later", "access denied, please try again later", "rp-001", "rp-002", "rp-003", "submission quota exceeded", "receive limit from specific sender exceeded", "message receive limit", "recipient thread limit exceeded"}, Class: ClassRateLimited, Hard: ptr(false),
		Explanation: "Microsoft: throttled (4.7.500-699, RP-00x, receive limits); cut the rate and retry later", Source: srcMicrosoft},
	{ID: "microsoft.rate.enhanced", Provider: "microsoft", Enhanced: concat(enhRange("4.7", 500, 649), enhRange("4.7", 651, 699), []string{"5.2.121", "5.2.122"}), Class: ClassRateLimited, Hard: ptr(false),
		Explanation: "Microsoft: throttled (4.7.500, 5.2.121/122 receive limits); cut the rate", Source: srcMicrosoft},
	{ID: "microsoft.blocklist", Provider: "microsoft", Text: []string{"part of their network is on our block list", "on our block list", "(s3150)", "(s3140)", "(s3115)", "sc-001", "sc-002", "sc-003", "sc-004", "ou-001", "ou-002", "banned sending ip", "tenant has exceeded threshold", "traffic not accepted from this ip", "spam abuse detected", "unregistered domain"}, Class: ClassPolicyBlocked,
		Explanation: "Microsoft: the sending IP or network is on Microsoft's block list (S3150, 5.7.606-649, 5.7.7xx); request delisting", Source: srcOutlook},
	{ID: "microsoft.banned.enhanced", Provider: "microsoft", Enhanced: concat(enhRange("5.7", 501, 503), enhRange("5.7", 606, 649), enhRange("5.7", 700, 750)), Class: ClassPolicyBlocked,
		Explanation: "Microsoft: access denied to the sending IP or tenant (5.7.501-503, 5.7.606-649, 5.7.700-750); request delisting", Source: srcMicrosoft},
	{ID: "microsoft.auth.5.7.509", Provider: "microsoft", Enhanced: []string{"5.7.509", "5.7.515"}, Class: ClassAuthFailure,
		Explanation: "Microsoft: the sending domain does not pass DMARC or the required authentication (5.7.509 / 5.7.515)", Source: srcMicrosoft},
	{ID: "microsoft.dbeb.5.4.1", Provider: "microsoft", Text: []string{"recipient address rejected: access denied"}, Class: ClassInvalidRecipient,
		Explanation: "Microsoft: the recipient does not exist in the directory (550 5.4.1 Recipient address rejected: Access denied); suppress the address", Source: srcMicrosoft},
	{ID: "microsoft.mailbox-unavailable.5.5.0", Provider: "microsoft", Enhanced: []string{"5.5.0"}, Text: []string{"requested action not taken: mailbox unavailable"}, Class: ClassInvalidRecipient,
		Explanation: "Outlook.com: mailbox unavailable (550 5.5.0), the address does not exist; suppress it", Source: srcOutlook},
	{ID: "microsoft.domain-unreachable", Provider: "microsoft", Text: []string{"because the domain is not reachable"}, Class: ClassInvalidRecipient,
		Explanation: "Outlook.com: the recipient's domain is not reachable (554 5.5.0); check the domain", Source: srcOutlook},
	{ID: "microsoft.recipient-not-found", Provider: "microsoft", Enhanced: []string{"5.1.10"}, Class: ClassInvalidRecipient,
		Explanation: "Microsoft: recipient not found (5.1.10); suppress the address", Source: srcMicrosoft},

	// Yahoo / AOL.
	{ID: "yahoo.tss04", Provider: "yahoo", Text: []string{"[tss04]", "temporarily deferred due to unexpected volume", "max message per connection"}, Class: ClassRateLimited, Hard: ptr(false),
		Explanation: "Yahoo: deferred for unexpected volume ([TSS04]); cut the rate and retry later", Source: srcYahoo},
	{ID: "yahoo.ts01-ts02", Provider: "yahoo", Text: []string{"[ts01]", "[ts02]", "[ts06]", "deferred due to user complaints", "deferred due to excessive user complaints"}, Class: ClassPolicyBlocked, Hard: ptr(false),
		Explanation: "Yahoo: deferred for the sender's reputation or user complaints ([TS01]/[TS02]); review the list and content", Source: srcYahoo},
	{ID: "yahoo.ts03", Provider: "yahoo", Text: []string{"[ts03]", "permanently deferred", "[ts07]"}, Class: ClassSpamBlocked,
		Explanation: "Yahoo: messages permanently deferred for spam characteristics or complaints ([TS03]); review the content", Source: srcYahoo},
	{ID: "yahoo.bl", Provider: "yahoo", Text: []string{"[bl21]", "[bl22]", "[bl23]", "connections will not be accepted from"}, Class: ClassPolicyBlocked,
		Explanation: "Yahoo: the sending IP is on a block list such as Spamhaus ([BL21]); request delisting", Source: srcYahoo},
	{ID: "yahoo.content", Provider: "yahoo", Text: []string{"[ph01]", "[ph02]", "[ph03]", "not accepted for policy reasons"}, Class: ClassPolicyBlocked,
		Explanation: "Yahoo: the content or message is not accepted for policy reasons (PH*, 5.7.9)", Source: srcYahoo},
	{ID: "yahoo.no-account", Provider: "yahoo", Text: []string{"this user doesn't have a", "user doesn't have a yahoo", "user doesn't have an aol"}, Class: ClassInvalidRecipient,
		Explanation: "Yahoo: the user does not have an account (554 delivery error: dd); suppress the address", Source: srcYahoo},
	{ID: "yahoo.over-quota", Provider: "yahoo", Text: []string{"this account is over quota"}, Class: ClassMailboxFull,
		Explanation: "Yahoo: the account is over quota; retry later", Source: srcYahoo},
	{ID: "yahoo.busy", Provider: "yahoo", Text: []string{"resources temporarily unavailable"}, Class: ClassTransient,
		Explanation: "Yahoo: the servers are busy; retry in a few minutes", Source: srcYahoo},
	{ID: "yahoo.mailbox-not-found.552", Domains: yahooDomains, Codes: []int{552}, Class: ClassInvalidRecipient,
		Explanation: "Yahoo answers 552 for an address that does not exist (552 1 Requested mail action aborted, mailbox not found); suppress it", Source: srcAnalysis},

	// Apple iCloud.
	{ID: "apple.local-policy.554", Provider: "apple", Codes: []int{554}, Text: []string{"[cs01]", "[cs02]", "[hm07]", "[hm08]"}, Class: ClassSpamBlocked,
		Explanation: "iCloud: message rejected by the spam filter (554 5.7.1 [CS01]/[HM08]); review the content", Source: srcApple},
	{ID: "apple.local-policy", Provider: "apple", Text: []string{"[cs01]", "[cs02]", "[hm07]", "[hm08]"}, Class: ClassPolicyBlocked,
		Explanation: "iCloud: message rejected due to local policy (550 5.7.1 [CS01]/[HM08]); review reputation and authentication", Source: srcApple},
	{ID: "apple.rate", Provider: "apple", Text: []string{"deferred due to excessive volume"}, Class: ClassRateLimited, Hard: ptr(false),
		Explanation: "iCloud: deferred due to excessive volume (421 4.7.1); cut the rate", Source: srcApple},
	{ID: "apple.no-user", Domains: appleDomains, Text: []string{"user does not exist"}, Class: ClassInvalidRecipient,
		Explanation: "iCloud: the user does not exist (550 5.1.1); suppress the address", Source: srcApple},

	// Seznam.cz.
	{ID: "seznam.no-service", Provider: "seznam", Text: []string{"user hasn't got the service mapped"}, Class: ClassInvalidRecipient,
		Explanation: "Seznam.cz: the user has no mail service (5.1.1 szn); suppress the address", Source: srcSeznam},
	{ID: "seznam.no-mailbox", Domains: seznamDomains, Text: []string{"no such mailbox"}, Class: ClassInvalidRecipient,
		Explanation: "Seznam.cz: no such mailbox (550 5.1.1); suppress the address", Source: srcAnalysis},

	// Centrum.sk.
	{ID: "centrum.address-rejected", Domains: centrumDomains, Text: []string{"address rejected"}, Class: ClassInvalidRecipient,
		Explanation: "Centrum.sk: address rejected (550 #5.1.0), the address does not exist; suppress it", Source: srcAnalysis},
	{ID: "centrum.spam.554", Domains: centrumDomains, Codes: []int{554}, Class: ClassSpamBlocked,
		Explanation: "Centrum.sk: 554 is its spam filter (the analysis; centrum.sk's antispam); review the content and the list", Source: srcCentrum},

	// Orange / Wanadoo (France). Every answer ends in an OFR code.
	{ID: "orange.spam", Provider: "orange", Text: []string{"ofr_506", "ofr_536"}, Class: ClassSpamBlocked,
		Explanation: "Orange: the message is suspected spam (550 5.2.0 Mail rejete, OFR_506/OFR_536); review the content and the list", Source: srcOrange},

	// ---- ESPs and automatic replies ---------------------------------------

	{ID: "esp.suppressed", Text: []string{"suppression list", "address is suppressed", "has been suppressed", "previously bounced", "on the suppression"}, Class: ClassSuppressed,
		Explanation: "the ESP suppresses the address (an earlier bounce or complaint); no attempt was made", Source: srcESP},
	{ID: "text.auto-reply", Text: []string{"out of office", "out of the office", "vacation", "auto-reply", "autoreply", "automatic reply", "auto reply", "away from my desk", "away from the office"}, Class: ClassAutoReply,
		Explanation: "an automatic reply (vacation, out of office): the message was delivered", Source: srcRFC3834},

	// ---- Wording that tells, most specific first ---------------------------

	{ID: "code.452.storage", Codes: []int{452}, Text: []string{"insufficient system storage", "insufficient storage"}, Class: ClassRateLimited,
		Explanation: "452 insufficient system storage: in the analysis, too many messages at once (Gmail); slow down", Source: srcAnalysis},
	{ID: "text.helo-domain.501", Codes: []int{501}, Text: []string{"invalid domain name"}, Class: ClassPolicyBlocked,
		Explanation: "501 invalid domain name: the server refuses our HELO/EHLO name (Exchange's answer to a bad EHLO); fix the sending host's name", Source: srcExchange},
	{ID: "text.greylist", Text: []string{"greylist", "graylist", "grey-list", "gray-list", "greylisted", "greylisting"}, Class: ClassTransient,
		Explanation: "greylisting: the server defers a first attempt on purpose; retry later", Source: srcWording},
	{ID: "text.user-unknown.enhanced", Enhanced: []string{"5.1", "4.1", "5.2.1"}, Text: []string{"user unknown", "unknown user", "no such user", "user not found", "no such mailbox", "mailbox not found", "mailbox unavailable", "does not exist", "unknown recipient", "recipient unknown", "invalid recipient", "recipient not found", "no such recipient", "address unknown", "unknown address", "invalid mailbox", "no mailbox", "mailbox disabled", "account disabled", "account is disabled"}, Class: ClassInvalidRecipient,
		Explanation: "the wording and the enhanced code agree: the address does not exist; suppress it", Source: srcWording},
	{ID: "text.mailbox-full.enhanced", Enhanced: []string{"5.2.2", "4.2.2"}, Text: []string{"mailbox full", "mailbox is full", "quota", "mailbox size", "storage"}, Class: ClassMailboxFull,
		Explanation: "the wording and the enhanced code agree: the mailbox is full; retry later", Source: srcWording},
	{ID: "text.header-size.5.6", Enhanced: []string{"5.6", "4.6"}, Text: []string{"header too large", "headers too large", "header too long", "headers too long", "header size", "too many headers", "too many header"}, Class: ClassSpamBlocked,
		Explanation: "x.6.x with header size wording: the headers' format was refused, not the message size (a smaller message does not help); review the content", Source: srcRFC3463},
	{ID: "text.rfc-compliance", Text: []string{"duplicate header", "not rfc 5322", "rfc 5322 compliant", "rfc5322", "not rfc compliant", "header error", "malformed header", "invalid header", "message is malformed", "malformed message"}, Class: ClassPolicyBlocked,
		Explanation: "the message is not RFC 5322 compliant (headers); fix the message format", Source: srcWording},
	{ID: "text.uribl", Text: []string{"blacklisted url", "uribl", "surbl", "dbl.spamhaus", "spamhaus dbl", "url in message"}, Class: ClassSpamBlocked,
		Explanation: "a URL in the message is on a block list; review the content's links", Source: srcWording},
	{ID: "text.sender-enhanced", Enhanced: []string{"5.1.7", "5.1.8", "4.1.7", "4.1.8"}, Text: []string{"no such domain", "domain not found", "does not exist", "unknown", "unroutable", "unrouteable", "invalid", "rejected", "not found"}, Class: ClassPolicyBlocked,
		Explanation: "x.1.7/x.1.8: the server refuses our sender address or its domain; review the sending setup", Source: srcRFC3463},
	{ID: "text.temporary-dns", Enhanced: []string{"4"}, Text: []string{"nxdomain", "domain not found", "domain name not found", "host not found", "no such domain", "lookup failure", "name server"}, Class: ClassTransient,
		Explanation: "a DNS lookup failed with a temporary status; retry later", Source: srcWording},
	{ID: "text.relay-quota", Text: []string{"relay quota", "sending quota", "daily quota", "hourly quota", "send quota", "message quota"}, Class: ClassRateLimited,
		Explanation: "a sending or relay quota was reached; slow down", Source: srcWording},
	{ID: "text.auth", Text: []string{"spf", "dkim", "dmarc", "sender policy framework", "domainkeys", "not authenticated", "authentication failed", "authentication checks"}, Class: ClassAuthFailure,
		Explanation: "the wording names an SPF/DKIM/DMARC failure; fix the sender's authentication", Source: srcWording},
	{ID: "text.account-or-domain", Text: []string{"the account or domain may not exist"}, Class: ClassInvalidRecipient,
		Explanation: "Exim/cPanel: the account or domain may not exist; suppress the address", Source: srcWording},
	{ID: "text.blocklist", Text: []string{"blacklist", "blocklist", "block list", "black list", "spamhaus", "spamcop", "barracuda", "dnsbl", "sorbs", "blocked using", "listed at", "bad reputation", "poor reputation", "low reputation", "ip reputation", "reputation", "client host blocked", "blocked for abuse", "blocked for spamming"}, Class: ClassPolicyBlocked,
		Explanation: "the sending IP or domain is on a block list or has a bad reputation; request delisting", Source: srcWording},
	{ID: "text.ptr", Text: []string{"reverse dns", "ptr record", "reverse lookup", "cannot find your hostname", "cannot find your reverse hostname", "no ptr", "rdns", "reverse hostname", "mismatches client ip", "ip name lookup failed", "does not match the ip", "unverifiable sending ip", "unverifyable sending ip"}, Class: ClassPolicyBlocked,
		Explanation: "the sending IP has no valid reverse DNS (PTR); fix the PTR record", Source: srcWording},
	{ID: "text.relay", Text: []string{"relay access denied", "relaying denied", "relay not permitted", "not permitted to relay", "unable to relay", "relaying not allowed", "we do not relay", "not allowed to relay", "relay denied", "not configured to relay", "insecure mail relay", "open relay"}, Class: ClassPolicyBlocked,
		Explanation: "relaying denied: the server does not accept mail for this domain from us", Source: srcWording},
	{ID: "text.sender-rejected", Text: []string{"sender address rejected", "sender rejected", "sender denied", "sender is blacklisted", "domain of sender address", "sender verify failed", "sender address is blocked", "sender blocked", "client host rejected", "helo command rejected", "bad helo", "invalid helo", "unroutable sender", "invalid sender", "sender domain", "responsible address", "from: domain", "unauthenticated senders", "turn on smtp authentication", "authentication required", "not a member of"}, Class: ClassPolicyBlocked,
		Explanation: "the server refuses our sender, client host or HELO; review the sending setup", Source: srcWording},
	{ID: "text.tls", Text: []string{"starttls required", "starttls is required", "requires starttls", "require starttls", "starttls command first", "starttls failed", "tls required", "tls is required", "must issue a starttls", "encryption required", "does not support tls"}, Class: ClassPolicyBlocked,
		Explanation: "the server requires TLS; enable STARTTLS", Source: srcWording},
	{ID: "text.virus", Text: []string{"virus", "malware", "infected", "phishing", "illegal attachment", "banned attachment", "attachment not allowed"}, Class: ClassSpamBlocked,
		Explanation: "the content was refused as a virus, phishing or a forbidden attachment; review the content", Source: srcWording},
	{ID: "text.spam", Text: []string{"spam", "unsolicited", "junk mail", "bulk mail", "blocked for content", "content rejected", "message content rejected", "content filter", "rejected due to content", "looks like spam"}, Class: ClassSpamBlocked,
		Explanation: "a spam filter refused the message; review the content", Source: srcWording},
	{ID: "text.mailbox-full", Text: []string{"mailbox full", "mailbox is full", "mailbox has exceeded", "mailbox size limit", "quota exceeded", "over quota", "overquota", "exceeded storage", "exceeds the quota", "over the quota", "quota", "full mailbox", "mailbox is over", "not enough space", "out of storage", "storage space", "mailbox exceeds", "mailbox exceeded", "mailfolder is full", "folder is full"}, Class: ClassMailboxFull,
		Explanation: "the recipient's mailbox is full; retry later, suppress after repeated failures", Source: srcWording},
	{ID: "text.too-large", Text: []string{"message size exceeds", "size exceeds", "message too large", "message too big", "message is too large", "message is too big", "too large", "too big", "size limit", "exceeds the maximum", "exceeds maximum", "message length exceeds", "maximum message size", "message size limit", "line limit exceeded", "line too long"}, Class: ClassMessageTooLarge,
		Explanation: "the message exceeds a size limit; resend the small template", Source: srcWording},
	{ID: "text.dns-try-again", Text: []string{"host not found, try again"}, Class: ClassTransient,
		Explanation: "the DNS lookup of the recipient's domain failed for now (Postfix: \"Host not found, try again\"), which is not a domain that does not exist; retry later", Source: srcPostfixDNS},
	{ID: "text.no-domain", Text: []string{"host not found", "host unknown", "domain not found", "no such domain", "domain does not exist", "unrouteable", "unroutable", "name or service not known", "no mx", "domain name not found", "nxdomain", "no route to domain", "domain is not accepting mail", "does not accept mail", "null mx", "unknown host"}, Class: ClassInvalidRecipient,
		Explanation: "the recipient's domain does not exist or takes no mail; suppress the address", Source: srcWording},
	{ID: "text.user-unknown", Text: []string{"user unknown", "unknown user", "no such user", "user not found", "no such mailbox", "no mailbox", "mailbox not found", "mailbox unavailable", "mailbox does not exist", "mailbox is unavailable", "does not exist", "doesn't exist", "unknown recipient", "recipient unknown", "invalid recipient", "recipient not found", "no such recipient", "address unknown", "unknown address", "address does not exist", "invalid mailbox", "not a valid mailbox", "bad destination mailbox", "address couldn't be found", "address could not be found", "not listed in public name", "not listed in domino directory", "invalid final delivery userid", "account is blocked", "account has been blocked", "no valid recipients", "no smtp service", "account is locked", "temporary locked", "temporarily locked", "user locked", "addressee unknown", "no such address", "not our customer", "user not exist", "unknown local part", "recipient rejected", "undeliverable address", "account is disabled", "account has been disabled", "account disabled", "mailbox disabled", "mailbox is disabled", "account is inactive", "account has been suspended", "account suspended", "has been deactivated", "no longer active", "no longer available", "has moved", "mailbox has moved"}, Class: ClassInvalidRecipient,
		Explanation: "the wording says the address does not exist or is disabled; suppress it", Source: srcWording},
	{ID: "text.rate", Text: []string{"too many connections", "too many concurrent", "too many simultaneous", "connection rate", "rate limit", "rate-limit", "ratelimit", "rate limited", "too many messages", "too many recipients", "too many sessions", "sending rate", "throttl", "too fast", "too quickly", "exceeded the rate", "slow down", "frequency limit", "connection limit", "try again in"}, Class: ClassRateLimited,
		Explanation: "the server limits how fast or how much we send; cut the rate and retry later", Source: srcWording},
	{ID: "text.blocked", Text: []string{"blocked", "access denied", "refused to talk to me", "service refused", "service refuse", "not accepting connections", "denied by policy", "policy violation", "protocol violation", "rejected by policy", "administratively denied", "administrative prohibition", "prohibited"}, Class: ClassPolicyBlocked,
		Explanation: "the server blocks or refuses us by policy; review reputation and setup", Source: srcWording},
	{ID: "text.expired", Text: []string{"delivery time expired", "retry time exceeded", "retry timeout exceeded", "message expired", "could not be delivered within", "has been delayed", "delivery expired", "gave up", "giving up", "too long in the queue", "message timed out", "expired", "will be retried"}, Class: ClassTransient,
		Explanation: "delivery was retried until the message expired; a temporary failure that lasted", Source: srcWording},
	{ID: "text.network", Text: []string{"connection timed out", "timed out", "timeout", "connection refused", "connection reset", "lost connection", "network is unreachable", "no route to host", "connection dropped", "connection closed", "could not connect", "dns lookup", "temporary lookup failure", "lookup failure", "network error", "hop count", "routing loop", "mail loop", "loop detected", "pipe to |"}, Class: ClassTransient,
		Explanation: "a network or DNS failure reaching the server; retry later", Source: srcWording},
	{ID: "text.temporary", Text: []string{"try again later", "please try again", "try later", "temporarily", "temporary failure", "temporary error", "temporary problem", "server busy", "system busy", "service not available", "service unavailable", "currently unavailable", "local error", "internal error", "system error", "insufficient system storage", "insufficient disk space", "system is full", "disk full", "mailer error", "deferred"}, Class: ClassTransient, NotPermanent: true,
		Explanation: "the server reports a temporary problem; retry later (not for a 5xx answer with a 5.x.x status: both codes say permanent)", Source: srcWording},
	{ID: "text.unavailable.permanent", Codes: codeRange(500, 599), Enhanced: []string{"5.0.0", "5.5.0"}, Text: []string{"service unavailable", "service not available", "service is unavailable", "service currently unavailable", "service temporarily unavailable"}, Class: ClassUnknown,
		Explanation: "a permanent answer (5xx with 5.0.0 or 5.5.0) saying a service is unavailable: the receiving system refused for good without a reason (Sendmail: a mailer or program it cannot run); retry on the default schedule and review", Source: srcPermanent},

	// ---- Enhanced status codes (RFC 3463, RFC 5248 registry, RFC 7372, RFC 7505) ----

	{ID: "rfc3463.554.5.7.1", Codes: []int{554}, Enhanced: []string{"5.7.1", "5.7.0"}, Class: ClassSpamBlocked,
		Explanation: "554 5.7.1: the transaction failed for a security reason, as spam filters answer; review the content", Source: srcAnalysis},
	{ID: "rfc3463.2", Enhanced: []string{"2"}, Class: ClassDelivered, Explanation: "2.x.x: success", Source: srcRFC3463},
	{ID: "rfc3463.x.1.0", Enhanced: []string{"5.1.0"}, Class: ClassInvalidRecipient, Explanation: "5.1.0: other address status, the address was rejected; suppress it", Source: srcRFC3463},
	{ID: "rfc3463.x.1.1", Enhanced: []string{"5.1.1", "4.1.1"}, Class: ClassInvalidRecipient, Explanation: "x.1.1: bad destination mailbox address; suppress it", Source: srcRFC3463},
	{ID: "rfc3463.x.1.2", Enhanced: []string{"5.1.2", "4.1.2"}, Class: ClassInvalidRecipient, Explanation: "x.1.2: bad destination system address (the domain); suppress the address", Source: srcRFC3463},
	{ID: "rfc3463.x.1.3", Enhanced: []string{"5.1.3"}, Class: ClassInvalidRecipient, Explanation: "5.1.3: bad destination mailbox address syntax; suppress it", Source: srcRFC3463},
	{ID: "rfc3463.x.1.4", Enhanced: []string{"5.1.4"}, Class: ClassInvalidRecipient, Explanation: "5.1.4: destination mailbox address ambiguous", Source: srcRFC3463},
	{ID: "rfc3463.x.1.6", Enhanced: []string{"5.1.6", "4.1.6"}, Class: ClassInvalidRecipient, Explanation: "x.1.6: destination mailbox has moved, no forwarding address", Source: srcRFC3463},
	{ID: "rfc3463.x.1.7", Enhanced: []string{"5.1.7", "4.1.7", "5.1.8", "4.1.8"}, Class: ClassPolicyBlocked, Explanation: "x.1.7/x.1.8: our sender address or its domain is refused; review the sending setup", Source: srcRFC3463},
	{ID: "rfc7505.x.1.10", Enhanced: []string{"5.1.10"}, Class: ClassInvalidRecipient, Explanation: "5.1.10: the recipient's domain has a null MX, it takes no mail", Source: srcRFC7505},
	{ID: "rfc3463.x.2.1", Enhanced: []string{"5.2.1"}, Class: ClassInvalidRecipient, Explanation: "5.2.1: mailbox disabled, not accepting messages; suppress it", Source: srcRFC3463},
	{ID: "rfc3463.x.2.2", Enhanced: []string{"5.2.2", "4.2.2"}, Class: ClassMailboxFull, Explanation: "x.2.2: mailbox full; retry later", Source: srcRFC3463},
	{ID: "rfc3463.x.2.3", Enhanced: []string{"5.2.3", "4.2.3"}, Class: ClassMessageTooLarge, Explanation: "x.2.3: message length exceeds an administrative limit; resend smaller", Source: srcRFC3463},
	{ID: "rfc3463.x.3.1", Enhanced: []string{"5.3.1", "4.3.1"}, Class: ClassTransient, Explanation: "x.3.1: the mail system is full; retry later", Source: srcRFC3463},
	{ID: "rfc3463.5.3.2", Enhanced: []string{"5.3.2"}, Class: ClassInvalidRecipient, Explanation: "5.3.2: the system does not accept network messages", Source: srcRFC3463},
	{ID: "rfc3463.x.3.4", Enhanced: []string{"5.3.4", "4.3.4"}, Class: ClassMessageTooLarge, Explanation: "x.3.4: message too big for the system; resend smaller", Source: srcRFC3463},
	{ID: "rfc3463.x.3", Enhanced: []string{"5.3", "4.3"}, Class: ClassTransient, Explanation: "x.3.x: a problem of the receiving mail system; retry later", Source: srcRFC3463},
	{ID: "rfc3463.5.4.4", Enhanced: []string{"5.4.4"}, Class: ClassInvalidRecipient, Explanation: "5.4.4: unable to route, the domain has no mail server", Source: srcRFC3463},
	{ID: "rfc3463.x.4", Enhanced: []string{"5.4", "4.4"}, Class: ClassTransient, Explanation: "x.4.x: network or routing failure; retry later", Source: srcRFC3463},
	{ID: "rfc3463.x.5.3", Enhanced: []string{"5.5.3", "4.5.3"}, Class: ClassRateLimited, Explanation: "x.5.3: too many recipients; send fewer per transaction and slow down", Source: srcRFC3463},
	{ID: "rfc3463.5.6", Enhanced: []string{"5.6"}, Class: ClassSpamBlocked, Explanation: "5.6.x: the content or its format was refused; review the content", Source: srcRFC3463},
	{ID: "rfc5248.x.7.8", Enhanced: []string{"5.7.8", "4.7.8"}, Class: ClassAuthFailure, Explanation: "x.7.8: our SMTP authentication credentials are invalid", Source: srcRFC5248},
	{ID: "rfc5248.x.7.13", Enhanced: []string{"5.7.13", "5.7.17", "5.7.18"}, Class: ClassInvalidRecipient, Explanation: "5.7.13/17/18: the user account is disabled or its owner changed; suppress it", Source: srcRFC5248},
	{ID: "rfc7372.x.7.20", Enhanced: []string{"5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.26", "4.7.20", "4.7.21", "4.7.22", "4.7.23", "4.7.24", "4.7.26"}, Class: ClassAuthFailure, Explanation: "x.7.20-x.7.26: DKIM/SPF/DMARC validation failed (RFC 7372); fix the sender's authentication", Source: srcRFC7372},
	{ID: "rfc7372.x.7.25", Enhanced: []string{"5.7.25", "4.7.25"}, Class: ClassPolicyBlocked, Explanation: "x.7.25: reverse DNS validation failed; fix the PTR record", Source: srcRFC7372},
	{ID: "rfc7505.x.7.27", Enhanced: []string{"5.7.27"}, Class: ClassInvalidRecipient, Explanation: "5.7.27: null MX (RFC 7505); no mail is exchanged with that domain", Source: srcRFC7505},
	{ID: "rfc5248.x.7.28", Enhanced: []string{"5.7.28", "4.7.28"}, Class: ClassRateLimited, Explanation: "x.7.28: mail flood detected; cut the rate", Source: srcRFC5248},
	{ID: "rfc5248.x.7.29", Enhanced: []string{"5.7.29", "4.7.29"}, Class: ClassAuthFailure, Explanation: "x.7.29: ARC validation failure", Source: srcRFC5248},
	{ID: "rfc5248.x.7.30", Enhanced: []string{"5.7.30"}, Class: ClassPolicyBlocked, Explanation: "5.7.30: REQUIRETLS support required", Source: srcRFC5248},
	{ID: "rfc3463.5.7.1", Enhanced: []string{"5.7.1"}, Class: ClassPolicyBlocked, Explanation: "5.7.1: delivery not authorized, refused by policy; review reputation and setup", Source: srcRFC3463},
	{ID: "rfc3463.5.7", Enhanced: []string{"5.7"}, Class: ClassPolicyBlocked, Explanation: "5.7.x: refused for a security or policy reason; review the sending setup", Source: srcRFC3463},

	// ---- Basic reply codes (the original analysis' table, RFC 5321) ----------

	{ID: "code.200", Codes: []int{200}, Class: ClassDelivered, Explanation: "200 (ESP export): delivered", Source: srcAnalysis},
	{ID: "code.250", Codes: []int{250, 251, 252}, Class: ClassDelivered, Explanation: "250: the server accepted the message", Source: srcRFC5321},
	{ID: "code.421", Codes: []int{421}, Class: ClassTransient, Explanation: "421: service not available, closing the channel; retry later", Source: srcAnalysis},
	{ID: "code.450", Codes: []int{450}, Class: ClassTransient, Explanation: "450: mailbox unavailable for now; retry later", Source: srcRFC5321},
	{ID: "code.451", Codes: []int{451}, Class: ClassTransient, Explanation: "451: local error in processing; retry later", Source: srcAnalysis},
	{ID: "code.452", Codes: []int{452}, Class: ClassRateLimited, Explanation: "452 without detail: too many messages or recipients at once (RFC 5321: insufficient storage; receivers use it when sent to too fast); slow down and retry", Source: srcAnalysis},
	{ID: "code.499", Codes: []int{499}, Class: ClassTransient, Explanation: "499 (ESP export): the connection was closed before an answer; retry", Source: srcAnalysis},
	{ID: "code.550", Codes: []int{550}, Class: ClassInvalidRecipient, Explanation: "550 without detail: mailbox unavailable, in the analysis an address that does not exist; suppress it", Source: srcAnalysis},
	{ID: "code.551", Codes: []int{551}, Class: ClassInvalidRecipient, Explanation: "551: user not local; the address is not served here", Source: srcRFC5321},
	{ID: "code.552", Codes: []int{552}, Class: ClassMessageTooLarge, Explanation: "552 without detail: exceeded storage allocation, in the analysis a size limit (5.3.4); resend the small template", Source: srcAnalysis},
	{ID: "code.553", Codes: []int{553}, Class: ClassInvalidRecipient, Explanation: "553: mailbox name not allowed; suppress the address", Source: srcRFC5321},
	{ID: "code.554", Codes: []int{554}, Class: ClassPolicyBlocked, Explanation: "554 without detail: transaction failed, in the analysis most likely a spam filter; flag for review", Source: srcAnalysis},
	{ID: "code.521", Codes: []int{521, 556}, Class: ClassInvalidRecipient, Explanation: "521/556: the domain does not accept mail (RFC 7504)", Source: srcRFC7504},
	{ID: "code.50x", Codes: []int{500, 501, 502, 503, 504}, Class: ClassTransient, Explanation: "500-504: a command or syntax error in the session; retry later", Source: srcRFC5321},
	{ID: "code.530", Codes: []int{530}, Class: ClassPolicyBlocked, Explanation: "530: authentication or TLS required by the server", Source: srcRFC5321},
	{ID: "code.535", Codes: []int{535}, Class: ClassAuthFailure, Explanation: "535: our SMTP authentication credentials were refused", Source: srcRFC5321},
	{ID: "code.605", Codes: []int{605}, Class: ClassSuppressed, Explanation: "605 (ESP export): the address is already suppressed, no attempt was made", Source: srcAnalysis},
}

// googleGroupsNoPost is the opening of Google Groups' "the group you tried
// to contact may not exist, or you may not have permission to post" bounce
// in the languages Google sends it in (English first). Each is the part of
// the template that names the group the sender tried to contact; non-ASCII
// keywords match case-sensitively.
var googleGroupsNoPost = []string{
	"the group you tried to contact",                        // en
	"may not have permission to post messages to the group", // en
	"groups.google.com/support",                             // the Help Center link, all languages
	"連絡しようとしたグループ",                                          // ja
	"您試圖聯絡的",                                                // zh-TW
	"إعلامك بأن المجموعة",                                   // ar
	"skupina, kterou se pokoušíte kontaktovat",              // cs
	"die gruppe, die sie kontaktieren möchten",              // de
	"η ομάδα με την οποία επιχειρείτε να επικοινωνήσετε",    // el
	"el grupo con el que has intentado ponerte en contacto", // es
	"با آن ارتباط برقرار کنید",                              // fa
	"le groupe que vous avez essayé de contacter",           // fr
	"שניסית ליצור עמה קשר",                                  // he
	"आपने जिस समूह से संपर्क",                               // hi
	"намагалися зв'язатися",                                 // uk
}

func ptr[T any](v T) *T { return &v }
