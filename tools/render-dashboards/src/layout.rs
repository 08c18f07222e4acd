//! Grafana's grid → pixels. The grid is 24 columns wide; a grid row is `row_px` high.

use crate::dashboard::GridPos;

/// Grafana's grid width in columns.
pub const COLUMNS: u32 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub col_px: u32,
    pub row_px: u32,
    /// Space between neighbouring panels.
    pub gap: u32,
    /// Space around the grid.
    pub margin: u32,
    /// Height of the dashboard title band above the grid.
    pub header: u32,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            col_px: 64,
            row_px: 36,
            gap: 8,
            margin: 12,
            header: 64,
        }
    }
}

/// A pixel rectangle: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Layout {
    /// Where a panel goes in the combined picture. Panels reaching past column 24 are cut at it,
    /// and every panel is at least one cell, so a sloppy `gridPos` still gets drawn.
    pub fn place(&self, grid: GridPos) -> Rect {
        let x = grid.x.min(COLUMNS - 1);
        let w = grid.w.clamp(1, COLUMNS - x);
        let h = grid.h.max(1);
        Rect {
            x: self.margin + x * self.col_px + self.gap / 2,
            y: self.header + grid.y * self.row_px + self.gap / 2,
            w: w * self.col_px - self.gap,
            h: h * self.row_px - self.gap,
        }
    }

    /// The combined picture's size for a dashboard `grid_rows` grid rows high.
    pub fn canvas(&self, grid_rows: u32) -> (u32, u32) {
        (
            2 * self.margin + COLUMNS * self.col_px,
            self.header + grid_rows * self.row_px + self.margin,
        )
    }
}

/// Axis ticks: a round step (1, 2 or 5 × 10ⁿ) giving about `target` divisions, and the range
/// widened to whole steps so the top gridline closes the plot, as Grafana draws it.
pub fn nice_ticks(min: f64, max: f64, target: usize) -> (f64, f64, Vec<f64>) {
    let (min, max) = if max > min {
        (min, max)
    } else {
        (min, min + 1.0)
    };
    let raw = (max - min) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * magnitude);
    let lo = (min / step).floor() * step;
    let hi = (max / step).ceil() * step;
    let count = ((hi - lo) / step).round() as usize;
    let ticks = (0..=count).map(|i| lo + i as f64 * step).collect();
    (lo, hi, ticks)
}

/// Time axis ticks on whole 15 s, minutes, hours…: at most `max_count` within `[start, end]`.
pub fn time_ticks(start: f64, end: f64, max_count: usize) -> Vec<f64> {
    const STEPS: [f64; 14] = [
        15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
        43200.0, 86400.0,
    ];
    let span = (end - start).max(1.0);
    let step = STEPS
        .into_iter()
        .find(|s| span / s <= max_count.max(1) as f64)
        .unwrap_or(span);
    let mut t = (start / step).ceil() * step;
    let mut ticks = Vec::new();
    while t <= end {
        ticks.push(t);
        t += step;
    }
    ticks
}

/// Legend entries placed left to right, wrapping into at most `max_rows` rows of `max_w`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// `(x, row)` of each entry shown, in order; entries after them did not fit.
    pub places: Vec<(u32, u32)>,
    /// Rows used.
    pub rows: u32,
    /// Where a "+N more" note goes when some entries did not fit: `(x, row)`.
    pub more: Option<(u32, u32)>,
}

