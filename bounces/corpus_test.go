package bounces

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// reasonClass maps a Sisimai reason to a class, as the corpus README's
// mapping table says.
var reasonClass = map[string]Class{
	"userunknown": ClassInvalidRecipient, "hostunknown": ClassInvalidRecipient, "hasmoved": ClassInvalidRecipient,
	"suspend": ClassInvalidRecipient, "filtered": ClassInvalidRecipient, "notaccept": ClassInvalidRecipient,
	"mailboxfull": ClassMailboxFull,
	"mesgtoobig":  ClassMessageTooLarge, "exceedlimit": ClassMessageTooLarge, "emailtoolarge": ClassMessageTooLarge,
	"spamdetected": ClassSpamBlocked, "contenterror": ClassSpamBlocked, "virusdetected": ClassSpamBlocked,
	"blocked": ClassPolicyBlocked, "badreputation": ClassPolicyBlocked, "requireptr": ClassPolicyBlocked,
	"policyviolation": ClassPolicyBlocked, "rejected": ClassPolicyBlocked, "norelaying": ClassPolicyBlocked,
	"securityerror": ClassPolicyBlocked, "notcompliantrfc": ClassPolicyBlocked, "failedstarttls": ClassPolicyBlocked,
	"authfailure": ClassAuthFailure,
	"toomanyconn": ClassRateLimited, "speeding": ClassRateLimited, "ratelimited": ClassRateLimited,
	"expired": ClassTransient, "systemerror": ClassTransient, "systemfull": ClassTransient,
	"networkerror": ClassTransient, "mailererror": ClassTransient, "syntaxerror": ClassTransient,
	"feedback":  ClassComplaint,
	"vacation":  ClassAutoReply,
	"delivered": ClassDelivered,
	"onhold":    ClassUnknown, "undefined": ClassUnknown,
}

// corpusRow is one labelled row of testdata/corpus/sisimai-labeled.jsonl.
type corpusRow struct {
	EML        string `json:"eml"`
	Index      int    `json:"index"`
	Reason     string `json:"reason"`
	Status     string `json:"status"`
	ReplyCode  string `json:"replycode"`
	Diagnostic string `json:"diagnostic"`
	Recipient  string `json:"recipient"`
	Pseudo     bool   `json:"status_is_pseudo"`
	DSNStatus  string `json:"dsn_status"`
}

func loadCorpus(t testing.TB) []corpusRow {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "corpus", "sisimai-labeled.jsonl"))
	if err != nil {
		t.Fatalf("corpus labels: %v", err)
	}
	defer f.Close()
	var rows []corpusRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r corpusRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("corpus row %q: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
