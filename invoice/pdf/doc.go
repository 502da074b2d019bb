// Package pdf renders the documents a customer receives as PDF: the
// qualified invoice (適格請求書) with its Konbini payment section, the
// receipt (領収書) and the credit note (適格返還請求書), in Japanese or English, on A4.
//
// Rendering is deterministic: the same input gives the same bytes, so the
// PDF stored when an invoice is sent is the one the operator downloads.
// IPAexGothic is embedded in the binary and, cut to the glyphs a document
// prints, in each PDF. It is parsed once per process (fpdf/ holds fpdf
// patched for that): a one-page invoice takes about 3 ms instead of 20.
package pdf
