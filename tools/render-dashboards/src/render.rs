//! Drawing with plotters on a bitmap, in the colours of Grafana's dark theme.
//!
//! Axes, ticks and text placement are done here rather than with plotters' chart mesh: the
//! ticks must fall on round times and unit-aware values, and the `ab_glyph` text backend places
//! glyphs relative to the font size, not to the box plotters anchors (see [`label`]).

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::dashboard::{Dashboard, Panel, PanelKind, Step};
use crate::data::{self, Cell, NamedSeries};
use crate::fonts;
use crate::format::{self, AxisFormat};
use crate::layout::{self, Layout};
use crate::prometheus::TimeRange;

pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Res<T = ()> = Result<T, Box<dyn Error>>;

const BACKGROUND: RGBColor = RGBColor(0x11, 0x12, 0x17);
const PANEL: RGBColor = RGBColor(0x18, 0x1b, 0x1f);
const BORDER: RGBColor = RGBColor(0x2c, 0x30, 0x36);
const GRID: RGBColor = RGBColor(0x26, 0x29, 0x2f);
const TEXT: RGBColor = RGBColor(0xd8, 0xd9, 0xe3);
const MUTED: RGBColor = RGBColor(0x9a, 0x9c, 0xa8);
const TRACK: RGBColor = RGBColor(0x22, 0x25, 0x2b);
/// Series colours: Grafana's classic palette in the shades of its dark theme.
const PALETTE: [RGBColor; 12] = [
    RGBColor(0x73, 0xbf, 0x69),
    RGBColor(0xf2, 0xcc, 0x0c),
    RGBColor(0x8a, 0xb8, 0xff),
    RGBColor(0xff, 0x78, 0x0a),
    RGBColor(0xf2, 0x49, 0x5c),
    RGBColor(0x57, 0x94, 0xf2),
    RGBColor(0xb8, 0x77, 0xd9),
    RGBColor(0x6e, 0xd0, 0xe0),
    RGBColor(0xef, 0x84, 0x3c),
    RGBColor(0xe2, 0x4d, 0x42),
    RGBColor(0x1f, 0x78, 0xc1),
    RGBColor(0xba, 0x43, 0xa9),
];

const TITLE_SIZE: f64 = 14.0;
const SMALL: f64 = 12.0;
const PAD: i32 = 10;
/// Height of a panel's title band.
const TITLE_BAND: i32 = 32;

/// What one run shows: the query window and where the data came from.
pub struct Context<'a> {
    pub range: TimeRange,
    pub source: &'a str,
}

/// Writes one panel's PNG at the size it has in the combined picture.
pub fn panel_png(
    path: &Path,
    panel: &Panel,
    series: &[NamedSeries],
    layout: &Layout,
    cx: &Context,
) -> Res {
    let rect = layout.place(panel.grid);
    let root = BitMapBackend::new(path, (rect.w, rect.h)).into_drawing_area();
    root.fill(&BACKGROUND)?;
    draw_panel(&root, panel, series, cx)?;
    root.present()?;
    Ok(())
}

