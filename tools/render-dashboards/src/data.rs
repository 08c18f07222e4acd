//! Prometheus answers → named series, latest values and table rows.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::dashboard::{Panel, Step};
use crate::format;

/// One series of a range query: its labels and `(unix seconds, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

/// A series as a panel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedSeries {
    /// The legend: `legendFormat` filled in, or the labels.
    pub name: String,
    /// Index into the panel's `exprs`.
    pub target: usize,
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

impl NamedSeries {
    /// Grafana's `lastNotNull`: the most recent finite value.
    pub fn last(&self) -> Option<f64> {
        self.points
            .iter()
            .rev()
            .map(|&(_, v)| v)
            .find(|v| v.is_finite())
    }
}

/// The series of one query run, in order; NaN and ±Inf points are dropped (gaps).
pub fn parse_range_response(body: &str) -> Result<Vec<Series>, String> {
    #[derive(Deserialize)]
    struct Response {
        status: String,
        #[serde(default)]
        error: Option<String>,
        #[serde(default, rename = "errorType")]
        error_type: Option<String>,
        data: Option<Data>,
    }
    #[derive(Deserialize)]
    struct Data {
        #[serde(rename = "resultType")]
        result_type: String,
        result: serde_json::Value,
    }
    #[derive(Deserialize)]
    struct Matrix {
        #[serde(default)]
        metric: BTreeMap<String, String>,
        #[serde(default)]
        values: Vec<(f64, String)>,
    }

    let response: Response = serde_json::from_str(body).map_err(|e| {
        let start: String = body.chars().take(200).collect();
        format!("not a Prometheus API answer ({e}): {start}")
    })?;
    if response.status != "success" {
        return Err(format!(
            "Prometheus says {}: {}",
            response.error_type.as_deref().unwrap_or(&response.status),
            response.error.as_deref().unwrap_or("(no message)")
        ));
    }
    let data = response
        .data
        .ok_or("Prometheus answered success without data")?;
    if data.result_type != "matrix" {
        return Err(format!(
            "expected a matrix from a range query, got {}",
            data.result_type
        ));
    }
    let matrix: Vec<Matrix> = serde_json::from_value(data.result)
        .map_err(|e| format!("unexpected range query result: {e}"))?;
    Ok(matrix
        .into_iter()
        .map(|m| Series {
            labels: m.metric,
            points: m
                .values
                .into_iter()
                .filter_map(|(t, v)| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .map(|v| (t, v))
                })
                .collect(),
        })
        .collect())
}

/// Names each query's series with its target's legend; `results[i]` answers `panel.exprs[i]`.
pub fn name_series(panel: &Panel, results: Vec<Vec<Series>>) -> Vec<NamedSeries> {
    let mut named = Vec::new();
    for (target, series) in results.into_iter().enumerate() {
        let Some(t) = panel.exprs.get(target) else {
            continue;
        };
        for s in series {
            named.push(NamedSeries {
                name: format::legend(t.legend.as_deref(), &s.labels, &t.expr),
                target,
                labels: s.labels,
                points: s.points,
            });
        }
    }
    named
}

/// A table panel's content: Grafana's `merge` of all queries by label set, then `organize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub numeric: bool,
    pub unit: Option<String>,
    pub decimals: Option<usize>,
    pub thresholds: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

pub fn table(panel: &Panel, series: &[NamedSeries]) -> Table {
    let mut label_keys: Vec<&str> = series
        .iter()
        .flat_map(|s| s.labels.keys())
        .map(String::as_str)
        .filter(|k| *k != "__name__")
        .collect();
    label_keys.sort_unstable();
    label_keys.dedup();

    // Rows keyed by their label values; one value per query.
    let mut rows: Vec<(Vec<String>, Vec<Option<f64>>)> = Vec::new();
    for s in series {
        let key: Vec<String> = label_keys
            .iter()
            .map(|k| s.labels.get(*k).cloned().unwrap_or_default())
            .collect();
        let index = match rows.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                rows.push((key, vec![None; panel.exprs.len()]));
                rows.len() - 1
            }
        };
        if let Some(slot) = rows[index].1.get_mut(s.target) {
            *slot = s.last();
        }
    }
    rows.sort_by(|a, b| compare_keys(&a.0, &b.0));

    // Grafana's field names: labels, then `Value` (one query) or `Value #A`, `Value #B`, ….
    let value_fields: Vec<String> = if panel.exprs.len() == 1 {
        vec!["Value".to_string()]
    } else {
        panel
            .exprs
            .iter()
            .map(|t| format!("Value #{}", t.ref_id))
            .collect()
    };
    let options = &panel.table;
    let shown = |field: &str| !options.excluded.iter().any(|e| e == field);
    let column = |field: &str, numeric: bool| {
        let name = options
            .renames
            .get(field)
            .cloned()
            .unwrap_or_else(|| field.to_string());
        let o = options
            .overrides
            .get(&name)
            .or_else(|| options.overrides.get(field));
        Column {
            numeric,
            unit: o
                .and_then(|o| o.unit.clone())
                .or_else(|| panel.unit.clone()),
            decimals: o.and_then(|o| o.decimals).or(panel.decimals),
            thresholds: o
                .and_then(|o| o.thresholds.clone())
                .unwrap_or_else(|| panel.thresholds.clone()),
            name,
        }
    };

    let mut columns = Vec::new();
    let label_columns: Vec<usize> = (0..label_keys.len())
        .filter(|&i| shown(label_keys[i]))
        .collect();
    let value_columns: Vec<usize> = (0..value_fields.len())
        .filter(|&i| shown(&value_fields[i]))
        .collect();
    columns.extend(label_columns.iter().map(|&i| column(label_keys[i], false)));
    columns.extend(
        value_columns
            .iter()
            .map(|&i| column(&value_fields[i], true)),
    );
    let rows = rows
        .into_iter()
        .map(|(key, values)| {
            let labels = label_columns.iter().map(|&i| Cell::Text(key[i].clone()));
            let values = value_columns
                .iter()
                .map(|&i| values[i].map_or(Cell::Empty, Cell::Number));
            labels.chain(values).collect()
        })
        .collect();
    Table { columns, rows }
}

