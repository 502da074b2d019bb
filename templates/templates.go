// Package templates embeds the templates billingd renders, so the binary
// carries them: mail/ holds the e-mail templates (one text and one HTML file
// per language), read by package billing/mail; pay/ the customer's payment
// page, rendered by package invoice/delivery.
package templates

import "embed"

// FS holds the template files under their paths in this folder, e.g.
// "mail/ja.txt". Add a //go:embed line here for each new folder.
//
//go:embed mail pay admin
var FS embed.FS
