//! A tiny SVG writer: rectangles, text and a legend, nothing else. Output is deterministic
//! (no addresses, no time), so a re-drawn picture is byte-for-byte the committed one unless
//! an allocator's behaviour changed.

use std::fmt::Write;

/// Colours of the pictures, one per kind of memory (the same in every picture).
pub mod colour {
    /// A live block.
    pub const USED: &str = "#4878d0";
    /// A free block or chunk, in a bin or on a free list.
    pub const FREE: &str = "#6acc64";
    /// Never handed out (a slab's untouched blocks, the top chunk).
    pub const UNTOUCHED: &str = "#e8e8e8";
    /// Allocator metadata: headers, bin sentinels, chunk headers.
    pub const META: &str = "#797979";
    /// Waste: bytes inside a block that nobody asked for.
    pub const WASTE: &str = "#ee854a";
    /// Dirty free pages (resident, not purged yet).
    pub const DIRTY: &str = "#d5bb67";
}

/// An SVG picture being drawn.
pub struct Svg {
    width_px: u32,
    height_px: u32,
    body: String,
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Svg {
    /// A blank picture.
    pub fn new(width_px: u32, height_px: u32) -> Svg {
        Svg {
            width_px,
            height_px,
            body: String::new(),
        }
    }

    /// A blank picture that opens, as every picture of the book does, with its title on the
    /// first line and its legend on the second.
    pub fn with_heading(
        width_px: u32,
        height_px: u32,
        title: &str,
        legend: &[(&str, &str)],
    ) -> Svg {
        let mut svg = Svg::new(width_px, height_px);
        svg.text(10.0, 20.0, 14, "start", title);
        svg.legend(10.0, 42.0, legend);
        svg
    }

    /// A filled rectangle with a thin outline and a tooltip.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, tooltip: &str) {
        let _ = writeln!(
            self.body,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}" stroke="#222" stroke-width="0.5"><title>{}</title></rect>"##,
            escape(tooltip)
        );
    }

    /// Text; `anchor` is `start`, `middle` or `end`.
    pub fn text(&mut self, x: f64, y: f64, size_px: u32, anchor: &str, text: &str) {
        let _ = writeln!(
            self.body,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="{size_px}" text-anchor="{anchor}" fill="#111">{}</text>"##,
            escape(text)
        );
    }

    /// A row of coloured squares with their meaning, starting at (x, y).
    pub fn legend(&mut self, x: f64, y: f64, entries: &[(&str, &str)]) {
        let mut at = x;
        for (fill, label) in entries {
            self.rect(at, y - 10.0, 12.0, 12.0, fill, label);
            self.text(at + 16.0, y, 12, "start", label);
            at += 30.0 + 7.5 * label.len() as f64;
        }
    }

    /// The finished document.
    pub fn finish(self) -> String {
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">
<rect width="100%" height="100%" fill="#ffffff"/>
{}</svg>
"##,
            self.body,
            w = self.width_px,
            h = self.height_px
        )
    }
}
