//! The `symbreak` binary: parse arguments, run, print the error chain (as a JSON document on
//! stdout under `--json`); exit 0 (ok), 1 (`diff` found differences, `check` found claims that
//! moved) or 2 (error).

use std::process::ExitCode;

fn main() -> ExitCode {
    match symbreak::cli::main() {
        Ok(code) => ExitCode::from(code),
        // The reader of stdout went away (`symbreak status | head`): nothing is lost.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) if symbreak::cli::wants_json() => {
            let causes: Vec<String> = err.chain().map(ToString::to_string).collect();
            let document = serde_json::json!({ "error": format!("{err:#}"), "causes": causes });
            println!("{document:#}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
