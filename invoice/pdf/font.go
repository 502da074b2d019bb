package pdf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	_ "embed"
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

// fontIndex is IPAexGothic parsed once: what is needed to cut a small
// TrueType font holding only some runes out of it.
//
// fpdf parses a whole TrueType font for each document (its cmap into maps,
// twice: once when the font is added, once when it is subset), about 10 ms
// and 13 MB for IPAexGothic. Handing fpdf instead a font of the few hundred
// runes a document can use makes that cheap, and the PDF is the same: fpdf
// still subsets to the glyphs actually printed, and every table, glyph,
// metric and width it copies out is the one it would have taken from the
// full font. (Only fpdf's internal resource name /F<sha1>, a hash of the
// width table of the font it was given, differs from a document made with
// the full font.)
type fontIndex struct {
	tables    map[string][]byte // raw tables by tag
	glyphs    []int32           // rune (BMP) → glyph, as fpdf reads the format 4 cmap; -1: not mapped
	loca      []uint32          // glyph offsets into glyf, numGlyphs+1
	metrics   [][4]byte         // per glyph: advance and left side bearing, as fpdf reads them
	latin     []rune            // runes up to U+00FF the font maps: always included (fpdf prints their widths)
	numGlyphs int
}

var loadFont = sync.OnceValues(func() (*fontIndex, error) { return parseFont(ipaexGothic) })

// parseFont indexes a TrueType font the way fpdf reads it.
func parseFont(b []byte) (fi *fontIndex, err error) {
	defer func() {
		if r := recover(); r != nil { // a slice out of range: a broken font
			fi, err = nil, fmt.Errorf("pdf: parse font: %v", r)
		}
	}()
	u16 := func(p []byte, i int) int { return int(binary.BigEndian.Uint16(p[i:])) }
	u32 := func(p []byte, i int) int { return int(binary.BigEndian.Uint32(p[i:])) }
	if v := u32(b, 0); v != 0x00010000 && v != 0x74727565 {
		return nil, errors.New("pdf: font is not TrueType")
	}
	fi = &fontIndex{tables: map[string][]byte{}}
	for i := range u16(b, 4) {
		rec := b[12+16*i:]
		off, n := u32(rec, 8), u32(rec, 12)
		fi.tables[string(rec[:4])] = b[off : off+n]
	}
	for _, t := range []string{"head", "hhea", "maxp", "OS/2", "post", "cmap", "glyf", "loca", "hmtx"} {
		if fi.tables[t] == nil {
			return nil, fmt.Errorf("pdf: font has no %s table", t)
		}
	}
	head, hhea, maxp := fi.tables["head"], fi.tables["hhea"], fi.tables["maxp"]
	fi.numGlyphs = u16(maxp, 4)
	nhm := u16(hhea, 34)

	loca := fi.tables["loca"]
	fi.loca = make([]uint32, fi.numGlyphs+1)
	for g := range fi.loca {
		if u16(head, 50) == 0 {
			fi.loca[g] = uint32(u16(loca, 2*g) * 2)
		} else {
			fi.loca[g] = uint32(u32(loca, 4*g))
		}
	}

	// fpdf gives a glyph past numberOfHMetrics the last advance and its own
	// left side bearing.
	hmtx := fi.tables["hmtx"]
	fi.metrics = make([][4]byte, fi.numGlyphs)
	for g := range fi.metrics {
		if g < nhm {
			copy(fi.metrics[g][:], hmtx[4*g:])
		} else {
			copy(fi.metrics[g][:2], hmtx[4*(nhm-1):])
			copy(fi.metrics[g][2:], hmtx[4*nhm+2*(g-nhm):])
		}
	}

	// The first (3,1) or Unicode-platform subtable in format 4, read as fpdf
	// reads it (generateSCCSDictionaries), including its quirks.
	cmap := fi.tables["cmap"]
	sub := -1
	for i := range u16(cmap, 2) {
		rec := 4 + 8*i
		pid, eid, off := u16(cmap, rec), u16(cmap, rec+2), u32(cmap, rec+4)
		if (pid == 3 && eid == 1 || pid == 0) && u16(cmap, off) == 4 {
			sub = off
			break
		}
	}
	if sub < 0 {
		return nil, errors.New("pdf: font has no format 4 Unicode cmap")
	}
	t := cmap[sub:]
	segs, end := u16(t, 6)/2, u16(t, 2)
	fi.glyphs = make([]int32, 0x10000)
	for i := range fi.glyphs {
		fi.glyphs[i] = -1
	}
	for n := range segs {
		last, first := u16(t, 14+2*n), u16(t, 16+2*segs+2*n)
		delta, rangeOff := u16(t, 16+4*segs+2*n), u16(t, 16+6*segs+2*n)
		for c := first; c <= last; c++ {
			g := (c + delta) & 0xFFFF
			if rangeOff != 0 {
				pos := 16 + 6*segs + 2*n + rangeOff + 2*(c-first)
				g = 0
				if pos < end {
					if g = u16(t, pos); g != 0 {
						g = (g + delta) & 0xFFFF
					}
				}
			}
			fi.glyphs[c] = int32(g)
		}
	}
	for r := range rune(0x100) {
		if fi.glyphs[r] >= 0 {
			fi.latin = append(fi.latin, r)
		}
	}
	return fi, nil
}

