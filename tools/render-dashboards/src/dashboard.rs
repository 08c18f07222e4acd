//! Grafana dashboard JSON → [`Dashboard`] with [`Panel`]s whose queries are ready to run.
//!
//! Only the fields Stockroom's dashboards use are read; everything else is ignored, so a newer
//! Grafana schema still parses.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A dashboard read from one file, its queries substituted.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// File name without `.json`: names the output folder and the combined picture.
    pub file_stem: String,
    pub title: String,
    pub panels: Vec<Panel>,
    /// Row headers (Grafana `row` panels): drawn as section titles in the combined picture.
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub title: String,
    pub grid: GridPos,
}

/// One drawable panel.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title of the dashboard the panel belongs to.
    pub dashboard: String,
    /// 1-based position among the dashboard's drawable panels: the `nn` of the file name.
    pub index: usize,
    pub title: String,
    pub kind: PanelKind,
    pub exprs: Vec<Target>,
    pub unit: Option<String>,
    pub decimals: Option<usize>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub thresholds: Vec<Step>,
    pub grid: GridPos,
    /// Stat panels: `background` fills the card with the threshold colour, else the number is.
    pub color_background: bool,
    pub table: TableOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PanelKind {
    Timeseries,
    Stat,
    BarGauge,
    Table,
    /// Any other type (text, gauge, …): drawn as a card that says so.
    Other(String),
}

/// One query of a panel, variables already substituted.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub expr: String,
    /// Grafana's `legendFormat`; `None` for empty or `__auto`.
    pub legend: Option<String>,
    /// `A`, `B`, …: tables name merged value columns `Value #A`, `Value #B`.
    pub ref_id: String,
}

/// One threshold step: `value: None` is the base step (Grafana's `null`, minus infinity).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Step {
    pub color: String,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub struct GridPos {
    #[serde(default)]
    pub x: u32,
    #[serde(default)]
    pub y: u32,
    #[serde(default = "default_w")]
    pub w: u32,
    #[serde(default = "default_h")]
    pub h: u32,
}

fn default_w() -> u32 {
    12
}
fn default_h() -> u32 {
    8
}

/// What a table panel's `organize` transformation and by-name overrides say about its columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOptions {
    /// Field name (`product_id`, `Value`, `Value #A`) → column header.
    pub renames: BTreeMap<String, String>,
    /// Field names left out (`Time`).
    pub excluded: Vec<String>,
    /// Column header (after renaming, as Grafana matches) → its own unit and thresholds.
    pub overrides: BTreeMap<String, FieldOverride>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldOverride {
    pub unit: Option<String>,
    pub decimals: Option<usize>,
    pub thresholds: Option<Vec<Step>>,
}

/// The query window: Grafana's built-in interval variables depend on it.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub range_secs: u64,
    pub step_secs: u64,
}

impl Dashboard {
    /// Parses a dashboard file's text and substitutes template and built-in variables.
    pub fn parse(file_stem: &str, text: &str, window: Window) -> Result<Dashboard, String> {
        let raw: RawDashboard =
            serde_json::from_str(text).map_err(|e| format!("not a Grafana dashboard: {e}"))?;
        let vars = variables(&raw.templating.list, window);
        let mut flat = Vec::new();
        flatten(raw.panels, &mut flat);
        let mut panels = Vec::new();
        let mut rows = Vec::new();
        for p in flat {
            if p.kind == "row" {
                rows.push(Row {
                    title: substitute(&p.title, &vars),
                    grid: p.grid_pos,
                });
                continue;
            }
            let index = panels.len() + 1;
            panels.push(panel(p, &raw.title, index, &vars));
        }
        Ok(Dashboard {
            file_stem: file_stem.to_string(),
            title: raw.title,
            panels,
            rows,
        })
    }

    /// Grid rows the dashboard spans (the bottom edge of its lowest panel or row).
    pub fn grid_height(&self) -> u32 {
        let panels = self.panels.iter().map(|p| p.grid.y + p.grid.h);
        let rows = self.rows.iter().map(|r| r.grid.y + r.grid.h.max(1));
        panels.chain(rows).max().unwrap_or(0)
    }
}

impl Panel {
    /// `<nn>-<slug-of-title>.png`.
    pub fn file_name(&self) -> String {
        format!("{:02}-{}.png", self.index, crate::format::slug(&self.title))
    }
}

/// A collapsed row keeps its panels inside it; an expanded one has them after it.
fn flatten(panels: Vec<RawPanel>, out: &mut Vec<RawPanel>) {
    for mut p in panels {
        let inner = std::mem::take(&mut p.panels);
        out.push(p);
        flatten(inner, out);
    }
}

