//! `stockroom-render-dashboards [--prometheus URL] [--dir DIR] [--out DIR] [--range 30m]
//! [--step 15s] [--font TTF]`: see the library's documentation and `--help`.

use std::process::ExitCode;

use stockroom_render_dashboards::app::{self, Args, USAGE};

fn main() -> ExitCode {
    let args = match Args::parse(
        std::env::args().skip(1),
        std::env::var("PROMETHEUS_URL").ok(),
    ) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match app::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