/// Writes the whole dashboard: title, row headers and every panel where `gridPos` puts it.
pub fn dashboard_png(
    path: &Path,
    dashboard: &Dashboard,
    data: &[Vec<NamedSeries>],
    layout: &Layout,
    cx: &Context,
) -> Res {
    let (w, h) = layout.canvas(dashboard.grid_height());
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&BACKGROUND)?;
    let m = layout.margin as i32 + (layout.gap / 2) as i32;
    label(
        &root,
        &dashboard.title,
        22.0,
        true,
        &TEXT,
        (m, 24),
        HPos::Left,
    )?;
    let subtitle = format!(
        "{} to {} ({} min, step {} s) · Prometheus {}",
        clock(cx.range.start, "%Y-%m-%d %H:%M"),
        clock(cx.range.end, "%H:%M %Z"),
        ((cx.range.end - cx.range.start) / 60.0).round(),
        cx.range.step,
        cx.source
    );
    label(&root, &subtitle, 12.0, false, &MUTED, (m, 48), HPos::Left)?;
    for row in &dashboard.rows {
        let r = layout.place(row.grid);
        let mid = r.y as i32 + layout.row_px as i32 / 2 - (layout.gap / 2) as i32;
        label(
            &root,
            &row.title,
            TITLE_SIZE,
            true,
            &TEXT,
            (r.x as i32, mid),
            HPos::Left,
        )?;
    }
    for (panel, series) in dashboard.panels.iter().zip(data) {
        let r = layout.place(panel.grid);
        let area = root.clone().shrink((r.x, r.y), (r.w, r.h));
        draw_panel(&area, panel, series, cx)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel(area: &Area, panel: &Panel, series: &[NamedSeries], cx: &Context) -> Res {
    let has_data = series.iter().any(|s| !s.points.is_empty());
    match &panel.kind {
        PanelKind::Other(kind) => {
            message_card(area, panel, &format!("“{kind}” panels are not drawn"))
        }
        _ if !has_data => message_card(area, panel, "No data"),
        PanelKind::Timeseries => timeseries(area, panel, series, cx),
        PanelKind::Stat => stat(area, panel, series),
        PanelKind::BarGauge => bargauge(area, panel, series),
        PanelKind::Table => table(area, panel, series),
    }
}

/// The panel's card and title; returns the area inside it.
fn frame<'a>(
    area: &Area<'a>,
    title: &str,
    fill: &RGBColor,
    title_color: &RGBColor,
) -> Res<Area<'a>> {
    let (w, h) = area.dim_in_pixel();
    area.fill(fill)?;
    area.draw(&Rectangle::new(
        [(0, 0), (w as i32 - 1, h as i32 - 1)],
        BORDER.stroke_width(1),
    ))?;
    let title = ellipsize(title, TITLE_SIZE, true, w.saturating_sub(2 * PAD as u32))?;
    label(
        area,
        &title,
        TITLE_SIZE,
        true,
        title_color,
        (PAD, TITLE_BAND / 2 + 2),
        HPos::Left,
    )?;
    let inner_w = w.saturating_sub(2 * PAD as u32).max(1);
    let inner_h = h.saturating_sub((TITLE_BAND + PAD / 2 + PAD) as u32).max(1);
    Ok(area
        .clone()
        .shrink((PAD, TITLE_BAND + PAD / 2), (inner_w, inner_h)))
}

fn message_card(area: &Area, panel: &Panel, message: &str) -> Res {
    let inner = frame(area, &panel.title, &PANEL, &TEXT)?;
    let (w, h) = inner.dim_in_pixel();
    let message = ellipsize(message, 16.0, false, w)?;
    label(
        &inner,
        &message,
        16.0,
        false,
        &MUTED,
        (w as i32 / 2, h as i32 / 2),
        HPos::Center,
    )
}

