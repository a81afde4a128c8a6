//! Text in PNG figures, set on a common baseline.
//!
//! plotters 0.3.7 places each glyph of a bitmap text by the top of its own outline and drops
//! its side bearing, so `44.8` comes out as `44·8` and `mean` as `m ean` (the SVGs, drawn by
//! the viewer, are right). [`CrispText`] wraps a bitmap backend and sets text itself with
//! ab_glyph: every glyph at its advance and kerning on one baseline, the digits' cap height
//! centred in the layout box plotters reserves for the text, and the rotation and anchor the
//! style asks for. Everything but text goes to the wrapped backend unchanged.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::prelude::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::FONT;

fn font() -> &'static FontRef<'static> {
    static PARSED: OnceLock<FontRef<'static>> = OnceLock::new();
    PARSED.get_or_init(|| {
        FontRef::try_from_slice(FONT).expect("the bundled DejaVu Sans is a valid TrueType font")
    })
}

/// A bitmap backend whose text is set by [`set_text`].
pub struct CrispText<B>(pub B);

/// One pixel of set text: its position relative to the anchor, and its ink coverage in [0, 1].
type Ink = (i32, i32, f32);

/// The pixels of `text` at `size` px, relative to the anchor point of `anchor`, unrotated.
/// The layout box is plotters' own (advance width × size/1.24), so that labels keep the
/// places plotters computed for them.
pub fn set_text(text: &str, size: f64, anchor: (HPos, VPos)) -> Vec<Ink> {
    let font = font().as_scaled(PxScale::from(size as f32));
    let mut width = 0.0f32;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            width += font.kern(p, id);
        }
        width += font.h_advance(id);
        previous = Some(id);
    }
    let height = (size / 1.24) as f32;
    let left = match anchor.0 {
        HPos::Left => 0.0,
        HPos::Center => -width / 2.0,
        HPos::Right => -width,
    };
    let top = match anchor.1 {
        VPos::Top => 0.0,
        VPos::Center => -height / 2.0,
        VPos::Bottom => -height,
    };
    let cap_height = font
        .outline_glyph(font.scaled_glyph('H'))
        .map_or(0.7 * height, |g| -g.px_bounds().min.y);
    let baseline = top + (height + cap_height) / 2.0;
    let mut ink = Vec::new();
    let mut caret = left;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            caret += font.kern(p, id);
        }
        let glyph = id.with_scale_and_position(font.scale(), point(caret, baseline));
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            let (x0, y0) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|x, y, coverage| {
                if coverage > 0.0 {
                    ink.push((x0 + x as i32, y0 + y as i32, coverage.min(1.0)));
                }
            });
        }
        caret += font.h_advance(id);
        previous = Some(id);
    }
    ink
}

impl<B: DrawingBackend> DrawingBackend for CrispText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let anchor = style.anchor();
        let rotation = style.transform();
        for (x, y, coverage) in set_text(text, style.size(), (anchor.h_pos, anchor.v_pos)) {
            let (x, y) = rotation.transform(x, y);
            self.0.draw_pixel(
                (pos.0 + x, pos.1 + y),
                BackendColor {
                    alpha: color.alpha * f64::from(coverage),
                    rgb: color.rgb,
                },
            )?;
        }
        Ok(())
    }
}

/// The Unicode subscript form of `c`, when Unicode has one.
fn subscript(c: char) -> Option<char> {
    Some(match c {
        '0'..='9' => char::from_u32(0x2080 + (c as u32 - '0' as u32))?,
        '+' => '₊',
        '-' | '−' => '₋',
        '=' => '₌',
        '(' => '₍',
        ')' => '₎',
        'a' => 'ₐ',
        'e' => 'ₑ',
        'o' => 'ₒ',
        'x' => 'ₓ',
        'h' => 'ₕ',
        'k' => 'ₖ',
        'l' => 'ₗ',
        'm' => 'ₘ',
        'n' => 'ₙ',
        'p' => 'ₚ',
        's' => 'ₛ',
        't' => 'ₜ',
        'i' => 'ᵢ',
        'j' => 'ⱼ',
        'r' => 'ᵣ',
        'u' => 'ᵤ',
        'v' => 'ᵥ',
        'β' => 'ᵦ',
        'γ' => 'ᵧ',
        'ρ' => 'ᵨ',
        'φ' => 'ᵩ',
        'χ' => 'ᵪ',
        _ => return None,
    })
}

