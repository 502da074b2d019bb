// Package pdf renders the documents a customer receives as PDF: the
// qualified invoice (適格請求書) with its Konbini payment section, the
// receipt (領収書) and the credit note (適格返還請求書), in Japanese or English, on A4, with IPAexGothic embedded
// (subset to the glyphs used).
//
// Rendering is deterministic: the same input gives the same bytes, so the
// PDF stored when an invoice is sent is the one the operator downloads.
// The font is parsed once per process; each document hands fpdf a small
// font cut from it (see fontIndex): a one-page invoice takes about 4 ms and
// 7 MB instead of 10 ms and 14 MB.
package pdf
