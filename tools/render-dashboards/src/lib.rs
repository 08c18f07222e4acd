//! `stockroom-render-dashboards`: Stockroom's Grafana dashboards without Grafana.
//!
//! Reads every `*.json` dashboard in a folder, runs each panel's PromQL as a Prometheus range
//! query, and draws each panel to a PNG (`<out>/<dashboard>/<nn>-<title>.png`) plus one picture
//! of the whole dashboard laid out on Grafana's grid (`<out>/<dashboard>.png`). It understands
//! what `dashboards/*.json` use: `timeseries`, `stat`, `bargauge` and `table` panels, legend
//! formats, units, thresholds, template variables and table renames.
//!
//! Run it against the local stack with `cargo run -p stockroom-render-dashboards` (see `--help`
//! for the Prometheus URL, folders, time range and font). It needs a TTF font at run time,
//! DejaVu Sans by default (`apt-get install fonts-dejavu-core`), and no Grafana.
//!
//! Parsing and arithmetic live in plain modules with unit tests; [`render`] draws with
//! plotters, [`prometheus`] talks HTTP, [`app`] ties them together for `main.rs`.

pub mod app;
pub mod dashboard;
pub mod data;
pub mod fonts;
pub mod format;
pub mod layout;
pub mod prometheus;
pub mod render;