/// `text` with TeX-style subscripts set as a reader expects: `κ_a` → `κₐ`, `h_{T−1}` →
/// `h[T−1]` where a character has no subscript form in Unicode or in the bundled font (a
/// single unmappable character after `_` stays as written, `N_h` → `Nₕ`). Figures are drawn
/// from these strings; the tables keep the plain names.
pub fn typeset(text: &str) -> String {
    let available = |c: char| subscript(c).filter(|&s| font().glyph_id(s).0 != 0);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '_' || i == 0 || i + 1 == chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        if chars[i + 1] == '{'
            && let Some(close) = chars[i + 2..].iter().position(|&c| c == '}')
        {
            let group = &chars[i + 2..i + 2 + close];
            match group
                .iter()
                .map(|&c| available(c))
                .collect::<Option<String>>()
            {
                Some(set) => out.push_str(&set),
                None => {
                    out.push('[');
                    out.extend(group);
                    out.push(']');
                }
            }
            i += close + 3;
            continue;
        }
        // `_a`, `_ia` or `_10` before a word boundary; `n_hidden` is a name, not a subscript.
        let run = chars[i + 1..]
            .iter()
            .take_while(|c| c.is_alphanumeric())
            .count();
        let word = &chars[i + 1..i + 1 + run];
        let set = (run <= 2 || word.iter().all(char::is_ascii_digit))
            .then(|| {
                word.iter()
                    .map(|&c| available(c))
                    .collect::<Option<String>>()
            })
            .flatten();
        match set {
            Some(set) => {
                out.push_str(&set);
                i += 1 + run;
            }
            None => {
                out.push('_');
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lowest inked row of each glyph run: `0.5` has its point on the digits' baseline
    /// (within the one anti-aliased row), not half-way up as plotters' own text draws it.
    #[test]
    fn the_decimal_point_sits_on_the_baseline() {
        let bottom_in = |ink: &[Ink], from: i32, to: i32| {
            ink.iter()
                .filter(|&&(x, _, c)| x >= from && x < to && c > 0.5)
                .map(|&(_, y, _)| y)
                .max()
                .expect("ink in the column range")
        };
        for size in [12.0, 13.0, 16.0, 20.0] {
            let zero = set_text("0", size, (HPos::Left, VPos::Top));
            let with_point = set_text("0.", size, (HPos::Left, VPos::Top));
            let zero_right = zero.iter().map(|p| p.0).max().unwrap() + 1;
            let point_right = with_point.iter().map(|p| p.0).max().unwrap() + 1;
            let digit = bottom_in(&zero, 0, zero_right);
            let dot = bottom_in(&with_point, zero_right, point_right);
            assert!(
                (digit - dot).abs() <= 1,
                "size {size}: digit ends on row {digit}, point on row {dot}"
            );
        }
    }

    /// Glyphs keep their side bearings: the gaps between the letters of `mean` differ by at
    /// most a pixel, where dropping the bearings opened a gap after the `m`.
    #[test]
    fn letters_are_evenly_spaced() {
        let ink = set_text("mean", 13.0, (HPos::Left, VPos::Top));
        let mut columns: Vec<i32> = ink
            .iter()
            .filter(|p| p.2 > 0.3)
            .map(|p| p.0)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        columns.dedup();
        let gaps: Vec<i32> = columns
            .windows(2)
            .map(|w| w[1] - w[0] - 1)
            .filter(|&g| g > 0)
            .collect();
        assert!(
            gaps.iter().all(|&g| g <= 2),
            "blank columns between letters: {gaps:?}"
        );
    }

    #[test]
    fn subscripts_are_set_where_the_font_has_them() {
        assert_eq!(typeset("κ_a"), "κₐ");
        assert_eq!(typeset("ξ²_10 and ξ²_{10}"), "ξ²₁₀ and ξ²₁₀");
        assert_eq!(typeset("h_{T−1}/h_1"), "h[T−1]/h₁");
        assert_eq!(typeset("τ_a·α, N_h = 10"), "τₐ·α, Nₕ = 10");
        assert_eq!(typeset("⟨W_ia W_jb⟩"), "⟨Wᵢₐ W_jb⟩");
        assert_eq!(
            typeset("n_hidden = 10, cutoff_hidden"),
            "n_hidden = 10, cutoff_hidden"
        );
        assert_eq!(typeset("plain, no_"), "plain, no_");
        assert_eq!(typeset("_x"), "_x");
    }

    /// A centred anchor puts the middle of the ink at the anchor.
    #[test]
    fn centred_text_is_centred() {
        let ink = set_text("12345", 16.0, (HPos::Center, VPos::Center));
        let (lo, hi) = ink.iter().fold((i32::MAX, i32::MIN), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        assert!((lo + hi).abs() <= 2, "ink spans {lo}..{hi}");
        let (top, bottom) = ink.iter().fold((i32::MAX, i32::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
        assert!((top + bottom).abs() <= 2, "ink spans rows {top}..{bottom}");
    }
}
