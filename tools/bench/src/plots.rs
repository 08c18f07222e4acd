//! The pictures in BENCHMARKS.md: one value against concurrency, a line per level, drawn with
//! plotters and the dashboards renderer's text (its glyph placement, its font).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::HPos;
use stockroom_render_dashboards::render::label;

/// One line: its name and a value per concurrency (`None` where it was not measured).
pub struct Line {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

const WIDTH: u32 = 900;
const HEIGHT: u32 = 480;
const COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x7f, 0x7f, 0x7f),
];

/// A round step for about five grid lines up to `max`.
fn step(max: f64) -> f64 {
    let raw = (max / 5.0).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn number(v: f64) -> String {
    if v >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Draws `lines` against `concurrency` (evenly spaced) to `path` as a PNG.
pub fn lines(
    path: &Path,
    title: &str,
    unit: &str,
    concurrency: &[usize],
    lines: &[Line],
) -> Result<(), Box<dyn Error>> {
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right, top, bottom) = (80, 250, 50, HEIGHT as i32 - 50);
    label(&root, title, 18.0, true, &BLACK, (left, 22), HPos::Left)?;
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let step = step(max);
    let top_value = (max / step).ceil().max(1.0) * step;
    let plot_right = WIDTH as i32 - right;
    let y = |v: f64| bottom - ((v / top_value) * f64::from(bottom - top)) as i32;
    let x = |i: usize| {
        let span = (plot_right - left - 60) as f64;
        left + 30 + (span * i as f64 / (concurrency.len().max(2) - 1) as f64) as i32
    };
    let grid = RGBColor(0xdd, 0xdd, 0xdd);
    let mut v = 0.0;
    while v <= top_value + step / 2.0 {
        root.draw(&PathElement::new(
            vec![(left, y(v)), (plot_right, y(v))],
            grid,
        ))?;
        label(
            &root,
            &number(v),
            12.0,
            false,
            &BLACK,
            (left - 8, y(v)),
            HPos::Right,
        )?;
        v += step;
    }
    label(
        &root,
        unit,
        12.0,
        false,
        &BLACK,
        (left, top - 14),
        HPos::Left,
    )?;
    for (i, c) in concurrency.iter().enumerate() {
        label(
            &root,
            &c.to_string(),
            12.0,
            false,
            &BLACK,
            (x(i), bottom + 16),
            HPos::Center,
        )?;
    }
    let axis_note = "concurrency (environments, or connections end to end)";
    label(
        &root,
        axis_note,
        12.0,
        false,
        &BLACK,
        ((left + plot_right) / 2, bottom + 36),
        HPos::Center,
    )?;
    for (n, line) in lines.iter().enumerate() {
        let color = COLORS[n % COLORS.len()];
        let points: Vec<(i32, i32)> = line
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (x(i), y(v))))
            .collect();
        root.draw(&PathElement::new(points.clone(), color.stroke_width(2)))?;
        for point in points {
            root.draw(&Circle::new(point, 4, color.filled()))?;
        }
        let legend_y = top + 10 + 24 * n as i32;
        let legend_x = plot_right + 20;
        root.draw(&PathElement::new(
            vec![(legend_x, legend_y), (legend_x + 24, legend_y)],
            color.stroke_width(3),
        ))?;
        label(
            &root,
            &line.name,
            12.0,
            false,
            &BLACK,
            (legend_x + 32, legend_y),
            HPos::Left,
        )?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_steps_are_round() {
        assert_eq!(step(5588.0), 2000.0);
        assert_eq!(step(270.0), 100.0);
        assert_eq!(step(12.0), 2.5);
        assert_eq!(step(0.9), 0.2);
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(1500.0), "1500");
    }
}
