//! Command line and the run: dashboards in, pictures out.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dashboard::{Dashboard, Window};
use crate::data;
use crate::fonts;
use crate::format::parse_duration;
use crate::layout::Layout;
use crate::prometheus::{Client, TimeRange};
use crate::render::{self, Context};

pub const USAGE: &str = "\
usage: stockroom-render-dashboards [options]

Draws every panel of the Grafana dashboards in DIR to PNG from Prometheus range queries.

options:
  --prometheus URL  Prometheus base URL (default: $PROMETHEUS_URL, else http://127.0.0.1:9090)
  --dir DIR         folder of dashboard *.json files (default: <workspace>/dashboards)
  --out DIR         where the pictures go (default: <workspace>/target/dashboards)
  --range DURATION  how far back the charts go (default: 30m)
  --step DURATION   query resolution (default: 15s)
  --font TTF        font file (default: /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf)
  -h, --help        this text";

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub prometheus: String,
    pub dir: PathBuf,
    pub out: PathBuf,
    pub range_secs: u64,
    pub step_secs: u64,
    pub font: PathBuf,
}

/// The workspace root, known at build time: the defaults work from any current directory.
fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Canonical so the paths printed read `/…/target/dashboards`, not `/…/tools/x/../..`.
    root.canonicalize().unwrap_or(root)
}

impl Args {
    /// `Ok(None)` for `--help`. `env_url` is `$PROMETHEUS_URL`; `--prometheus` wins over it.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env_url: Option<String>,
    ) -> Result<Option<Args>, String> {
        let mut parsed = Args {
            prometheus: env_url
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| "http://127.0.0.1:9090".to_string()),
            dir: workspace().join("dashboards"),
            out: workspace().join("target/dashboards"),
            range_secs: 30 * 60,
            step_secs: 15,
            font: PathBuf::from(DEFAULT_FONT),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            // Both `--flag value` and `--flag=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--prometheus" => parsed.prometheus = value()?,
                "--dir" => parsed.dir = PathBuf::from(value()?),
                "--out" => parsed.out = PathBuf::from(value()?),
                "--range" => parsed.range_secs = parse_duration(&value()?)?,
                "--step" => parsed.step_secs = parse_duration(&value()?)?,
                "--font" => parsed.font = PathBuf::from(value()?),
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        if parsed.step_secs > parsed.range_secs {
            return Err("--step must not be longer than --range".to_string());
        }
        // Prometheus refuses more than 11,000 points per series.
        if parsed.range_secs / parsed.step_secs > 11_000 {
            return Err("--range / --step gives more than 11000 points: raise --step".to_string());
        }
        Ok(Some(parsed))
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    fonts::load(&args.font)?;
    let files = dashboard_files(&args.dir)?;
    let client = Client::new(&args.prometheus);
    client.check()?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs_f64();
    let range = TimeRange::ending(now, args.range_secs, args.step_secs);
    let window = Window {
        range_secs: args.range_secs,
        step_secs: args.step_secs,
    };
    let layout = Layout::default();
    let cx = Context {
        range,
        source: client.base(),
    };
    for file in files {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?;
        let dashboard = Dashboard::parse(&stem, &text, window)
            .map_err(|e| format!("{}: {e}", file.display()))?;

        let mut all = Vec::new();
        for panel in &dashboard.panels {
            let mut results = Vec::new();
            for target in &panel.exprs {
                let series = client.query_range(&target.expr, range).map_err(|e| {
                    format!(
                        "{} / {}: query failed: {e}\n  query: {}",
                        dashboard.title, panel.title, target.expr
                    )
                })?;
                results.push(series);
            }
            all.push(data::name_series(panel, results));
        }
        let empty = all
            .iter()
            .filter(|s| s.iter().all(|s| s.points.is_empty()))
            .count();
        println!(
            "{} ({}): {} panels, {} without data",
            dashboard.title,
            file.display(),
            dashboard.panels.len(),
            empty
        );

        let folder = args.out.join(&stem);
        std::fs::create_dir_all(&folder)
            .map_err(|e| format!("creating {}: {e}", folder.display()))?;
        for (panel, series) in dashboard.panels.iter().zip(&all) {
            let path = folder.join(panel.file_name());
            render::panel_png(&path, panel, series, &layout, &cx)
                .map_err(|e| format!("drawing {}: {e}", path.display()))?;
            println!("  {}", path.display());
        }
        let path = args.out.join(format!("{stem}.png"));
        render::dashboard_png(&path, &dashboard, &all, &layout, &cx)
            .map_err(|e| format!("drawing {}: {e}", path.display()))?;
        println!("  {}", path.display());
    }
    Ok(())
}

/// The `*.json` files of `dir`, sorted.
fn dashboard_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("reading dashboards from {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.json dashboards in {}", dir.display()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: Option<&str>) -> Result<Option<Args>, String> {
        Args::parse(args.iter().map(|a| a.to_string()), env.map(String::from))
    }

    #[test]
    fn defaults_point_at_the_workspace_and_the_local_prometheus() {
        let a = parse(&[], None).unwrap().unwrap();
        assert_eq!(a.prometheus, "http://127.0.0.1:9090");
        assert!(
            a.dir.join("stockroom-overview.json").is_file(),
            "{}",
            a.dir.display()
        );
        assert!(a.out.ends_with("target/dashboards"));
        assert_eq!((a.range_secs, a.step_secs), (1800, 15));
    }

    #[test]
    fn flags_override_the_environment() {
        let a = parse(
            &["--range", "1h", "--step=30s", "--out", "/tmp/x"],
            Some("http://p:1"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.prometheus, "http://p:1");
        assert_eq!((a.range_secs, a.step_secs), (3600, 30));
        assert_eq!(a.out, PathBuf::from("/tmp/x"));
        let a = parse(&["--prometheus", "http://q:2"], Some("http://p:1"))
            .unwrap()
            .unwrap();
        assert_eq!(a.prometheus, "http://q:2");
        assert_eq!(parse(&["-h"], None), Ok(None));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse(&["--bogus"], None).unwrap_err().contains("--bogus"));
        assert!(
            parse(&["--range"], None)
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse(&["--step", "1h"], None)
                .unwrap_err()
                .contains("--step")
        );
        assert!(parse(&["--range", "30d", "--step", "1s"], None).is_err());
    }

    #[test]
    fn a_missing_dashboard_folder_is_reported() {
        assert!(
            dashboard_files(Path::new("/nonexistent"))
                .unwrap_err()
                .contains("/nonexistent")
        );
    }
}