fn panel(p: RawPanel, dashboard: &str, index: usize, vars: &BTreeMap<String, String>) -> Panel {
    let kind = match p.kind.as_str() {
        "timeseries" | "graph" => PanelKind::Timeseries,
        "stat" | "singlestat" => PanelKind::Stat,
        "bargauge" | "gauge" => PanelKind::BarGauge,
        "table" => PanelKind::Table,
        other => PanelKind::Other(other.to_string()),
    };
    let exprs = p
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.hide)
        .filter_map(|(i, t)| {
            let expr = t.expr.as_deref()?.trim();
            if expr.is_empty() {
                return None;
            }
            let legend = t
                .legend_format
                .as_deref()
                .filter(|l| !l.is_empty() && *l != "__auto")
                .map(|l| substitute(l, vars));
            // Grafana names refIds A, B, … in order when they are missing.
            let ref_id = t.ref_id.clone().unwrap_or_else(|| {
                char::from_u32('A' as u32 + i as u32)
                    .map(String::from)
                    .unwrap_or_default()
            });
            Some(Target {
                expr: substitute(expr, vars),
                legend,
                ref_id,
            })
        })
        .collect();
    let defaults = p.field_config.defaults;
    let color_background = p
        .options
        .get("colorMode")
        .and_then(Value::as_str)
        .is_some_and(|m| m.starts_with("background"));
    Panel {
        dashboard: dashboard.to_string(),
        index,
        title: substitute(&p.title, vars),
        kind,
        exprs,
        unit: defaults.unit.filter(|u| !u.is_empty()),
        decimals: defaults.decimals,
        min: defaults.min,
        max: defaults.max,
        thresholds: defaults.thresholds.map(|t| t.steps).unwrap_or_default(),
        grid: p.grid_pos,
        color_background,
        table: table_options(&p.transformations, &p.field_config.overrides),
    }
}

fn table_options(transformations: &[RawTransformation], overrides: &[RawOverride]) -> TableOptions {
    let mut table = TableOptions::default();
    for t in transformations.iter().filter(|t| t.id == "organize") {
        if let Some(map) = t.options.get("renameByName").and_then(Value::as_object) {
            for (from, to) in map {
                if let Some(to) = to.as_str().filter(|s| !s.is_empty()) {
                    table.renames.insert(from.clone(), to.to_string());
                }
            }
        }
        if let Some(map) = t.options.get("excludeByName").and_then(Value::as_object) {
            let hidden = map.iter().filter(|(_, v)| v.as_bool() == Some(true));
            table.excluded.extend(hidden.map(|(k, _)| k.clone()));
        }
    }
    for o in overrides.iter().filter(|o| o.matcher.id == "byName") {
        let Some(name) = o.matcher.options.as_str() else {
            continue;
        };
        let field = table.overrides.entry(name.to_string()).or_default();
        for prop in &o.properties {
            match prop.id.as_str() {
                "unit" => field.unit = prop.value.as_str().map(String::from),
                "decimals" => field.decimals = prop.value.as_u64().map(|d| d as usize),
                "thresholds" => {
                    field.thresholds = serde_json::from_value::<RawThresholds>(prop.value.clone())
                        .ok()
                        .map(|t| t.steps)
                }
                _ => {}
            }
        }
    }
    table
}

/// Values for the dashboard's template variables and Grafana's built-ins.
fn variables(list: &[RawVariable], window: Window) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for v in list {
        let value = match v.kind.as_str() {
            // Only used as a datasource uid, never inside PromQL; keep whatever it says.
            "datasource" => current_value(v).unwrap_or_else(|| "prometheus".to_string()),
            _ => match current_value(v) {
                // "All" (or nothing chosen, as in a provisioned file): match every value.
                None => v.all_value.clone().unwrap_or_else(|| ".*".to_string()),
                Some(value) if value == "$__all" => {
                    v.all_value.clone().unwrap_or_else(|| ".*".to_string())
                }
                Some(value) => value,
            },
        };
        vars.insert(v.name.clone(), value);
    }
    let step = window.step_secs.max(1);
    // Grafana's $__rate_interval: at least four scrape intervals, here four steps, and 1 m.
    let rate = (4 * step).max(60);
    vars.insert("__interval".into(), format!("{step}s"));
    vars.insert("__interval_ms".into(), (step * 1000).to_string());
    vars.insert("__rate_interval".into(), format!("{rate}s"));
    vars.insert("__range".into(), format!("{}s", window.range_secs));
    vars.insert("__range_s".into(), window.range_secs.to_string());
    vars.insert("__range_ms".into(), (window.range_secs * 1000).to_string());
    vars
}

