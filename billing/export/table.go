package export

import (
	"bufio"
	"fmt"
	"strconv"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"

	"billingd/billing"
)

// LookAlikes maps characters that Shift_JIS cannot hold to the character
// Japanese software shows in their place. They are applied before encoding
// a Shift_JIS field; any other character that Shift_JIS cannot hold fails
// the export with the row named.
var LookAlikes = map[rune]rune{
	'\u301C': '\uFF5E', // 〜 WAVE DASH → ～ FULLWIDTH TILDE
	'\u2212': '\uFF0D', // − MINUS SIGN → － FULLWIDTH HYPHEN-MINUS
	'\u2014': '\u2015', // — EM DASH → ― HORIZONTAL BAR
	'\u2013': '\uFF0D', // – EN DASH → － FULLWIDTH HYPHEN-MINUS
	'\u2011': '\u2010', // ‑ NON-BREAKING HYPHEN → ‐ HYPHEN
	'\u2016': '\u2225', // ‖ DOUBLE VERTICAL LINE → ∥ PARALLEL TO
	'\u00A5': '\uFFE5', // ¥ YEN SIGN → ￥ FULLWIDTH YEN SIGN
	'\u00A2': '\uFFE0', // ¢ CENT SIGN → ￠ FULLWIDTH CENT SIGN
	'\u00A3': '\uFFE1', // £ POUND SIGN → ￡ FULLWIDTH POUND SIGN
	'\u00AC': '\uFFE2', // ¬ NOT SIGN → ￢ FULLWIDTH NOT SIGN
	'\u00A0': ' ',      // NO-BREAK SPACE → SPACE
}

// sjisCode is one rune's Shift_JIS bytes.
type sjisCode struct {
	b  [2]byte
	n  uint8 // 0: cannot be encoded
	ok bool  // looked up
}

// sjis encodes text to Shift_JIS rune by rune, caching each rune's bytes:
// exports repeat the same few hundred characters (account names, kana).
type sjis struct {
	enc   *encoding.Encoder
	cache map[rune]sjisCode
}

func newSJIS() *sjis {
	return &sjis{enc: japanese.ShiftJIS.NewEncoder(), cache: make(map[rune]sjisCode, 512)}
}

// appendField appends s encoded to dst. It returns the first rune that
// cannot be encoded (after LookAlikes), if any.
func (e *sjis) appendField(dst []byte, s string) ([]byte, rune, bool) {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if m, ok := LookAlikes[r]; ok {
			r = m
		}
		code, ok := e.cache[r]
		if !ok {
			code.ok = true
			if r != utf8.RuneError {
				if b, err := e.enc.Bytes([]byte(string(r))); err == nil && len(b) <= 2 {
					code.n = uint8(copy(code.b[:], b))
				}
			}
			e.cache[r] = code
		}
		if code.n == 0 {
			return dst, r, false
		}
		dst = append(dst, code.b[:code.n]...)
	}
	return dst, 0, true
}

// table writes CSV rows: fields joined by commas, quoted when they hold a
// comma, a quote or a line break, lines ended by CRLF (what Windows
// accounting software expects), in UTF-8 or Shift_JIS.
type table struct {
	w    *bufio.Writer
	sjis *sjis    // nil: UTF-8
	cols []string // column names, for errors
	rows int      // lines written, the header included
	line []byte
	fld  []byte
	// what names the source of the row being written, for errors.
	what string
}

// row writes one line of fields; a field that cannot be encoded fails the
// export with the row, its source and the column named.
func (t *table) row(fields ...string) error {
	t.line = t.line[:0]
	for i, f := range fields {
		if i > 0 {
			t.line = append(t.line, ',')
		}
		t.fld = t.fld[:0]
		if t.sjis != nil {
			var r rune
			var ok bool
			if t.fld, r, ok = t.sjis.appendField(t.fld, f); !ok {
				col := fmt.Sprint(i + 1)
				if i < len(t.cols) {
					col = fmt.Sprintf("%d (%s)", i+1, t.cols[i])
				}
				return billing.Invalid("format", "row %d (%s), column %s: %q contains %U %q, which Shift_JIS cannot encode and no look-alike replaces; change the text or export format=csv (UTF-8)",
					t.rows+1, t.what, col, f, r, r)
			}
		} else {
			t.fld = append(t.fld, f...)
		}
		if needsQuotes(t.fld) {
			t.line = append(t.line, '"')
			for _, c := range t.fld {
				if c == '"' {
					t.line = append(t.line, '"')
				}
				t.line = append(t.line, c)
			}
			t.line = append(t.line, '"')
		} else {
			t.line = append(t.line, t.fld...)
		}
	}
	t.line = append(t.line, '\r', '\n')
	t.rows++
	_, err := t.w.Write(t.line)
	return err
}

// needsQuotes reports whether a field must be quoted. Shift_JIS trail bytes
// are never ASCII punctuation or control characters, so the check is the
// same for both encodings.
func needsQuotes(b []byte) bool {
	for _, c := range b {
		if c == ',' || c == '"' || c == '\r' || c == '\n' {
			return true
		}
	}
	return false
}

// itoa formats a yen amount.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
