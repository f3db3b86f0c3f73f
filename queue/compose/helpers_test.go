package compose

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// fixedDate is the Date of every test message.
var fixedDate = time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC)

// testInput returns a valid Input for the shipped newsletter.
func testInput() Input {
	return Input{
		From:      "Example Shop <news@shop.example.com>",
		To:        "jana.novakova@example.sk",
		MessageID: "0f3c9a2e@mail.example.com",
		Campaign:  "2018-05-newsletter",
		Template:  "newsletter",
		Data: map[string]any{
			"first_name":      "Jana",
			"offer":           "20% off garden tools",
			"unsubscribe_url": "https://shop.example.com/u/0f3c9a2e",
		},
		Headers: map[string]string{"List-Unsubscribe": "<https://shop.example.com/u/0f3c9a2e>"},
		Date:    fixedDate,
	}
}

// leaf is one non-multipart part of a parsed message.
type leaf struct {
	contentType string // media type without parameters
	charset     string
	encoding    string // Content-Transfer-Encoding
	disposition string
	filename    string
	body        []byte // decoded
}

// parsed is a message read back with go-message.
type parsed struct {
	header    mail.Header
	structure string // "multipart/mixed[multipart/alternative[text/plain,text/html],image/png]"
	leaves    []leaf
}

// parseMessage reads msg back with go-message, failing the test on any error.
func parseMessage(t testing.TB, msg []byte) parsed {
	t.Helper()
	p, err := parseMessageErr(msg)
	if err != nil {
		t.Fatalf("parse rendered message: %v\n%s", err, msg)
	}
	return p
}

func parseMessageErr(msg []byte) (parsed, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil {
		return parsed{}, err
	}
	p := parsed{header: mail.Header{Header: e.Header}}
	p.structure, err = walk(e, &p.leaves)
	return p, err
}

func walk(e *message.Entity, leaves *[]leaf) (string, error) {
	mt, params, err := e.Header.ContentType()
	if err != nil {
		return "", err
	}
	if mr := e.MultipartReader(); mr != nil {
		var kids []string
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", err
			}
			s, err := walk(part, leaves)
			if err != nil {
				return "", err
			}
			kids = append(kids, s)
		}
		return mt + "[" + strings.Join(kids, ",") + "]", nil
	}
	body, err := io.ReadAll(e.Body)
	if err != nil {
		return "", err
	}
	disp, dparams, _ := e.Header.ContentDisposition()
	*leaves = append(*leaves, leaf{
		contentType: mt,
		charset:     params["charset"],
		encoding:    e.Header.Get("Content-Transfer-Encoding"),
		disposition: disp,
		filename:    dparams["filename"],
		body:        body,
	})
	return mt, nil
}

// crlfOnly reports whether every line of msg ends in CRLF (no bare CR or LF).
func crlfOnly(msg []byte) bool {
	for i, c := range msg {
		switch c {
		case '\n':
			if i == 0 || msg[i-1] != '\r' {
				return false
			}
		case '\r':
			if i+1 >= len(msg) || msg[i+1] != '\n' {
				return false
			}
		}
	}
	return true
}

// topKeys returns the top-level header keys in order.
func topKeys(h mail.Header) []string {
	var keys []string
	for f := h.Fields(); f.Next(); {
		keys = append(keys, f.Key())
	}
	return keys
}
