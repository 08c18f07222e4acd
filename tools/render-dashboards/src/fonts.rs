//! The font: registered with plotters as "sans-serif" for drawing, and kept here for metrics.
//!
//! plotters 0.3.7's `ab_glyph` backend puts each glyph's ink box where the glyph's origin
//! belongs, dropping its left side bearing, so "per" comes out as "p er". [`glyphs`] gives
//! every character's correct ink position, and the renderer draws text one glyph at a time.

use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters::style::{FontStyle, register_font};

struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

static FONTS: OnceLock<Fonts> = OnceLock::new();

/// Loads the font file once per process; also its `-Bold` sibling (DejaVu ships one) for
/// bold text, which otherwise uses the regular face.
pub fn load(path: &Path) -> Result<(), String> {
    if FONTS.get().is_some() {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the font {}: {e}\n  install it with `apt-get install fonts-dejavu-core`, \
             or pass --font with another TTF file",
            path.display()
        )
    })?;
    let unusable = || format!("{} is not a usable TrueType/OpenType font", path.display());
    // plotters keeps fonts for the whole process and wants them 'static.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let regular = FontRef::try_from_slice(bytes).map_err(|_| unusable())?;
    register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| unusable())?;

    let bold_path = path.with_file_name(format!(
        "{}-Bold.ttf",
        path.file_stem().unwrap_or_default().to_string_lossy()
    ));
    let bold = std::fs::read(&bold_path)
        .ok()
        .map(|b| -> &'static [u8] { Box::leak(b.into_boxed_slice()) })
        .and_then(|b| {
            let font = FontRef::try_from_slice(b).ok()?;
            register_font("sans-serif", FontStyle::Bold, b).ok()?;
            Some(font)
        })
        .unwrap_or_else(|| regular.clone());
    let _ = FONTS.set(Fonts { regular, bold });
    Ok(())
}

fn font(bold: bool) -> Result<&'static FontRef<'static>, String> {
    let fonts = FONTS.get().ok_or("no font loaded")?;
    Ok(if bold { &fonts.bold } else { &fonts.regular })
}

/// The text's advance width in pixels at `size`.
pub fn width(text: &str, size: f64, bold: bool) -> Result<f64, String> {
    Ok(glyphs(text, size, bold)?.1)
}

/// Each visible character with the x (from the text's start) where its ink box begins, and
/// the whole text's advance width.
pub fn glyphs(text: &str, size: f64, bold: bool) -> Result<(Vec<(char, i32)>, f64), String> {
    let font = font(bold)?.as_scaled(size as f32);
    let mut pen = 0.0f32;
    let mut previous = None;
    let mut out = Vec::new();
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            pen += font.kern(p, id);
        }
        // The ink box of the glyph at the origin, as plotters rasterises it.
        if let Some(outline) = font.outline_glyph(id.with_scale(size as f32)) {
            out.push((c, pen.round() as i32 + outline.px_bounds().min.x as i32));
        }
        pen += font.h_advance(id);
        previous = Some(id);
    }
    Ok((out, pen as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

    #[test]
    fn a_missing_font_says_which_package_to_install() {
        let err = load(Path::new("/nonexistent/DejaVuSans.ttf")).unwrap_err();
        assert!(err.contains("apt-get install fonts-dejavu-core"), "{err}");
    }

    #[test]
    fn glyphs_keep_their_side_bearings() {
        if !Path::new(DEJAVU).is_file() {
            eprintln!("skipped: {DEJAVU} is not installed");
            return;
        }
        load(Path::new(DEJAVU)).unwrap();
        let (glyphs, width) = glyphs("p e", 20.0, false).unwrap();
        assert_eq!(glyphs.len(), 2, "the space has no ink");
        // Both have a left bearing: 'p' does not start at 0, 'e' not before "p " ends.
        assert!(glyphs[0].1 >= 1, "{glyphs:?}");
        assert!(glyphs[1].1 >= width_of("p ").floor() as i32, "{glyphs:?}");
        assert!((width - width_of("p e")).abs() < 0.01);
        assert!(width_of("WWW") > width_of("iii"));
    }

    fn width_of(text: &str) -> f64 {
        width(text, 20.0, false).unwrap()
    }
}
