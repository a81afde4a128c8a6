//! The `symbreak` binary: parse arguments, run, print the error chain, exit 0 (ok) or 2 (error).

use std::process::ExitCode;

fn main() -> ExitCode {
    match symbreak::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