/// The current value of a variable; a multi-value choice becomes a regex alternation.
fn current_value(v: &RawVariable) -> Option<String> {
    let value = v.current.as_ref()?.get("value")?;
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Array(items) => {
            let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            match items.as_slice() {
                [] => None,
                [one] => Some(one.to_string()),
                many if many.contains(&"$__all") => Some("$__all".to_string()),
                many => Some(many.join("|")),
            }
        }
        _ => None,
    }
}

/// Replaces `$name`, `${name}`, `${name:format}` and `[[name]]` with the variable's value.
/// Unknown names stay as written, so a `$` in a regex (`foo$`) survives.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(['$', '[']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let (name, len) = if let Some(inner) = tail.strip_prefix("${") {
            match inner.find('}') {
                Some(end) => {
                    let name = inner[..end].split(':').next().unwrap_or_default();
                    (name, end + 3)
                }
                None => ("", 0),
            }
        } else if let Some(inner) = tail.strip_prefix("[[") {
            match inner.find("]]") {
                Some(end) => (inner[..end].split(':').next().unwrap_or_default(), end + 4),
                None => ("", 0),
            }
        } else if let Some(inner) = tail.strip_prefix('$') {
            let end = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            (&inner[..end], end + 1)
        } else {
            ("", 0)
        };
        match vars.get(name) {
            Some(value) if len > 0 => {
                out.push_str(value);
                rest = &tail[len..];
            }
            _ => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Deserialize)]
struct RawDashboard {
    #[serde(default)]
    title: String,
    #[serde(default)]
    panels: Vec<RawPanel>,
    #[serde(default)]
    templating: RawTemplating,
}

#[derive(Deserialize, Default)]
struct RawTemplating {
    #[serde(default)]
    list: Vec<RawVariable>,
}

#[derive(Deserialize)]
struct RawVariable {
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(rename = "allValue")]
    all_value: Option<String>,
    current: Option<Value>,
}

#[derive(Deserialize)]
struct RawPanel {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    title: String,
    #[serde(rename = "gridPos", default)]
    grid_pos: GridPos,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(rename = "fieldConfig", default)]
    field_config: RawFieldConfig,
    #[serde(default)]
    options: Value,
    #[serde(default)]
    transformations: Vec<RawTransformation>,
    #[serde(default)]
    panels: Vec<RawPanel>,
}

#[derive(Deserialize)]
struct RawTarget {
    expr: Option<String>,
    #[serde(rename = "legendFormat")]
    legend_format: Option<String>,
    #[serde(rename = "refId")]
    ref_id: Option<String>,
    #[serde(default)]
    hide: bool,
}

#[derive(Deserialize, Default)]
struct RawFieldConfig {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    overrides: Vec<RawOverride>,
}

#[derive(Deserialize, Default)]
struct RawDefaults {
    unit: Option<String>,
    decimals: Option<usize>,
    min: Option<f64>,
    max: Option<f64>,
    thresholds: Option<RawThresholds>,
}

#[derive(Deserialize)]
struct RawThresholds {
    #[serde(default)]
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct RawOverride {
    matcher: RawMatcher,
    #[serde(default)]
    properties: Vec<RawProperty>,
}

#[derive(Deserialize)]
struct RawMatcher {
    #[serde(default)]
    id: String,
    #[serde(default)]
    options: Value,
}

#[derive(Deserialize)]
struct RawProperty {
    id: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct RawTransformation {
    #[serde(default)]
    id: String,
    #[serde(default)]
    options: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Window = Window {
        range_secs: 1800,
        step_secs: 15,
    };

    fn real(stem: &str) -> Dashboard {
        let path = format!(
            "{}/../../dashboards/{stem}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Dashboard::parse(stem, &text, WINDOW).unwrap()
    }

    #[test]
    fn the_real_dashboards_parse_with_every_variable_substituted() {
        for stem in [
            "stockroom-overview",
            "stockroom-business",
            "stockroom-internals",
        ] {
            let d = real(stem);
            assert!(d.title.starts_with("Stockroom"), "{stem}: {}", d.title);
            assert!(d.panels.len() >= 5, "{stem}: {} panels", d.panels.len());
            for p in &d.panels {
                assert!(!p.exprs.is_empty(), "{stem} / {}: no expr", p.title);
                assert!(
                    !matches!(p.kind, PanelKind::Other(_)),
                    "{stem} / {}: {:?}",
                    p.title,
                    p.kind
                );
                for t in &p.exprs {
                    assert!(!t.expr.contains('$'), "{stem} / {}: {}", p.title, t.expr);
                    let legend = t.legend.as_deref().unwrap_or_default();
                    assert!(!legend.contains('$'), "{stem} / {}: {legend}", p.title);
                }
            }
            let mut names: Vec<String> = d.panels.iter().map(Panel::file_name).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), d.panels.len(), "{stem}: file names collide");
        }
    }

