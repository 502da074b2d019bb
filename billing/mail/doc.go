// Package mail renders and delivers the e-mails billingd sends to customers:
// the invoice, payment reminders, a reissued payment code, the receipt and
// the notice of a voided invoice, in Japanese or English.
//
// Render fills the templates embedded from the module's templates/mail
// folder and returns the subject and the text and HTML bodies. A Message
// carries them with its attachments (the PDF, made elsewhere), a stable
// Message-ID and a Date, both chosen by the caller so that a retried send is
// the same message. A Sender delivers it: over SMTP (see NewSMTP for the URL
// format) or, with no SMTP server configured, into an outbox folder of .eml
// files. Delivery errors say whether a retry may succeed (IsTemporary).
package mail