fn timeseries(area: &Area, panel: &Panel, series: &[NamedSeries], cx: &Context) -> Res {
    let inner = frame(area, &panel.title, &PANEL, &TEXT)?;
    let (w, h) = inner.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let range = cx.range;
    let color = |i: usize| PALETTE[i % PALETTE.len()];

    // The legend first: it takes what it needs below the plot, at most about a third.
    let line_h = 18;
    let max_rows = ((h / 3) / line_h).max(1) as u32;
    let more_w = text_width("+99 more", SMALL, false)? + 4;
    let max_entry = (w as u32).saturating_sub(more_w + 14).max(40);
    let mut names = Vec::new();
    let mut widths = Vec::new();
    for s in series {
        let name = ellipsize(&s.name, SMALL, false, max_entry - 18)?;
        widths.push(text_width(&name, SMALL, false)? + 18);
        names.push(name);
    }
    let flow = layout::flow(&widths, w as u32, 14, max_rows, more_w);
    let legend_h = flow.rows as i32 * line_h + 4;
    let plot_bottom = h - legend_h - 18;

    // Y axis: from the panel's min (or 0 for data that never goes below it) to a round top.
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let lo = panel.min.unwrap_or(if lo >= 0.0 { 0.0 } else { lo });
    let hi = panel.max.unwrap_or(hi).max(lo);
    let y_ticks_wanted = ((plot_bottom - 10) / 40).clamp(2, 6) as usize;
    let (lo, hi, ticks) = layout::nice_ticks(lo, hi, y_ticks_wanted);
    let axis = AxisFormat::new(panel.unit.as_deref(), lo, hi, ticks.len().saturating_sub(1));
    let tick_labels: Vec<String> = ticks.iter().map(|t| axis.format(*t)).collect();
    let mut label_w = 0;
    for t in &tick_labels {
        label_w = label_w.max(text_width(t, SMALL, false)?);
    }
    let plot_left = label_w as i32 + 8;
    let plot_right = w - 6;
    let plot_top = 6;
    let x_of = |t: f64| {
        plot_left
            + ((t - range.start) / (range.end - range.start) * (plot_right - plot_left) as f64)
                as i32
    };
    let y_of = |v: f64| {
        let v = v.clamp(lo, hi);
        plot_bottom - ((v - lo) / (hi - lo) * (plot_bottom - plot_top) as f64).round() as i32
    };

    for (t, text) in ticks.iter().zip(&tick_labels) {
        let y = y_of(*t);
        inner.draw(&PathElement::new(
            vec![(plot_left, y), (plot_right, y)],
            GRID.stroke_width(1),
        ))?;
        label(
            &inner,
            text,
            SMALL,
            false,
            &MUTED,
            (plot_left - 6, y),
            HPos::Right,
        )?;
    }
    let x_ticks = layout::time_ticks(
        range.start,
        range.end,
        ((plot_right - plot_left) / 110).max(2) as usize,
    );
    for t in x_ticks {
        let x = x_of(t);
        inner.draw(&PathElement::new(
            vec![(x, plot_top), (x, plot_bottom)],
            GRID.stroke_width(1),
        ))?;
        label(
            &inner,
            &clock(t, "%H:%M"),
            SMALL,
            false,
            &MUTED,
            (x, plot_bottom + 11),
            HPos::Center,
        )?;
    }
    inner.draw(&PathElement::new(
        vec![(plot_left, plot_bottom), (plot_right, plot_bottom)],
        BORDER.stroke_width(1),
    ))?;

    // One line per series, broken where points are missing (spanNulls off). A light fill
    // below helps a few lines; under many it turns to mud.
    let max_gap = range.step * 1.5;
    let fill_alpha = if series.len() <= 3 { 0.08 } else { 0.0 };
    for (i, s) in series.iter().enumerate() {
        for segment in segments(&s.points, max_gap) {
            let line: Vec<(i32, i32)> = segment.iter().map(|&(t, v)| (x_of(t), y_of(v))).collect();
            if line.len() == 1 {
                inner.draw(&Circle::new(line[0], 2, color(i).filled()))?;
                continue;
            }
            if fill_alpha > 0.0 {
                let mut fill = line.clone();
                fill.push((line[line.len() - 1].0, y_of(lo)));
                fill.push((line[0].0, y_of(lo)));
                inner.draw(&Polygon::new(fill, color(i).mix(fill_alpha).filled()))?;
            }
            inner.draw(&PathElement::new(line, color(i).stroke_width(2)))?;
        }
    }

    let top = plot_bottom + 24;
    for (i, &(x, row)) in flow.places.iter().enumerate() {
        let y = top + row as i32 * line_h + line_h / 2;
        let x = x as i32;
        inner.draw(&Rectangle::new(
            [(x, y - 2), (x + 12, y + 1)],
            color(i).filled(),
        ))?;
        label(
            &inner,
            &names[i],
            SMALL,
            false,
            &TEXT,
            (x + 18, y),
            HPos::Left,
        )?;
    }
    if let Some((x, row)) = flow.more {
        let hidden = series.len() - flow.places.len();
        let y = top + row as i32 * line_h + line_h / 2;
        label(
            &inner,
            &format!("+{hidden} more"),
            SMALL,
            false,
            &MUTED,
            (x as i32, y),
            HPos::Left,
        )?;
    }
    Ok(())
}

/// Runs of points no further apart than `max_gap`.
fn segments(points: &[(f64, f64)], max_gap: f64) -> Vec<&[(f64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].0 - points[i - 1].0 > max_gap {
            if i > start {
                out.push(&points[start..i]);
            }
            start = i;
        }
    }
    out
}

