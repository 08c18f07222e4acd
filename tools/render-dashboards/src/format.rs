//! Text for people: file-name slugs, legends, values with units, threshold colours, durations.

use std::collections::BTreeMap;

use crate::dashboard::Step;

/// `Outbox: oldest unpublished event` → `outbox-oldest-unpublished-event`.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "panel".to_string()
    } else {
        out.chars()
            .take(60)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string()
    }
}

/// A series' name as Grafana shows it: `legendFormat` with `{{label}}` filled in, or else the
/// label set (`{status="422"}`), or the query itself for a series without labels.
pub fn legend(format: Option<&str>, labels: &BTreeMap<String, String>, expr: &str) -> String {
    if let Some(format) = format {
        let mut out = String::new();
        let mut rest = format;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            // Grafana leaves a missing label empty.
            if let Some(value) = labels.get(after[..end].trim()) {
                out.push_str(value);
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        return out.trim().to_string();
    }
    let name = labels
        .get("__name__")
        .map(String::as_str)
        .unwrap_or_default();
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    match (name, pairs.is_empty()) {
        ("", true) => expr.to_string(),
        (name, true) => name.to_string(),
        (name, false) => format!("{name}{{{}}}", pairs.join(", ")),
    }
}

/// How one value (a stat, a bar, a table cell, a legend) is written: scaled to a readable unit,
/// `decimals` as the panel says or about three significant digits.
pub fn value(v: f64, unit: Option<&str>, decimals: Option<usize>) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let scale = Scale::for_value(unit, v.abs());
    let scaled = v / scale.divisor;
    let text = match decimals {
        Some(d) => format!("{scaled:.d$}"),
        None => trim_zeros(format!("{scaled:.*}", auto_decimals(scaled.abs()))),
    };
    format!("{text}{}", scale.suffix)
}

/// Labels for an axis from `min` to `max` with about `ticks` divisions: one scale and one
/// number of decimals for all of them, so the labels line up and stay distinct.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisFormat {
    scale: Scale,
    decimals: usize,
}

impl AxisFormat {
    pub fn new(unit: Option<&str>, min: f64, max: f64, ticks: usize) -> AxisFormat {
        let scale = Scale::for_value(unit, min.abs().max(max.abs()));
        let step = (max - min).abs() / scale.divisor / ticks.max(1) as f64;
        let decimals = if step > 0.0 && step.is_finite() {
            (-step.log10().floor()).clamp(0.0, 6.0) as usize
        } else {
            0
        };
        AxisFormat { scale, decimals }
    }

    pub fn format(&self, v: f64) -> String {
        let scaled = v / self.scale.divisor;
        // `-0` reads oddly on an axis.
        let scaled = if scaled == 0.0 { 0.0 } else { scaled };
        format!("{scaled:.*}{}", self.decimals, self.scale.suffix)
    }
}

/// A unit at a magnitude: divide by `divisor`, then write `suffix`.
#[derive(Debug, Clone, PartialEq)]
struct Scale {
    divisor: f64,
    suffix: String,
}

impl Scale {
    fn new(divisor: f64, suffix: &str) -> Scale {
        Scale {
            divisor,
            suffix: suffix.to_string(),
        }
    }

    fn for_value(unit: Option<&str>, magnitude: f64) -> Scale {
        match unit.unwrap_or("short") {
            "percentunit" => Scale::new(0.01, "%"),
            "percent" => Scale::new(1.0, "%"),
            "s" => time(magnitude),
            "ms" => {
                let s = time(magnitude / 1000.0);
                Scale::new(s.divisor * 1000.0, &s.suffix)
            }
            "bytes" | "decbytes" => binary(magnitude, "B"),
            "none" | "" => Scale::new(1.0, ""),
            "short" => si(magnitude, ""),
            "reqps" => si(magnitude, " req/s"),
            "rps" => si(magnitude, " rd/s"),
            "wps" => si(magnitude, " wr/s"),
            "ops" => si(magnitude, " ops/s"),
            "cps" => si(magnitude, " c/s"),
            "opm" => si(magnitude, " ops/min"),
            "reqpm" => si(magnitude, " req/min"),
            other => si(magnitude, &format!(" {other}")),
        }
    }
}

