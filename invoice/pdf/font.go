package pdf

import (
	_ "embed"
	"sync"

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

// parsed is IPAexGothic parsed once per process (fpdf/ is patched for it).
var parsed = sync.OnceValues(func() (*fpdf.UTF8Font, error) { return fpdf.ParseUTF8Font(ipaexGothic) })

// addFont gives a new document the font: parsedFont, or in the tests the
// reference they compare it with (fpdf parsing the font itself); both give
// the same bytes.
type addFont func(*fpdf.Fpdf) error

// parsedFont adds IPAexGothic as parsed once: only what the document prints
// costs time (cutting those glyphs out, compressing them).
func parsedFont(f *fpdf.Fpdf) error {
	font, err := parsed()
	if err != nil {
		return err
	}
	f.AddUTF8FontParsed(fontName, "", font)
	return nil
}