// has reports whether the font maps r to a glyph other than .notdef.
func (fi *fontIndex) has(r rune) bool { return r < 0x10000 && fi.glyphs[r] > 0 }

// subset returns a TrueType font with the runes of set the font maps (and
// the Latin-1 ones), their glyphs and the glyphs those are built from, in
// the original order. The tables fpdf copies into the PDF are copied whole.
func (fi *fontIndex) subset(set *runeSet) []byte {
	var runes []rune
	set.each(func(r rune) {
		if fi.glyphs[r] >= 0 {
			runes = append(runes, r)
		}
	})
	for _, r := range fi.latin {
		if !set.has(r) {
			runes = append(runes, r)
		}
	}
	slices.Sort(runes)

	// Glyphs: .notdef, the runes', and the components of composite glyphs.
	glyf := fi.tables["glyf"]
	used := map[int]bool{0: true}
	var add func(g int)
	add = func(g int) {
		if used[g] {
			return
		}
		used[g] = true
		for _, c := range components(glyf[fi.loca[g]:fi.loca[g+1]]) {
			add(int(binary.BigEndian.Uint16(glyf[fi.loca[g]+uint32(c):])))
		}
	}
	for _, r := range runes {
		add(int(fi.glyphs[r]))
	}
	add(0)
	old := make([]int, 0, len(used))
	for g := range used {
		old = append(old, g)
	}
	slices.Sort(old)
	newID := make(map[int]int, len(old))
	for i, g := range old {
		newID[g] = i
	}

	var glyfOut, locaOut, hmtxOut []byte
	for _, g := range old {
		locaOut = binary.BigEndian.AppendUint32(locaOut, uint32(len(glyfOut)))
		start := len(glyfOut)
		glyfOut = append(glyfOut, glyf[fi.loca[g]:fi.loca[g+1]]...)
		for _, c := range components(glyfOut[start:]) {
			p := glyfOut[start+c:]
			binary.BigEndian.PutUint16(p, uint16(newID[int(binary.BigEndian.Uint16(p))]))
		}
		hmtxOut = append(hmtxOut, fi.metrics[g][:]...)
	}
	locaOut = binary.BigEndian.AppendUint32(locaOut, uint32(len(glyfOut)))

	// cmap: one format 4 subtable, a segment per run of consecutive runes
	// with consecutive glyphs, then the closing 0xFFFF segment.
	type seg struct{ first, last, glyph int }
	var segs []seg
	for _, r := range runes {
		g := newID[int(fi.glyphs[r])]
		if n := len(segs); n > 0 && segs[n-1].last+1 == int(r) && segs[n-1].glyph+int(r)-segs[n-1].first == g && g != 0 {
			segs[n-1].last++
			continue
		}
		segs = append(segs, seg{int(r), int(r), g})
	}
	segs = append(segs, seg{0xFFFF, 0xFFFF, 0})
	n := len(segs)
	be := binary.BigEndian
	cm := be.AppendUint16(nil, 0)
	cm = be.AppendUint16(cm, 1)
	cm = be.AppendUint16(cm, 3)
	cm = be.AppendUint16(cm, 1)
	cm = be.AppendUint32(cm, 12)
	sr, es := 1, 0
	for sr*2 <= n {
		sr, es = sr*2, es+1
	}
	for _, v := range []int{4, 16 + 8*n, 0, 2 * n, 2 * sr, es, 2*n - 2*sr} {
		cm = be.AppendUint16(cm, uint16(v))
	}
	for _, s := range segs {
		cm = be.AppendUint16(cm, uint16(s.last))
	}
	cm = be.AppendUint16(cm, 0)
	for _, s := range segs {
		cm = be.AppendUint16(cm, uint16(s.first))
	}
	for _, s := range segs {
		cm = be.AppendUint16(cm, uint16(s.glyph-s.first))
	}
	for range segs {
		cm = be.AppendUint16(cm, 0)
	}

	withU16 := func(t string, at, v int) []byte {
		b := slices.Clone(fi.tables[t])
		be.PutUint16(b[at:], uint16(v))
		return b
	}
	post := slices.Clone(fi.tables["post"][:32])
	be.PutUint32(post, 0x00030000) // no glyph names
	out := map[string][]byte{
		"head": withU16("head", 50, 1), // long loca
		"hhea": withU16("hhea", 34, len(old)),
		"maxp": withU16("maxp", 4, len(old)),
		"OS/2": fi.tables["OS/2"],
		"post": post,
		"cmap": cm,
		"glyf": glyfOut,
		"loca": locaOut,
		"hmtx": hmtxOut,
	}
	for _, t := range []string{"name", "cvt ", "fpgm", "prep", "gasp"} {
		if fi.tables[t] != nil {
			out[t] = fi.tables[t]
		}
	}
	return assemble(out)
}

