package compose_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/bounceloop/bounceloop/queue/compose"
)

func ExampleStore_Render() {
	msg, err := compose.Default().Render(compose.Input{
		From:      "Example Shop <news@shop.example.com>",
		To:        "jana.novakova@example.sk",
		MessageID: "0f3c9a2e@mail.example.com",
		Template:  "notice",
		Data:      map[string]any{"first_name": "Jana"},
		Date:      time.Date(2018, 5, 17, 8, 3, 11, 0, time.UTC),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	header, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	fmt.Printf("%s\n", bytes.ReplaceAll(header, []byte("\r\n"), []byte("\n")))
	// Output:
	// Date: Thu, 17 May 2018 08:03:11 +0000
	// From: "Example Shop" <news@shop.example.com>
	// To: jana.novakova@example.sk
	// Subject: Service notice for Jana
	// Message-ID: <0f3c9a2e@mail.example.com>
	// MIME-Version: 1.0
	// Content-Type: text/plain; charset=utf-8
	// Content-Transfer-Encoding: quoted-printable
}

func ExampleStore_Render_missingField() {
	_, err := compose.Default().Render(compose.Input{
		From:      "news@shop.example.com",
		To:        "jana.novakova@example.sk",
		MessageID: "0f3c9a2e@mail.example.com",
		Template:  "newsletter",
		Data:      map[string]any{"first_name": "Jana"},
	})
	fmt.Println(err)
	// Output:
	// compose: template "newsletter": newsletter/text.txt: template: newsletter/text.txt:5:14: executing "newsletter/text.txt" at <.offer>: map has no entry for key "offer"
}
