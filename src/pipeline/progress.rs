//! Progress bars and the run log. A stage reports progress through [`Progress`]; a bar appears
//! (indicatif, on stderr, only when it is a terminal and output is not quiet) once the stage has
//! run for more than a second, so quick stages never flicker. [`RunLog`] writes time-stamped lines
//! to the run folder's `log.txt` and, unless quiet, to stdout.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Progress of one running stage instance.
pub struct Progress {
    label: String,
    multi: Option<MultiProgress>,
    bar: Mutex<Option<ProgressBar>>,
    started: Instant,
    length: AtomicU64,
}

impl Progress {
    /// A reporter for stage `label`; `multi = None` draws nothing.
    pub fn new(label: String, multi: Option<MultiProgress>) -> Self {
        Self {
            label,
            multi,
            bar: Mutex::new(None),
            started: Instant::now(),
            length: AtomicU64::new(0),
        }
    }

    /// A reporter that never draws (tests, quiet runs).
    pub fn hidden() -> Self {
        Self::new(String::new(), None)
    }

    /// Sets the total amount of work.
    pub fn set_length(&self, length: u64) {
        self.length.store(length, Ordering::Relaxed);
        if let Ok(guard) = self.bar.lock()
            && let Some(bar) = guard.as_ref()
        {
            bar.set_length(length);
        }
    }

    /// Reports `position` units of work done.
    pub fn set_position(&self, position: u64) {
        let Some(multi) = &self.multi else { return };
        let Ok(mut guard) = self.bar.lock() else {
            return;
        };
        if guard.is_none() {
            if self.started.elapsed() < Duration::from_secs(1) {
                return;
            }
            let bar = multi.add(ProgressBar::new(self.length.load(Ordering::Relaxed)));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>32} [{bar:30}] {pos}/{len} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(self.label.clone());
            *guard = Some(bar);
        }
        if let Some(bar) = guard.as_ref() {
            bar.set_position(position);
        }
    }

    /// Clears the bar, if one was drawn.
    pub fn finish(&self) {
        if let Ok(guard) = self.bar.lock()
            && let Some(bar) = guard.as_ref()
        {
            bar.finish_and_clear();
        }
    }
}

/// Time-stamped log of one run.
pub struct RunLog {
    file: Option<Mutex<std::fs::File>>,
    echo: bool,
    multi: Option<MultiProgress>,
}

impl RunLog {
    pub fn new(file: Option<std::fs::File>, echo: bool, multi: Option<MultiProgress>) -> Self {
        Self {
            file: file.map(Mutex::new),
            echo,
            multi,
        }
    }

    /// Writes one line to the log file and (unless quiet) to stdout.
    pub fn line(&self, message: &str) {
        let stamp = chrono::Utc::now().format("%H:%M:%S");
        if let Some(file) = &self.file
            && let Ok(mut f) = file.lock()
        {
            let _ = writeln!(f, "[{stamp}] {message}");
        }
        if self.echo {
            match &self.multi {
                Some(m) => {
                    let _ = m.println(message);
                }
                // A closed stdout must not stop the run: the log file keeps the line.
                None => {
                    let _ = writeln!(std::io::stdout(), "{message}");
                }
            }
        }
    }
}