// components returns the offsets, within a composite glyph's data, of its
// components' glyph indexes (none for a simple glyph).
func components(g []byte) []int {
	if len(g) < 10 || int16(binary.BigEndian.Uint16(g)) >= 0 {
		return nil
	}
	const (
		words, scale, more, xyScale, twoByTwo = 1, 8, 32, 64, 128
	)
	var offs []int
	for p := 10; ; {
		flags := binary.BigEndian.Uint16(g[p:])
		offs = append(offs, p+2)
		p += 4
		if flags&words != 0 {
			p += 4
		} else {
			p += 2
		}
		switch {
		case flags&scale != 0:
			p += 2
		case flags&xyScale != 0:
			p += 4
		case flags&twoByTwo != 0:
			p += 8
		}
		if flags&more == 0 {
			return offs
		}
	}
}

// assemble writes a TrueType file of the tables, in tag order, each padded
// to four bytes. Checksums are left zero: fpdf recomputes them.
func assemble(tables map[string][]byte) []byte {
	tags := make([]string, 0, len(tables))
	size := 12 + 16*len(tables)
	for t, b := range tables {
		tags = append(tags, t)
		size += (len(b) + 3) &^ 3
	}
	slices.Sort(tags)
	be := binary.BigEndian
	out := make([]byte, 12+16*len(tables), size)
	be.PutUint32(out, 0x00010000)
	be.PutUint16(out[4:], uint16(len(tables)))
	for i, t := range tags {
		rec := out[12+16*i:]
		copy(rec, t)
		be.PutUint32(rec[8:], uint32(len(out)))
		be.PutUint32(rec[12:], uint32(len(tables[t])))
		out = append(out, tables[t]...)
		out = append(out, make([]byte, (4-len(out)%4)%4)...)
	}
	return out
}

// runeSet is a set of BMP runes.
type runeSet struct{ bits [0x10000 / 64]uint64 }

func (s *runeSet) add(str string) {
	for _, r := range str {
		if r < 0x10000 {
			s.bits[r/64] |= 1 << (r % 64)
		}
	}
}

func (s *runeSet) has(r rune) bool { return r < 0x10000 && s.bits[r/64]&(1<<(r%64)) != 0 }

func (s *runeSet) each(f func(rune)) {
	for i, w := range s.bits {
		for ; w != 0; w &= w - 1 {
			f(rune(i*64 + bits.TrailingZeros64(w)))
		}
	}
}
