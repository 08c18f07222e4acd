//! Reading the log of a `cargo lambda watch`: every function instance and every `cargo run` that
//! starts one write to it, so a function's JSON line can follow a fragment of cargo's own output
//! on the same line (seen: `    Finished{"_aws":…}`, cargo's "Finished" written before the line
//! and the rest of its message after). Each function line is one write, so it stays whole.

use serde_json::Value;

/// The JSON objects of `text`, one a line, each read from its line's first `{`.
pub fn json_lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines()
        .filter_map(|line| line.find('{').map(|at| &line[at..]))
        .filter_map(|json| serde_json::from_str::<Value>(json.trim_end()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_behind_a_fragment_of_cargos_output_is_read_whole() {
        let log = "    Finished{\"_aws\":{},\"n\":1}\n`dev` profile\n{\"n\":2}\nnot json\n{\"n\":";
        let read: Vec<Value> = json_lines(log).collect();
        assert_eq!(
            read,
            [
                serde_json::json!({"_aws": {}, "n": 1}),
                serde_json::json!({"n": 2})
            ]
        );
    }
}