pub fn flow(widths: &[u32], max_w: u32, gap: u32, max_rows: u32, more_w: u32) -> Flow {
    let mut places: Vec<(u32, u32)> = Vec::new();
    let (mut x, mut row) = (0, 0);
    for &w in widths {
        if x > 0 && x + w > max_w {
            x = 0;
            row += 1;
        }
        if row >= max_rows.max(1) {
            break;
        }
        places.push((x, row));
        x += w + gap;
    }
    let mut more = None;
    if places.len() < widths.len() {
        // Make room for the note at the end of the last row.
        loop {
            let end = match places.last() {
                Some(&(x, row)) => (x + widths[places.len() - 1] + gap, row),
                None => (0, 0),
            };
            if end.0 + more_w <= max_w || places.len() <= 1 {
                more = Some(end);
                break;
            }
            places.pop();
        }
    }
    let rows = places
        .iter()
        .map(|p| p.1 + 1)
        .max()
        .unwrap_or(0)
        .max(more.map_or(0, |m| m.1 + 1));
    Flow { places, rows, more }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Layout = Layout {
        col_px: 60,
        row_px: 30,
        gap: 8,
        margin: 10,
        header: 50,
    };

    #[test]
    fn panels_follow_the_grid_with_gaps() {
        let left = L.place(GridPos {
            x: 0,
            y: 1,
            w: 12,
            h: 8,
        });
        assert_eq!(
            left,
            Rect {
                x: 14,
                y: 84,
                w: 712,
                h: 232
            }
        );
        let right = L.place(GridPos {
            x: 12,
            y: 1,
            w: 12,
            h: 8,
        });
        assert_eq!(right.x, left.x + left.w + L.gap);
        assert_eq!(right.x + right.w + L.gap / 2 + L.margin, L.canvas(9).0);
        let below = L.place(GridPos {
            x: 0,
            y: 9,
            w: 24,
            h: 4,
        });
        assert_eq!(below.y, left.y + left.h + L.gap);
    }

    #[test]
    fn sloppy_grid_positions_stay_on_the_canvas() {
        let r = L.place(GridPos {
            x: 30,
            y: 0,
            w: 10,
            h: 0,
        });
        assert_eq!(r.w, 60 - 8);
        assert_eq!(r.h, 30 - 8);
        assert!(r.x + r.w <= L.canvas(1).0);
        let r = L.place(GridPos {
            x: 20,
            y: 0,
            w: 12,
            h: 2,
        });
        assert_eq!(r.w, 4 * 60 - 8);
    }

    #[test]
    fn the_canvas_holds_the_title_and_every_grid_row() {
        assert_eq!(L.canvas(48), (20 + 24 * 60, 50 + 48 * 30 + 10));
    }
    #[test]
    fn ticks_are_round_and_cover_the_data() {
        let (lo, hi, ticks) = nice_ticks(0.0, 0.37, 5);
        assert_eq!((lo, hi), (0.0, 0.4));
        assert_eq!(ticks.len(), 5);
        assert!((ticks[1] - 0.1).abs() < 1e-12);
        let (lo, hi, _) = nice_ticks(3.0, 3.0, 4);
        assert!(lo <= 3.0 && hi >= 4.0);
        let (_, hi, ticks) = nice_ticks(0.0, 48.0, 4);
        assert_eq!((hi, ticks.len()), (60.0, 4));
    }

    #[test]
    fn time_ticks_fall_on_round_times() {
        let ticks = time_ticks(1000.0, 1000.0 + 1800.0, 8);
        assert_eq!(ticks[0], 1200.0);
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == 300.0));
        assert!(ticks.len() <= 8);
        assert_eq!(time_ticks(0.0, 120.0, 100).len(), 9);
    }

    #[test]
    fn legends_wrap_and_leave_room_for_the_rest() {
        let f = flow(&[50, 50, 50], 200, 10, 3, 40);
        assert_eq!(f.places, vec![(0, 0), (60, 0), (120, 0)]);
        assert_eq!((f.rows, f.more), (1, None));
        let f = flow(&[90, 90, 90, 90, 90], 200, 10, 2, 40);
        assert_eq!(f.places, vec![(0, 0), (100, 0), (0, 1)]);
        assert_eq!(f.more, Some((100, 1)));
        assert_eq!(f.rows, 2);
        let f = flow(&[180, 180], 200, 10, 1, 40);
        assert_eq!(f.places, vec![(0, 0)]);
        assert_eq!(f.more, Some((190, 0)));
    }
}
