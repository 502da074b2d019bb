// Copyright ©2026 The billingd Authors. Use of this source code is governed
// by the MIT-style license in the LICENSE file.

package fpdf

import (
	"fmt"
	"sync"
)

// UTF8Font is a TrueType font parsed once, to be added to many documents
// with AddUTF8FontParsed. It is safe for concurrent use.
//
// Adding a font from bytes parses all of it for every document (and again
// when the document is written, to cut the subset it embeds): for a CJK font
// of thousands of glyphs that is most of the time a one-page document takes.
// A UTF8Font holds what those parses find, which depends on the font alone.
type UTF8Font struct {
	data []byte
	file utf8FontFile // parsed; copied for each document, never changed
	cut  *cutBase

	mu  sync.Mutex
	ids map[string]string // font key → generateFontID
}

// ParseUTF8Font parses a TrueType font for AddUTF8FontParsed. b must not be
// modified afterwards.
func ParseUTF8Font(b []byte) (font *UTF8Font, err error) {
	defer func() {
		if r := recover(); r != nil { // fpdf's parser indexes without checking
			font, err = nil, fmt.Errorf("fpdf: parse font: %v", r)
		}
	}()
	utf := newUTF8Font(&fileReader{array: b})
	if err := utf.parseFile(); err != nil {
		return nil, err
	}
	font = &UTF8Font{data: b, file: *utf, ids: map[string]string{}}
	font.file.fileReader = nil
	if font.cut = utf.newCutBase(); font.cut == nil {
		return nil, fmt.Errorf("fpdf: font has no cmap for Unicode")
	}
	return font, nil
}

// AddUTF8FontParsed is AddUTF8FontFromBytes for a font parsed once with
// ParseUTF8Font: the document is byte for byte the one AddUTF8FontFromBytes
// makes with the same bytes.
func (f *Fpdf) AddUTF8FontParsed(familyStr, styleStr string, font *UTF8Font) {
	if f.err != nil {
		return
	}
	fontkey := getFontKey(fontFamilyEscape(familyStr), styleStr)
	if _, ok := f.fonts[fontkey]; ok {
		return
	}
	utf8File := font.file
	utf8File.fileReader = &fileReader{array: font.data}
	utf8File.cut = font.cut
	def := f.utf8FontDef(fontkey, &utf8File)
	font.mu.Lock()
	defer font.mu.Unlock()
	if def.i = font.ids[fontkey]; def.i == "" {
		def.i, _ = generateFontID(def)
		font.ids[fontkey] = def.i
	}
	f.fonts[fontkey] = def
}

// HasRune reports whether the font has a glyph for r.
func (font *UTF8Font) HasRune(r rune) bool {
	return font.cut.charSymbolDictionary[int(r)] != 0
}

// utf8FontDef is the definition of a parsed UTF-8 font under fontkey,
// without its id.
func (f *Fpdf) utf8FontDef(fontkey string, utf8File *utf8FontFile) fontDefType {
	desc := FontDescType{
		Ascent:       int(utf8File.Ascent),
		Descent:      int(utf8File.Descent),
		CapHeight:    utf8File.CapHeight,
		Flags:        utf8File.Flags,
		FontBBox:     utf8File.Bbox,
		ItalicAngle:  utf8File.ItalicAngle,
		StemV:        utf8File.StemV,
		MissingWidth: round(utf8File.DefaultWidth),
	}
	var sbarr map[int]int
	if f.aliasNbPagesStr == "" {
		sbarr = makeSubsetRange(57)
	} else {
		sbarr = makeSubsetRange(32)
	}
	return fontDefType{
		Tp:        "UTF8",
		Name:      fontkey,
		Desc:      desc,
		Up:        int(round(utf8File.UnderlinePosition)),
		Ut:        round(utf8File.UnderlineThickness),
		Cw:        utf8File.CharWidths,
		utf8File:  utf8File,
		usedRunes: sbarr,
	}
}