/// Label values in order, numbers by value (`#9` before `#10`).
fn compare_keys(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::{Dashboard, Window};

    const WINDOW: Window = Window {
        range_secs: 1800,
        step_secs: 15,
    };

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn range_answers_parse_and_drop_non_finite_points() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"status":"201"},"values":[[100,"1"],[115,"NaN"],[130,"+Inf"],[145,"2.5"]]},
            {"metric":{},"values":[]}]}}"#;
        let series = parse_range_response(body).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].labels["status"], "201");
        assert_eq!(series[0].points, vec![(100.0, 1.0), (145.0, 2.5)]);
        assert!(series[1].points.is_empty());
    }

    #[test]
    fn errors_carry_prometheus_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        let err = parse_range_response(body).unwrap_err();
        assert!(
            err.contains("bad_data") && err.contains("parse error"),
            "{err}"
        );
        assert!(
            parse_range_response("<html>")
                .unwrap_err()
                .contains("<html>")
        );
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse_range_response(vector).unwrap_err().contains("vector"));
    }

    fn routes_now() -> Panel {
        let path = format!(
            "{}/../../dashboards/stockroom-overview.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let d = Dashboard::parse("o", &std::fs::read_to_string(path).unwrap(), WINDOW).unwrap();
        d.panels
            .into_iter()
            .find(|p| p.title == "Routes now")
            .unwrap()
    }

    #[test]
    fn tables_merge_queries_by_labels_and_apply_renames_and_overrides() {
        let panel = routes_now();
        let route = |endpoint: &str| {
            labels(&[("endpoint", endpoint), ("function", "f"), ("method", "GET")])
        };
        let series = |target, endpoint: &str, v: f64| NamedSeries {
            name: String::new(),
            target,
            labels: route(endpoint),
            points: vec![(1.0, f64::NAN), (2.0, v)],
        };
        let named = vec![
            series(0, "/b", 2.0),
            series(0, "/a", 1.0),
            series(1, "/a", 0.02),
            series(2, "/a", 0.3),
            series(3, "/b", 0.9),
        ];
        let t = table(&panel, &named);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "endpoint",
                "function",
                "method",
                "req/s",
                "5xx share",
                "p95",
                "p99"
            ]
        );
        assert_eq!(t.columns[3].unit.as_deref(), Some("reqps"));
        assert_eq!(t.columns[4].unit.as_deref(), Some("percentunit"));
        assert_eq!(t.columns[4].thresholds.len(), 3);
        assert!(t.columns[3].numeric && !t.columns[0].numeric);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][0], Cell::Text("/a".into()));
        assert_eq!(t.rows[0][3], Cell::Number(1.0));
        assert_eq!(t.rows[0][4], Cell::Number(0.02));
        assert_eq!(t.rows[0][6], Cell::Empty);
        assert_eq!(t.rows[1][6], Cell::Number(0.9));
    }

    #[test]
    fn single_query_tables_rename_value_and_sort_numbers_by_value() {
        let path = format!(
            "{}/../../dashboards/stockroom-business.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let d = Dashboard::parse("b", &std::fs::read_to_string(path).unwrap(), WINDOW).unwrap();
        let panel = d
            .panels
            .iter()
            .find(|p| {
                p.title == "Low-stock products" && p.kind == crate::dashboard::PanelKind::Table
            })
            .unwrap();
        let product = |id: &str, v: f64| NamedSeries {
            name: String::new(),
            target: 0,
            labels: labels(&[("product_id", id), ("product_name", "x")]),
            points: vec![(1.0, v)],
        };
        let t = table(panel, &[product("10", 3.0), product("9", 4.0)]);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "stock"]);
        assert_eq!(t.rows[0][0], Cell::Text("9".into()));
        assert_eq!(t.columns[2].thresholds[0].color, "red");
    }

    #[test]
    fn series_get_their_target_legend() {
        let panel = routes_now();
        let mut panel = panel;
        panel.exprs[0].legend = Some("{{method}} {{endpoint}}".into());
        let s = Series {
            labels: labels(&[("method", "GET"), ("endpoint", "/health")]),
            points: vec![],
        };
        let named = name_series(&panel, vec![vec![s.clone()], vec![s]]);
        assert_eq!(named[0].name, "GET /health");
        assert_eq!(named[1].name, r#"{endpoint="/health", method="GET"}"#);
        assert_eq!(named[1].target, 1);
        assert_eq!(named[0].last(), None);
    }
}