fn stat(area: &Area, panel: &Panel, series: &[NamedSeries]) -> Res {
    let shown: Vec<(&NamedSeries, f64)> =
        series.iter().filter_map(|s| Some((s, s.last()?))).collect();
    let single = shown.len() == 1;
    let background = panel.color_background && single;
    let first_color = shown
        .first()
        .map(|(_, v)| value_color(&panel.thresholds, *v, 0))
        .unwrap_or(PALETTE[0]);
    // Background mode fills the card like Grafana; a darker shade keeps white text legible.
    let (fill, title_color) = if background {
        (shade(first_color, 0.72), WHITE)
    } else {
        (PANEL, TEXT)
    };
    let inner = frame(area, &panel.title, &fill, &title_color)?;
    let (w, h) = inner.dim_in_pixel();
    let n = shown.len().max(1) as u32;
    let cell_w = w / n;
    for (i, (s, v)) in shown.iter().enumerate() {
        let cell = inner.clone().shrink((i as u32 * cell_w, 0), (cell_w, h));
        let color = value_color(&panel.thresholds, *v, i);
        sparkline(
            &cell,
            s,
            if background {
                WHITE.mix(0.35)
            } else {
                color.mix(0.3)
            },
        )?;
        let text = format::value(*v, panel.unit.as_deref(), panel.decimals);
        let name_h = if single { 0 } else { 18 };
        if !single {
            let name = ellipsize(&s.name, SMALL, false, cell_w.saturating_sub(8))?;
            label(
                &cell,
                &name,
                SMALL,
                false,
                &MUTED,
                (cell_w as i32 / 2, 8),
                HPos::Center,
            )?;
        }
        let mut size = (h.saturating_sub(name_h) as f64 * 0.55).min(48.0);
        while size > 10.0 && text_width(&text, size, true)? > cell_w * 9 / 10 {
            size -= 2.0;
        }
        let text_color = if background { WHITE } else { color };
        let y = name_h as i32 + (h as i32 - name_h as i32) / 2 - 4;
        label(
            &cell,
            &text,
            size,
            true,
            &text_color,
            (cell_w as i32 / 2, y),
            HPos::Center,
        )?;
    }
    Ok(())
}

/// The series' shape in the lower part of a stat card.
fn sparkline(area: &Area, s: &NamedSeries, color: RGBAColor) -> Res {
    let (w, h) = area.dim_in_pixel();
    let (t0, t1) = match (s.points.first(), s.points.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => (a.0, b.0),
        _ => return Ok(()),
    };
    let (lo, hi) = s
        .points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (top, bottom) = (h as f64 * 0.6, h as f64 - 1.0);
    let line: Vec<(i32, i32)> = s
        .points
        .iter()
        .map(|&(t, v)| {
            let x = (t - t0) / (t1 - t0) * (w as f64 - 1.0);
            let y = bottom - (v - lo) / span * (bottom - top);
            (x as i32, y as i32)
        })
        .collect();
    let mut fill = line.clone();
    fill.push((w as i32 - 1, bottom as i32));
    fill.push((0, bottom as i32));
    area.draw(&Polygon::new(fill, color.mix(0.5).filled()))?;
    area.draw(&PathElement::new(line, color.stroke_width(2)))?;
    Ok(())
}