fn time(seconds: f64) -> Scale {
    match seconds {
        s if s >= 86_400.0 => Scale::new(86_400.0, " d"),
        s if s >= 3_600.0 => Scale::new(3_600.0, " h"),
        s if s >= 60.0 => Scale::new(60.0, " min"),
        s if s >= 1.0 || s == 0.0 => Scale::new(1.0, " s"),
        s if s >= 1e-3 => Scale::new(1e-3, " ms"),
        _ => Scale::new(1e-6, " µs"),
    }
}

fn si(magnitude: f64, unit: &str) -> Scale {
    let (divisor, prefix) = match magnitude {
        m if m >= 1e9 => (1e9, "B"),
        m if m >= 1e6 => (1e6, "Mil"),
        m if m >= 1e3 => (1e3, "K"),
        _ => (1.0, ""),
    };
    // `unit` starts with its space: "1.5 K req/s", "1.5 K", "0.04 req/s".
    let suffix = if prefix.is_empty() {
        unit.to_string()
    } else {
        format!(" {prefix}{unit}")
    };
    Scale::new(divisor, &suffix)
}

fn binary(magnitude: f64, unit: &str) -> Scale {
    let prefixes = ["", "Ki", "Mi", "Gi", "Ti"];
    let mut divisor = 1.0;
    let mut i = 0;
    while i + 1 < prefixes.len() && magnitude >= divisor * 1024.0 {
        divisor *= 1024.0;
        i += 1;
    }
    Scale::new(divisor, &format!(" {}{unit}", prefixes[i]))
}

fn auto_decimals(scaled: f64) -> usize {
    match scaled {
        s if s == 0.0 || s >= 100.0 => 0,
        s if s >= 10.0 => 1,
        s if s >= 1.0 => 2,
        // Three significant digits below 1: 0.0372.
        s => ((-s.log10().floor()) as usize + 2).min(6),
    }
}