    #[test]
    fn the_overview_reads_kinds_units_thresholds_and_the_function_variable() {
        let d = real("stockroom-overview");
        let stat = &d.panels[1];
        assert_eq!(stat.title, "5xx share");
        assert_eq!(stat.kind, PanelKind::Stat);
        assert_eq!(stat.unit.as_deref(), Some("percentunit"));
        assert_eq!(
            stat.grid,
            GridPos {
                x: 6,
                y: 1,
                w: 6,
                h: 4
            }
        );
        assert!(stat.color_background);
        assert_eq!(stat.thresholds.len(), 3);
        assert_eq!(stat.thresholds[0].value, None);
        assert_eq!(stat.thresholds[2].value, Some(0.01));
        assert!(stat.exprs[0].expr.contains(r#"function=~".*""#));
        assert_eq!(stat.exprs[0].legend, None);
        assert_eq!(stat.file_name(), "02-5xx-share.png");

        let routes = d.panels.iter().find(|p| p.title == "Routes now").unwrap();
        assert_eq!(routes.kind, PanelKind::Table);
        assert_eq!(routes.exprs.len(), 4);
        assert_eq!(routes.table.renames["Value #B"], "5xx share");
        assert_eq!(routes.table.excluded, vec!["Time".to_string()]);
        let share = &routes.table.overrides["5xx share"];
        assert_eq!(share.unit.as_deref(), Some("percentunit"));
        assert_eq!(share.thresholds.as_ref().map(Vec::len), Some(3));

        let by_route = d
            .panels
            .iter()
            .find(|p| p.title == "Requests per second by route")
            .unwrap();
        assert_eq!(by_route.kind, PanelKind::Timeseries);
        assert_eq!(
            by_route.exprs[0].legend.as_deref(),
            Some("{{method}} {{endpoint}}")
        );
        assert!(d.rows.iter().any(|r| r.title.starts_with("Latency")));
        assert_eq!(d.grid_height(), 48);
    }

    #[test]
    fn substitution_knows_every_grafana_syntax_and_leaves_unknown_dollars() {
        let vars = variables(&[], WINDOW);
        let mut vars = vars;
        vars.insert("function".into(), ".*".into());
        assert_eq!(
            substitute(r#"x{f=~"$function"}[$__rate_interval]"#, &vars),
            r#"x{f=~".*"}[60s]"#
        );
        assert_eq!(substitute("${function:regex}|[[function]]", &vars), ".*|.*");
        assert_eq!(
            substitute(r#"x{a=~"foo$"} $nope [1m]"#, &vars),
            r#"x{a=~"foo$"} $nope [1m]"#
        );
        assert_eq!(substitute("${unterminated", &vars), "${unterminated");
    }

    #[test]
    fn a_chosen_value_wins_over_all_and_multi_values_become_an_alternation() {
        let var = |current: Value| RawVariable {
            name: "f".into(),
            kind: "query".into(),
            all_value: None,
            current: Some(current),
        };
        let vars = variables(&[var(serde_json::json!({"value": ["a", "b"]}))], WINDOW);
        assert_eq!(vars["f"], "a|b");
        let vars = variables(&[var(serde_json::json!({"value": "$__all"}))], WINDOW);
        assert_eq!(vars["f"], ".*");
        let vars = variables(&[var(serde_json::json!({"value": "health"}))], WINDOW);
        assert_eq!(vars["f"], "health");
    }

    #[test]
    fn collapsed_rows_give_up_their_panels() {
        let text = r#"{"title": "T", "panels": [
            {"type": "row", "title": "R", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1}, "collapsed": true,
             "panels": [{"type": "stat", "title": "S", "gridPos": {"x": 0, "y": 1, "w": 6, "h": 4},
                         "targets": [{"expr": "up", "legendFormat": "__auto"}]}]},
            {"type": "text", "title": "Notes", "gridPos": {"x": 6, "y": 1, "w": 6, "h": 4}}
        ]}"#;
        let d = Dashboard::parse("t", text, WINDOW).unwrap();
        assert_eq!(d.rows.len(), 1);
        assert_eq!(d.panels.len(), 2);
        assert_eq!(d.panels[0].exprs[0].ref_id, "A");
        assert_eq!(d.panels[1].kind, PanelKind::Other("text".into()));
        assert_eq!(d.panels[1].file_name(), "02-notes.png");
        assert!(Dashboard::parse("t", "42", WINDOW).is_err());
        assert!(Dashboard::parse("t", "{not json", WINDOW).is_err());
    }
}
