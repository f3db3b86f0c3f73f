// Package compose turns a campaign template and one recipient's data into the
// complete RFC 5322 message that the sender hands to SMTP.
//
// # Templates
//
// A template store is a folder (any fs.FS) with one sub-folder per template:
//
//	<name>/subject.txt          text/template, required; surrounding white space is trimmed
//	<name>/text.txt             text/template, required: the text/plain part
//	<name>/html.html            html/template, optional: the text/html part
//	<name>/attachments/*        optional files attached to the full variant
//	<name>/small/text.txt       optional small variant (required when small/ exists)
//	<name>/small/html.html      optional HTML of the small variant
//
// The small variant is what the queue sends to a domain that refused the full
// message as too large (552 5.3.4): its own text and HTML and no attachments,
// with the same subject. Files and folders whose names start with "." are
// ignored; any other unexpected file inside a template folder is an error,
// so that a misspelt "html.htm" does not silently drop the HTML part. Files
// at the top level of the store (a README) are ignored.
//
// Every template is parsed by Load, so a broken template fails at start-up,
// with the file named. Templates run with the option missingkey=error: a
// field the data lacks is a render error, which the queue client sees when
// it renders at enqueue time. An optional field is written
// {{with index . "field"}}...{{end}}.
//
// # Messages
//
// Render writes, with github.com/emersion/go-message:
//
//   - text only, no attachments: a single text/plain part;
//   - text and HTML: multipart/alternative (text/plain, then text/html);
//   - with attachments (full variant only): multipart/mixed with the above
//     first and one base64 part per attachment (Content-Disposition:
//     attachment; filename; content type from the file extension).
//
// Text parts are UTF-8 and quoted-printable; lines end in CRLF. Multipart
// boundaries are derived from the Message-ID and start with "=_", which can
// appear neither in quoted-printable nor in base64 text, so the same Input
// always renders to the same bytes (stable sizes, golden tests).
//
// # Injection safety
//
// Header values are checked before anything is written: CR or LF in From,
// To, the Message-ID, the campaign, an extra header or the rendered subject
// is ErrHeaderInjection. Data rendered into text/plain is written verbatim
// (it is body text); data rendered into text/html is escaped by html/template
// according to its context.
package compose
