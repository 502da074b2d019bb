package pdf

import (
	_ "embed"

	"github.com/go-pdf/fpdf"
)

// ipaexGothic is IPAexGothic (ipaexg.ttf, Debian fonts-ipaexfont-gothic
// 00401-5), redistributed unmodified under the IPA Font License.
//
//go:embed fonts/ipaexg.ttf
var ipaexGothic []byte

// FontLicense is the IPA Font License Agreement v1.0 (Japanese and English)
// under which IPAexGothic, embedded in the binary and in every PDF, is
// redistributed; show it wherever the daemon lists its licenses.
//
//go:embed fonts/IPA_Font_License_Agreement_v1.0.txt
var FontLicense string

// fontName is the family the documents use; it is also the font's name in
// the PDF.
const fontName = "ipaexg"

// addFont gives a new document the font.
type addFont func(*fpdf.Fpdf) error

// fontFromBytes has fpdf parse all of IPAexGothic for the document.
func fontFromBytes(f *fpdf.Fpdf) error {
	f.AddUTF8FontFromBytes(fontName, "", ipaexGothic)
	return nil
}
