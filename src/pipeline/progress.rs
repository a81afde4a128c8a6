//! Progress bars and the run log. A stage reports progress through [`Progress`]; a bar appears
//! (indicatif, on stderr, only when it is a terminal and output is not quiet) once the stage has
//! run for more than a second, so quick stages never flicker, and a stage that runs for minutes
//! leaves a line in the log every minute (how far, how fast, how long still), so that a run
//! without a terminal — CI, a batch job, `nohup` — says where it is. [`RunLog`] writes
//! time-stamped lines to the run folder's `log.txt` and, unless quiet, to stdout.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// How often a long stage writes its progress to the run log.
const NOTE_EVERY: Duration = Duration::from_secs(60);

/// Progress of one running stage instance.
pub struct Progress {
    label: String,
    multi: Option<MultiProgress>,
    bar: Mutex<Option<ProgressBar>>,
    started: Instant,
    length: AtomicU64,
    log: Option<RunLog>,
    last_note: Mutex<Instant>,
    /// What the stage last said about its state (seed, loss, ψ), shown after the counts.
    detail: Mutex<String>,
}

impl Progress {
    /// A reporter for stage `label`; `multi = None` draws nothing; with a `log`, a long stage
    /// writes a progress line to it every minute.
    pub fn new(label: String, multi: Option<MultiProgress>, log: Option<RunLog>) -> Self {
        let started = Instant::now();
        Self {
            label,
            multi,
            bar: Mutex::new(None),
            started,
            length: AtomicU64::new(0),
            log,
            last_note: Mutex::new(started),
            detail: Mutex::new(String::new()),
        }
    }

    /// A reporter that never draws (tests, quiet runs).
    pub fn hidden() -> Self {
        Self::new(String::new(), None, None)
    }

    /// The log line for `position` of the length, `elapsed` into the stage, with the stage's
    /// last detail.
    fn note_line(&self, position: u64, elapsed: Duration) -> String {
        let length = self.length.load(Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let detail = self
            .detail
            .lock()
            .map(|d| {
                if d.is_empty() {
                    String::new()
                } else {
                    format!("; {d}")
                }
            })
            .unwrap_or_default();
        if length == 0 || position == 0 || position > length {
            return format!(
                "{}: {position} done after {}{detail}",
                self.label,
                clock(seconds)
            );
        }
        let fraction = position as f64 / length as f64;
        let remaining = seconds * (1.0 - fraction) / fraction;
        format!(
            "{}: {position}/{length} ({:.0} %) after {}, about {} left{detail}",
            self.label,
            100.0 * fraction,
            clock(seconds),
            clock(remaining)
        )
    }

    /// Says where the stage is beyond the counts (e.g. `goldstone seed 2/3: loss 6.1e7,
    /// ψ 2.3e3`): shown beside the bar and in the minute's log line.
    pub fn set_detail(&self, detail: String) {
        if let Ok(guard) = self.bar.lock()
            && let Some(bar) = guard.as_ref()
        {
            bar.set_message(detail.clone());
        }
        if let Ok(mut d) = self.detail.lock() {
            *d = detail;
        }
    }

    fn maybe_note(&self, position: u64) {
        let Some(log) = &self.log else { return };
        let Ok(mut last) = self.last_note.lock() else {
            return;
        };
        if last.elapsed() < NOTE_EVERY {
            return;
        }
        *last = Instant::now();
        log.line_to_file(&self.note_line(position, self.started.elapsed()));
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
        self.maybe_note(position);
        let Some(multi) = &self.multi else { return };
        let Ok(mut guard) = self.bar.lock() else {
            return;
        };
        if guard.is_none() {
            if self.started.elapsed() < Duration::from_secs(1) {
                return;
            }
            let bar = multi.add(ProgressBar::new(self.length.load(Ordering::Relaxed)));
            bar.set_style(bar_style("{prefix:>32} [{bar:30}] {pos}/{len} {eta} {msg}"));
            bar.set_prefix(self.label.clone());
            if let Ok(d) = self.detail.lock() {
                bar.set_message(d.clone());
            }
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

/// The look of every bar of a run: `template` with `=>` as the bar's characters.
pub fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `93 s`, `4 min 5 s`, `1 h 02 min`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..120 => format!("{s} s"),
        120..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// Time-stamped log of one run; clones write to the same file.
#[derive(Clone)]
pub struct RunLog {
    file: Option<Arc<Mutex<std::fs::File>>>,
    echo: bool,
    multi: Option<MultiProgress>,
}

impl RunLog {
    pub fn new(file: Option<std::fs::File>, echo: bool, multi: Option<MultiProgress>) -> Self {
        Self {
            file: file.map(|f| Arc::new(Mutex::new(f))),
            echo,
            multi,
        }
    }

    /// The bars this log prints above, when bars are drawn.
    pub fn bars(&self) -> Option<&MultiProgress> {
        self.multi.as_ref()
    }

    /// Writes one line to the log file, and to stdout only when no bars are drawn (the bars
    /// say the same on a terminal).
    pub fn line_to_file(&self, message: &str) {
        if self.multi.is_some() {
            self.write_file(message);
        } else {
            self.line(message);
        }
    }

    fn write_file(&self, message: &str) {
        let stamp = chrono::Utc::now().format("%H:%M:%S");
        if let Some(file) = &self.file
            && let Ok(mut f) = file.lock()
        {
            let _ = writeln!(f, "[{stamp}] {message}");
        }
    }

    /// Writes one line to the log file and (unless quiet) to stdout.
    pub fn line(&self, message: &str) {
        self.write_file(message);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_how_far_and_how_long_still() {
        let progress = Progress::new("fit[x]".into(), None, None);
        progress.set_length(400);
        assert_eq!(
            progress.note_line(100, Duration::from_secs(90)),
            "fit[x]: 100/400 (25 %) after 90 s, about 4 min 30 s left"
        );
        assert_eq!(
            progress.note_line(7, Duration::from_secs(4000)),
            "fit[x]: 7/400 (2 %) after 1 h 06 min, about 62 h 22 min left"
        );
        let without_length = Progress::new("emit".into(), None, None);
        assert_eq!(
            without_length.note_line(3, Duration::from_secs(5)),
            "emit: 3 done after 5 s"
        );
        progress.set_detail("goldstone seed 2/3: loss 6.1e7, ψ 2.3e3".into());
        assert_eq!(
            progress.note_line(100, Duration::from_secs(90)),
            "fit[x]: 100/400 (25 %) after 90 s, about 4 min 30 s left; \
             goldstone seed 2/3: loss 6.1e7, ψ 2.3e3"
        );
    }

    /// A stage that runs past a minute writes its progress to the run's log file.
    #[test]
    fn a_long_stage_writes_progress_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let log = RunLog::new(Some(std::fs::File::create(&path).unwrap()), false, None);
        let progress = Progress::new("fit[y]".into(), None, Some(log));
        progress.set_length(10);
        progress.set_position(1);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "",
            "not within the first minute"
        );
        *progress.last_note.lock().unwrap() -= NOTE_EVERY;
        progress.set_position(5);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("fit[y]: 5/10 (50 %)"), "{text}");
        progress.set_position(6);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "one line a minute"
        );
    }
}
