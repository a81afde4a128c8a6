//! Test harness: a temporary workspace holding a copy of a spec, and a runner for the binary
//! that prints the command, its stdout and its stderr when an expectation fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub args: Vec<String>,
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).to_string()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).to_string()
    }

    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// Panics with the full transcript unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "\ncommand: symbreak {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Workspace {
    /// A workspace with `experiments/<name>.toml` copied from the repository.
    pub fn with_spec(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let spec = repo_root().join("experiments").join(format!("{name}.toml"));
        let dest = dir.path().join("experiments");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::copy(&spec, dest.join(format!("{name}.toml"))).unwrap();
        let ws = Self { dir };
        ws.copy_claims(name);
        ws
    }

    /// Copies `experiments/claims/<name>.toml` from the repository, if the spec has one.
    fn copy_claims(&self, name: &str) {
        let claims = repo_root()
            .join("experiments/claims")
            .join(format!("{name}.toml"));
        if claims.is_file() {
            let dest = self.claims_path(name);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&claims, dest).unwrap();
        }
    }

    /// `experiments/claims/<name>.toml` of the workspace.
    pub fn claims_path(&self, name: &str) -> PathBuf {
        self.path()
            .join("experiments/claims")
            .join(format!("{name}.toml"))
    }

    /// A workspace with the spec `name`, the data registry and the listed raw files (paths
    /// relative to `data/`) copied from the repository.
    pub fn with_data(name: &str, files: &[&str]) -> Self {
        let ws = Self::with_spec(name);
        let data = ws.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::copy(
            repo_root().join("data/registry.toml"),
            data.join("registry.toml"),
        )
        .unwrap();
        for file in files {
            let dest = data.join(file);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(repo_root().join("data").join(file), dest).unwrap();
        }
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn spec_path(&self, name: &str) -> PathBuf {
        self.path().join("experiments").join(format!("{name}.toml"))
    }

    /// Copies one more spec from the repository.
    pub fn add_spec(&self, name: &str) {
        let spec = repo_root().join("experiments").join(format!("{name}.toml"));
        std::fs::copy(&spec, self.spec_path(name)).unwrap();
        self.copy_claims(name);
    }

    /// Rewrites the spec `name` with `edit` applied to its text.
    pub fn edit_spec(&self, name: &str, edit: impl Fn(&str) -> String) {
        let path = self.spec_path(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let new = edit(&text);
        assert_ne!(text, new, "edit changed nothing");
        std::fs::write(&path, new).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_symbreak"));
        cmd.current_dir(self.path()).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("running symbreak");
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        }
    }

    /// The folder `results/<exp>/latest` points to.
    pub fn latest(&self, experiment: &str) -> PathBuf {
        let link = self.path().join("results").join(experiment).join("latest");
        let target = std::fs::read_link(&link).expect("latest link");
        self.path().join("results").join(experiment).join(target)
    }

    /// Reads a CSV table of the latest run as (header, rows of fields).
    pub fn table(&self, experiment: &str, name: &str) -> Table {
        let path = self
            .latest(experiment)
            .join("tables")
            .join(format!("{name}.csv"));
        Table::read(&path)
    }
}

pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut lines = text.lines();
        let header = split(lines.next().unwrap_or(""));
        let rows = lines.map(split).collect();
        Self { header, rows }
    }

    pub fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    pub fn f64(&self, row: &[String], name: &str) -> f64 {
        row[self.col(name)].parse().unwrap_or(f64::NAN)
    }

    pub fn str<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        &row[self.col(name)]
    }
}

fn split(line: &str) -> Vec<String> {
    // Instance labels contain commas and are quoted by the CSV writer.
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Debian's chromium, if installed (`make chromium`); `SYMBREAK_CHROMIUM` overrides the path.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("SYMBREAK_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    path.is_file().then_some(path)
}

/// Renders `page` headless to the PNG `shot`. The flags keep chromium off the network (this
/// machine's is closed) and out of any profile but a fresh one.
pub fn render_headless(chromium: &Path, page: &Path, shot: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("starting chromium");
    assert!(
        shot.is_file(),
        "chromium wrote no screenshot: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Renders the HTML page `page` in headless chromium, if installed, and checks that it drew a
/// page (many non-white pixels), not a blank one; says that it skipped otherwise.
pub fn assert_renders(page: &Path, scratch: &Path) {
    let Some(chromium) = chromium() else {
        eprintln!("chromium not installed (`make chromium`): headless rendering skipped");
        return;
    };
    let shot = scratch.join("rendered.png");
    render_headless(&chromium, page, &shot);
    let picture = image::open(&shot).unwrap().to_rgb8();
    let inked = picture.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        inked > 10_000,
        "{inked} non-white pixels in {}",
        shot.display()
    );
}

/// Runs `git <args>` in `dir` with a throwaway identity; panics if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(status.status.success(), "git {args:?}: {status:?}");
}
