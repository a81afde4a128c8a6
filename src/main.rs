//! The `symbreak` binary: parse arguments, run, print the error chain; exit 0 (ok), 1 (`diff`
//! found differences) or 2 (error).

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
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
