//! Figures of two runs side by side: for every PNG figure both runs have, one picture named
//! `<figure>__<A>__vs__<B>.png` in a folder per experiment, so that comparisons of other
//! revisions never overwrite it.

use std::path::{Path, PathBuf};

use super::Comparison;
use crate::error::{Error, Result};

/// Names (without `.png`) of the figures both run folders have, sorted.
pub fn common_figures(old_dir: &Path, new_dir: &Path) -> Vec<String> {
    let names = |dir: &Path| crate::fsutil::file_stems(&dir.join("figures"), "png");
    names(old_dir)
        .intersection(&names(new_dir))
        .cloned()
        .collect()
}

/// A label made safe for a file name.
fn file_label(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// "label — run (commit)", without repeating a label that is the run id.
fn caption(label: &str, run: &str, commit: &str) -> String {
    if label == run {
        format!("{run} ({commit})")
    } else {
        format!("{label} — {run} ({commit})")
    }
}

/// Writes the side-by-side pictures of `comparison` under `dir`; returns their paths.
pub fn write_side_by_side(comparison: &Comparison, dir: &Path) -> Result<Vec<PathBuf>> {
    let (a, b) = (
        file_label(&comparison.old_label),
        file_label(&comparison.new_label),
    );
    let mut written = Vec::new();
    for e in &comparison.experiments {
        let folder = dir.join(&e.experiment);
        std::fs::create_dir_all(&folder)
            .map_err(|err| Error::io("creating folder", &folder, err))?;
        for name in common_figures(&e.old_dir, &e.new_dir) {
            let out = folder.join(format!("{name}__{a}__vs__{b}.png"));
            let png = |d: &Path| d.join("figures").join(format!("{name}.png"));
            crate::emit::figure::side_by_side(
                &png(&e.old_dir),
                &png(&e.new_dir),
                [
                    &caption(&comparison.old_label, &e.old_run, &e.old_commit),
                    &caption(&comparison.new_label, &e.new_run, &e.new_commit),
                ],
                &out,
            )?;
            written.push(out);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_safe_file_names() {
        assert_eq!(file_label("abc1234"), "abc1234");
        assert_eq!(file_label("feature/x y"), "feature_x_y");
        assert_eq!(
            file_label("20261124T033850Z-6d2f542"),
            "20261124T033850Z-6d2f542"
        );
    }
}