fn bargauge(area: &Area, panel: &Panel, series: &[NamedSeries]) -> Res {
    let inner = frame(area, &panel.title, &PANEL, &TEXT)?;
    let (w, h) = inner.dim_in_pixel();
    let mut bars: Vec<(&str, f64)> = series
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.last()?)))
        .collect();
    bars.sort_by(|a, b| a.0.cmp(b.0));
    let min = panel.min.unwrap_or(0.0);
    let max = panel
        .max
        .unwrap_or_else(|| bars.iter().map(|b| b.1).fold(min, f64::max));
    let span = if max > min { max - min } else { 1.0 };

    let row_min = 18;
    let capacity = (h / row_min).max(1) as usize;
    let hidden = bars.len().saturating_sub(capacity);
    let shown = if hidden > 0 { capacity - 1 } else { bars.len() };
    let rows = (shown + usize::from(hidden > 0)).max(1);
    let row_h = (h / rows as u32).min(40) as i32;

    let texts: Vec<String> = bars
        .iter()
        .map(|b| format::value(b.1, panel.unit.as_deref(), panel.decimals))
        .collect();
    let mut name_w = 0;
    let mut value_w = 0;
    for (b, t) in bars.iter().zip(&texts).take(shown) {
        name_w = name_w.max(text_width(b.0, SMALL, false)?);
        value_w = value_w.max(text_width(t, SMALL, true)?);
    }
    let name_w = name_w.min(w * 2 / 5) as i32 + 10;
    let value_w = value_w as i32 + 10;
    let bar_w = (w as i32 - name_w - value_w).max(10);

    for (i, ((name, v), text)) in bars.iter().zip(&texts).take(shown).enumerate() {
        let y = i as i32 * row_h;
        let mid = y + row_h / 2;
        let color = value_color(&panel.thresholds, *v, i);
        let name = ellipsize(name, SMALL, false, (name_w - 10) as u32)?;
        label(&inner, &name, SMALL, false, &TEXT, (0, mid), HPos::Left)?;
        let (top, bottom) = (y + 3, y + row_h - 3);
        inner.draw(&Rectangle::new(
            [(name_w, top), (name_w + bar_w, bottom)],
            TRACK.filled(),
        ))?;
        let filled = (((v - min) / span).clamp(0.0, 1.0) * bar_w as f64) as i32;
        if filled > 0 {
            inner.draw(&Rectangle::new(
                [(name_w, top), (name_w + filled, bottom)],
                color.filled(),
            ))?;
        }
        label(
            &inner,
            text,
            SMALL,
            true,
            &color,
            (w as i32, mid),
            HPos::Right,
        )?;
    }
    if hidden > 0 {
        let mid = shown as i32 * row_h + row_h / 2;
        label(
            &inner,
            &format!("+{} more", hidden + 1),
            SMALL,
            false,
            &MUTED,
            (0, mid),
            HPos::Left,
        )?;
    }
    Ok(())
}

fn table(area: &Area, panel: &Panel, series: &[NamedSeries]) -> Res {
    let t = data::table(panel, series);
    if t.rows.is_empty() {
        return message_card(area, panel, "No data");
    }
    let inner = frame(area, &panel.title, &PANEL, &TEXT)?;
    let (w, h) = inner.dim_in_pixel();
    let texts: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&t.columns)
                .map(|(cell, col)| match cell {
                    Cell::Text(s) => s.clone(),
                    Cell::Number(v) => format::value(*v, col.unit.as_deref(), col.decimals),
                    Cell::Empty => String::new(),
                })
                .collect()
        })
        .collect();

    // Columns as wide as their widest text, then stretched (or squeezed) to the card's width.
    let mut widths = Vec::new();
    for (c, col) in t.columns.iter().enumerate() {
        let mut widest = text_width(&col.name, SMALL, true)?;
        for row in &texts {
            widest = widest.max(text_width(&row[c], SMALL, false)?);
        }
        widths.push(widest as f64 + 16.0);
    }
    let total: f64 = widths.iter().sum();
    let widths: Vec<i32> = widths
        .iter()
        .map(|c| (c / total * w as f64) as i32)
        .collect();
    let lefts: Vec<i32> = widths
        .iter()
        .scan(0, |x, c| {
            let l = *x;
            *x += c;
            Some(l)
        })
        .collect();

    let row_h = 24;
    let header_h = 24;
    let capacity = ((h as i32 - header_h) / row_h).max(1) as usize;
    let hidden = t.rows.len().saturating_sub(capacity);
    let shown = if hidden > 0 {
        capacity - 1
    } else {
        t.rows.len()
    };

    for (c, col) in t.columns.iter().enumerate() {
        let name = ellipsize(&col.name, SMALL, true, (widths[c] - 12).max(4) as u32)?;
        let (x, anchor) = cell_anchor(lefts[c], widths[c], col.numeric);
        label(
            &inner,
            &name,
            SMALL,
            true,
            &MUTED,
            (x, header_h / 2),
            anchor,
        )?;
    }
    inner.draw(&PathElement::new(
        vec![(0, header_h - 1), (w as i32, header_h - 1)],
        BORDER.stroke_width(1),
    ))?;
    for (r, row) in t.rows.iter().take(shown).enumerate() {
        let top = header_h + r as i32 * row_h;
        for (c, cell) in row.iter().enumerate() {
            let col = &t.columns[c];
            let mut text_color = TEXT;
            // Numbers on their threshold colour (Grafana's color-background cells).
            let background = match cell {
                Cell::Number(v) => {
                    format::threshold_color(&col.thresholds, *v).and_then(format::rgb)
                }
                _ => None,
            };
            if let Some(bg) = background {
                let bg = RGBColor(bg.0, bg.1, bg.2);
                inner.draw(&Rectangle::new(
                    [
                        (lefts[c] + 1, top + 1),
                        (lefts[c] + widths[c] - 1, top + row_h - 1),
                    ],
                    shade(bg, 0.75).filled(),
                ))?;
                text_color = WHITE;
            }
            let text = ellipsize(&texts[r][c], SMALL, false, (widths[c] - 12).max(4) as u32)?;
            let (x, anchor) = cell_anchor(lefts[c], widths[c], col.numeric);
            label(
                &inner,
                &text,
                SMALL,
                false,
                &text_color,
                (x, top + row_h / 2),
                anchor,
            )?;
        }
        inner.draw(&PathElement::new(
            vec![(0, top + row_h), (w as i32, top + row_h)],
            GRID.stroke_width(1),
        ))?;
    }
    if hidden > 0 {
        let y = header_h + shown as i32 * row_h + row_h / 2;
        label(
            &inner,
            &format!("+{} more rows", hidden + 1),
            SMALL,
            false,
            &MUTED,
            (6, y),
            HPos::Left,
        )?;
    }
    Ok(())
}

