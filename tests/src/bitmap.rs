//! Renders lines of text into a PNG for the OCR tests: DejaVu Sans (embedded by the
//! `dejavu` crate, so no system font is needed) rasterized by `fontdue`, anti-aliased,
//! black on white, at a size tesseract reads reliably.

use std::sync::LazyLock;

/// Pixel height of the font. Tesseract is most accurate with capitals of about 20–40
/// pixels.
pub const FONT_PX: f32 = 36.0;
const MARGIN: usize = 40;

static FONT: LazyLock<fontdue::Font> = LazyLock::new(|| {
    fontdue::Font::from_bytes(dejavu::sans::regular(), fontdue::FontSettings::default())
        .expect("DejaVu Sans parses")
});

pub fn render_png(lines: &[String]) -> Vec<u8> {
    let font = &*FONT;
    let line_h = (FONT_PX * 1.5) as usize;
    let width_of = |l: &str| -> usize {
        l.chars()
            .map(|c| font.metrics(c, FONT_PX).advance_width)
            .sum::<f32>()
            .ceil() as usize
    };
    let width = 2 * MARGIN + lines.iter().map(|l| width_of(l)).max().unwrap_or(0);
    let height = 2 * MARGIN + lines.len() * line_h;
    let mut ink = vec![0u8; width * height];
    for (row, line) in lines.iter().enumerate() {
        let baseline = (MARGIN + row * line_h) as i64 + FONT_PX as i64;
        let mut pen = MARGIN as f32;
        for c in line.chars() {
            let (m, coverage) = font.rasterize(c, FONT_PX);
            let left = pen.round() as i64 + i64::from(m.xmin);
            let top = baseline - i64::from(m.ymin) - m.height as i64;
            for gy in 0..m.height {
                for gx in 0..m.width {
                    let (x, y) = (left + gx as i64, top + gy as i64);
                    if x >= 0 && y >= 0 && (x as usize) < width && (y as usize) < height {
                        let i = y as usize * width + x as usize;
                        ink[i] = ink[i].max(coverage[gy * m.width + gx]);
                    }
                }
            }
            pen += m.advance_width;
        }
    }
    let px: Vec<u8> = ink.iter().map(|v| 255 - v).collect();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("png header");
        w.write_image_data(&px).expect("png data");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png() {
        let png = render_png(&["SSN 123-45-6789".to_owned()]);
        assert!(png.starts_with(b"\x89PNG"));
    }

    /// `MERIDIAN_WRITE_PNG=dir` writes the OCR lines of many seeds, to check how
    /// tesseract reads them.
    #[test]
    fn sample_seeds() {
        let Ok(dir) = std::env::var("MERIDIAN_WRITE_PNG") else {
            return;
        };
        for seed in 0..30 {
            let (lines, _) =
                crate::documents::ocr_lines(&mut rand::SeedableRng::seed_from_u64(seed));
            std::fs::write(format!("{dir}/seed{seed}.txt"), lines.join("\n")).unwrap();
            std::fs::write(format!("{dir}/seed{seed}.png"), render_png(&lines)).unwrap();
        }
    }
}
