//! The arm64 artifacts Lambda runs: every function's `bootstrap` that `sam build` (cargo lambda,
//! `--arm64`) left in `target/lambda/`, if stripped and current. Building them takes about
//! twenty minutes on this machine, so the benchmark reads what the last build made and says when.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Artifact {
    pub function: String,
    pub bytes: u64,
    /// Deflated (`gzip -9`), about what the deployment zip takes.
    pub zipped_bytes: u64,
    /// When it was built (UTC).
    pub built: String,
}

/// Whether `file` says `path` is a stripped aarch64 ELF (a debug cross-compile is skipped).
fn stripped_arm64(path: &Path) -> bool {
    Command::new("file")
        .arg(path)
        .output()
        .map(|out| {
            let text = String::from_utf8_lossy(&out.stdout);
            text.contains("aarch64") && text.contains(", stripped")
        })
        .unwrap_or(false)
}

fn deflated(path: &Path) -> u64 {
    Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .map_or(0, |out| out.stdout.len() as u64)
}

/// The workspace's functions (`functions/*`) with a stripped arm64 bootstrap in `lambda_dir`.
pub fn measure(repo: &Path, lambda_dir: &Path) -> Vec<Artifact> {
    let mut functions: Vec<String> = std::fs::read_dir(repo.join("functions"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    functions.sort();
    functions
        .into_iter()
        .filter_map(|function| {
            let path = lambda_dir.join(&function).join("bootstrap");
            let meta = std::fs::metadata(&path).ok()?;
            if !stripped_arm64(&path) {
                return None;
            }
            let built: chrono::DateTime<chrono::Utc> = meta.modified().ok()?.into();
            Some(Artifact {
                zipped_bytes: deflated(&path),
                bytes: meta.len(),
                built: built.format("%Y-%m-%d %H:%M UTC").to_string(),
                function,
            })
        })
        .collect()
}