/// Numbers right-aligned, text left-aligned, as Grafana's `auto` alignment does.
fn cell_anchor(left: i32, width: i32, numeric: bool) -> (i32, HPos) {
    if numeric {
        (left + width - 6, HPos::Right)
    } else {
        (left + 6, HPos::Left)
    }
}

/// A value's threshold colour, or the palette's for a panel without thresholds.
fn value_color(steps: &[Step], v: f64, i: usize) -> RGBColor {
    match format::threshold_color(steps, v).and_then(format::rgb) {
        Some((r, g, b)) => RGBColor(r, g, b),
        None => PALETTE[i % PALETTE.len()],
    }
}

fn shade(c: RGBColor, f: f64) -> RGBColor {
    let m = |x: u8| (x as f64 * f).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

fn font(size: f64, bold: bool) -> FontDesc<'static> {
    let style = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    FontDesc::new(FontFamily::SansSerif, size, style)
}

fn text_width(text: &str, size: f64, bold: bool) -> Res<u32> {
    Ok(fonts::width(text, even(size), bold)?.ceil() as u32)
}

/// Font sizes are whole even pixels: the ab_glyph backend truncates `size / 2 + glyph top`
/// towards zero, so at other sizes tall glyphs sit a pixel lower than short ones ("1·73").
fn even(size: f64) -> f64 {
    (size / 2.0).round().max(1.0) * 2.0
}

