//! The `symbreak` binary: parse arguments, run, print the error chain; exit 0 (ok), 1 (`diff`
//! found differences) or 2 (error).

use std::process::ExitCode;

fn main() -> ExitCode {
    match symbreak::cli::main() {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