fn trim_zeros(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The colour of the highest threshold step at or below `v` (Grafana's absolute mode).
pub fn threshold_color(steps: &[Step], v: f64) -> Option<&str> {
    steps
        .iter()
        .rfind(|s| s.value.is_none_or(|t| v >= t))
        .map(|s| s.color.as_str())
}

/// Grafana's colour names (its dark theme's shades) and `#rrggbb`; `None` for `transparent`
/// and anything unknown.
pub fn rgb(color: &str) -> Option<(u8, u8, u8)> {
    let named = match color.trim().to_ascii_lowercase().as_str() {
        "green" => Some((0x73, 0xbf, 0x69)),
        "semi-dark-green" | "dark-green" => Some((0x37, 0x87, 0x2d)),
        "yellow" => Some((0xfa, 0xde, 0x2a)),
        "semi-dark-yellow" | "dark-yellow" => Some((0xe0, 0xb4, 0x00)),
        "orange" => Some((0xff, 0x98, 0x30)),
        "semi-dark-orange" | "dark-orange" => Some((0xfa, 0x64, 0x00)),
        "red" => Some((0xf2, 0x49, 0x5c)),
        "semi-dark-red" | "dark-red" => Some((0xc4, 0x16, 0x2a)),
        "blue" => Some((0x57, 0x94, 0xf2)),
        "semi-dark-blue" | "dark-blue" => Some((0x1f, 0x60, 0xc4)),
        "purple" => Some((0xb8, 0x77, 0xd9)),
        "semi-dark-purple" | "dark-purple" => Some((0x8f, 0x3b, 0xb8)),
        "text" | "white" => Some((0xcc, 0xcc, 0xdc)),
        _ => None,
    };
    if named.is_some() {
        return named;
    }
    let hex = color.trim().strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// `30m`, `15s`, `1h30m`, `2d`, or plain seconds → seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("not a duration: {text:?} (examples: 15s, 30m, 1h30m)");
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return if secs > 0 { Ok(secs) } else { Err(bad()) };
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        total = total.checked_add(n * unit).ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn slugs_are_lowercase_dashed_and_never_empty() {
        assert_eq!(
            slug("Outbox: oldest unpublished event"),
            "outbox-oldest-unpublished-event"
        );
        assert_eq!(slug("5xx share"), "5xx-share");
        assert_eq!(
            slug("Cold starts (new environments in the last 5 minutes)"),
            "cold-starts-new-environments-in-the-last-5-minutes"
        );
        assert_eq!(slug("  p95 / p99 — latency!  "), "p95-p99-latency");
        assert_eq!(slug("???"), "panel");
        assert!(slug(&"word ".repeat(40)).len() <= 60);
        assert!(!slug(&"word ".repeat(40)).ends_with('-'));
    }

    #[test]
    fn legends_fill_placeholders_or_fall_back_to_labels() {
        let l = labels(&[("method", "GET"), ("endpoint", "/health"), ("job", "x")]);
        assert_eq!(
            legend(Some("{{method}} {{ endpoint }}"), &l, "q"),
            "GET /health"
        );
        assert_eq!(legend(Some("p95 {{function}}"), &l, "q"), "p95");
        assert_eq!(legend(Some("broken {{method"), &l, "q"), "broken {{method");
        assert_eq!(
            legend(None, &l, "q"),
            r#"{endpoint="/health", job="x", method="GET"}"#
        );
        let named = labels(&[("__name__", "up"), ("job", "p")]);
        assert_eq!(legend(None, &named, "q"), r#"up{job="p"}"#);
        assert_eq!(legend(None, &BTreeMap::new(), "sum(x)"), "sum(x)");
    }

    #[test]
    fn values_get_readable_units() {
        assert_eq!(value(0.0372, Some("percentunit"), None), "3.72%");
        assert_eq!(value(0.0372, Some("percentunit"), Some(2)), "3.72%");
        assert_eq!(value(0.25, Some("s"), None), "250 ms");
        assert_eq!(value(0.0042, Some("s"), None), "4.2 ms");
        assert_eq!(value(95.0, Some("s"), None), "1.58 min");
        assert_eq!(value(0.0000042, Some("s"), None), "4.2 µs");
        assert_eq!(value(0.0, Some("s"), None), "0 s");
        assert_eq!(value(0.04055, Some("reqps"), Some(2)), "0.04 req/s");
        assert_eq!(value(1500.0, Some("reqps"), None), "1.5 K req/s");
        assert_eq!(value(12.0, Some("short"), Some(0)), "12");
        assert_eq!(value(12_345.0, None, None), "12.3 K");
        assert_eq!(value(3.0, Some("ops"), None), "3 ops/s");
        assert_eq!(value(2048.0, Some("bytes"), None), "2 KiB");
        assert_eq!(value(f64::NAN, Some("s"), None), "–");
    }

    #[test]
    fn axis_labels_share_one_scale_and_precision() {
        let f = AxisFormat::new(Some("s"), 0.0, 0.5, 5);
        assert_eq!(f.format(0.0), "0 ms");
        assert_eq!(f.format(0.1), "100 ms");
        let f = AxisFormat::new(Some("percentunit"), 0.0, 0.05, 5);
        assert_eq!(f.format(0.01), "1%");
        assert_eq!(f.format(0.02), "2%");
        let f = AxisFormat::new(Some("reqps"), 0.0, 0.05, 5);
        assert_eq!(f.format(0.01), "0.01 req/s");
        assert_eq!(f.format(-0.0), "0.00 req/s");
        let f = AxisFormat::new(None, 0.0, 1.0, 4);
        assert_eq!(f.format(0.5), "0.5");
    }

    #[test]
    fn thresholds_pick_the_highest_step_reached() {
        let steps = vec![
            Step {
                color: "green".into(),
                value: None,
            },
            Step {
                color: "yellow".into(),
                value: Some(0.5),
            },
            Step {
                color: "red".into(),
                value: Some(1.0),
            },
        ];
        assert_eq!(threshold_color(&steps, -3.0), Some("green"));
        assert_eq!(threshold_color(&steps, 0.5), Some("yellow"));
        assert_eq!(threshold_color(&steps, 7.0), Some("red"));
        assert_eq!(threshold_color(&[], 7.0), None);
    }

    #[test]
    fn colours_parse_names_and_hex() {
        assert_eq!(rgb("green"), Some((0x73, 0xbf, 0x69)));
        assert_eq!(rgb("#FF8000"), Some((0xff, 0x80, 0x00)));
        assert_eq!(rgb("transparent"), None);
        assert_eq!(rgb("#12"), None);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("15s"), Ok(15));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5m3").is_err());
    }
}