/// `text`, cut with "…" to fit `max_w` pixels. Plotters clips text only at the picture's
/// edge, so anything drawn inside a panel must be made to fit first.
fn ellipsize(text: &str, size: f64, bold: bool, max_w: u32) -> Res<String> {
    if text_width(text, size, bold)? <= max_w {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "…";
        if text_width(&candidate, size, bold)? <= max_w {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(chars[..lo]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_string()
        + "…")
}

/// Draws one line of text with its capitals' middle at `y`, glyph by glyph (see [`fonts`]).
///
/// The ab_glyph backend puts the baseline half the font size below a top anchor; capitals of
/// DejaVu Sans are about 0.63 of the font size high.
pub fn label(
    area: &Area,
    text: &str,
    size: f64,
    bold: bool,
    color: &RGBColor,
    (x, y): (i32, i32),
    h: HPos,
) -> Res {
    let size = even(size);
    let (glyphs, width) = fonts::glyphs(text, size, bold)?;
    let left = match h {
        HPos::Left => x,
        HPos::Center => x - (width / 2.0).round() as i32,
        HPos::Right => x - width.round() as i32,
    };
    let baseline = y as f64 + size * 0.63 / 2.0;
    let top = (baseline - size / 2.0).round() as i32;
    let style = TextStyle::from(font(size, bold))
        .color(color)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let mut buf = [0u8; 4];
    for (c, dx) in glyphs {
        area.draw_text(c.encode_utf8(&mut buf), &style, (left + dx, top))?;
    }
    Ok(())
}

/// Local time of a unix timestamp.
fn clock(t: f64, format: &str) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.with_timezone(&chrono::Local).format(format).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::{GridPos, Window};
    use std::collections::BTreeMap;

    #[test]
    fn lines_break_at_missing_points() {
        let p = [
            (0.0, 1.0),
            (15.0, 1.0),
            (60.0, 2.0),
            (75.0, 2.0),
            (200.0, 3.0),
        ];
        let s = segments(&p, 22.5);
        assert_eq!(s, vec![&p[0..2], &p[2..4], &p[4..5]]);
        assert!(segments(&[], 22.5).is_empty());
    }

    /// Every real panel, with made-up data or none, then squeezed to one grid cell: nothing may fail
    /// or panic, and each picture is a PNG.
    #[test]
    fn every_panel_draws_with_data_without_data_and_at_one_cell() {
        let font = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
        if !font.is_file() {
            eprintln!("skipped: {} is not installed", font.display());
            return;
        }
        fonts::load(font).unwrap();
        let out =
            std::env::temp_dir().join(format!("render-dashboards-test-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let range = TimeRange::ending(1_800_000_000.0, 1800, 15);
        let cx = Context {
            range,
            source: "test",
        };
        let window = Window {
            range_secs: 1800,
            step_secs: 15,
        };
        let layout = Layout::default();
        for stem in [
            "stockroom-overview",
            "stockroom-business",
            "stockroom-internals",
        ] {
            let path = format!(
                "{}/../../dashboards/{stem}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(path).unwrap();
            let mut dashboard = Dashboard::parse(stem, &text, window).unwrap();
            let data: Vec<Vec<NamedSeries>> = dashboard
                .panels
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if i % 4 == 3 {
                        Vec::new()
                    } else {
                        fake(p, range)
                    }
                })
                .collect();
            let picture = out.join(format!("{stem}.png"));
            dashboard_png(&picture, &dashboard, &data, &layout, &cx).unwrap();
            assert_png(&picture);
            // Full size is covered by the combined picture; the single cell tests the squeeze.
            for (panel, series) in dashboard.panels.iter_mut().zip(&data) {
                panel.grid = GridPos {
                    x: 0,
                    y: 0,
                    w: 1,
                    h: 1,
                };
                let picture = out.join(panel.file_name());
                panel_png(&picture, panel, series, &layout, &cx)
                    .unwrap_or_else(|e| panic!("{}: {e}", panel.title));
                assert_png(&picture);
            }
        }
        std::fs::remove_dir_all(&out).unwrap();
    }

    /// Three series per target with a gap, long names and a spike.
    fn fake(panel: &Panel, range: TimeRange) -> Vec<NamedSeries> {
        let mut out = Vec::new();
        for target in 0..panel.exprs.len() {
            for k in 0..3 {
                let labels: BTreeMap<String, String> = [
                    ("function", format!("function-with-a-long-name-{k}")),
                    ("product_id", k.to_string()),
                ]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b))
                .collect();
                let points = (0..=120)
                    .filter(|i| !(40..50).contains(i))
                    .map(|i| (range.start + i as f64 * 15.0, (i * (k + 1)) as f64 / 100.0))
                    .collect();
                out.push(NamedSeries {
                    name: format!("series {target}/{k} with a name"),
                    target,
                    labels,
                    points,
                });
            }
        }
        out
    }

    fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            path.display()
        );
    }
}
