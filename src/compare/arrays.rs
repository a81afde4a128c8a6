//! Element-by-element comparison of the `.npy` arrays of two runs: dtype and shape first (a
//! change of either is one difference), then every element with the tables' tolerance. An array
//! reports its first few differing elements by index and, past those, how many more differ.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

use super::tables::{Difference, Options, Status};
use crate::emit::npy;
use crate::error::{Error, Result};
use crate::fsutil::file_stems;

/// Differing elements listed one by one before the rest are counted.
const LISTED: usize = 5;

/// The header of an `.npy` file: element type (numpy `descr`) and shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Header {
    descr: String,
    shape: Vec<usize>,
}

/// Reads the header of the `.npy` file at `path` (format versions 1–3).
fn header(path: &Path) -> Result<Header> {
    use std::io::Read;
    let bad = |message: &str| Error::unreadable("npy array", path, message);
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut start = [0u8; 10];
    file.read_exact(&mut start)
        .map_err(|e| Error::io("reading", path, e))?;
    if &start[..6] != b"\x93NUMPY" {
        return Err(bad("not an npy file"));
    }
    let length = if start[6] == 1 {
        usize::from(u16::from_le_bytes([start[8], start[9]]))
    } else {
        let mut more = [0u8; 2];
        file.read_exact(&mut more)
            .map_err(|e| Error::io("reading", path, e))?;
        u32::from_le_bytes([start[8], start[9], more[0], more[1]]) as usize
    };
    let mut text = vec![0u8; length.min(1 << 20)];
    file.read_exact(&mut text)
        .map_err(|e| Error::io("reading", path, e))?;
    let text = String::from_utf8_lossy(&text);
    let descr = text
        .split("'descr':")
        .nth(1)
        .and_then(|rest| rest.split('\'').nth(1))
        .ok_or_else(|| bad("header without descr"))?
        .to_string();
    let shape = text
        .split("'shape':")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|rest| rest.split(')').next())
        .ok_or_else(|| bad("header without shape"))?
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse::<usize>()
                .map_err(|_| bad("shape is not a list of sizes"))
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok(Header { descr, shape })
}

/// The elements of the array at `path` as f64, in logical (C) order.
fn values(path: &Path, descr: &str) -> Result<Vec<f64>> {
    fn as_f64<A: ndarray_npy::ReadableElement + Copy + Into<f64>>(path: &Path) -> Result<Vec<f64>> {
        let array: ArrayD<A> = npy::read_as::<A, IxDyn>(path)?;
        Ok(array.iter().map(|&x| x.into()).collect())
    }
    match &descr[1..] {
        "f8" => as_f64::<f64>(path),
        "f4" => as_f64::<f32>(path),
        "i4" => as_f64::<i32>(path),
        "u4" => as_f64::<u32>(path),
        "u1" => as_f64::<u8>(path),
        "i8" => {
            let array: ArrayD<i64> = npy::read_as::<i64, IxDyn>(path)?;
            Ok(array.iter().map(|&x| x as f64).collect())
        }
        "u8" => {
            let array: ArrayD<u64> = npy::read_as::<u64, IxDyn>(path)?;
            Ok(array.iter().map(|&x| x as f64).collect())
        }
        _ => Err(Error::unreadable(
            "npy array",
            path,
            format!("element type {descr} is not compared"),
        )),
    }
}

/// `(i, j, …)` of the flat C-order index `flat` in `shape`.
fn index_of(mut flat: usize, shape: &[usize]) -> String {
    let mut index = vec![0; shape.len()];
    for (slot, &n) in index.iter_mut().zip(shape).rev() {
        *slot = flat % n.max(1);
        flat /= n.max(1);
    }
    let parts: Vec<String> = index.iter().map(usize::to_string).collect();
    format!("({})", parts.join(", "))
}

/// The differences between the arrays of two run folders.
pub fn compare_runs(
    experiment: &str,
    old_dir: &Path,
    new_dir: &Path,
    options: Options,
) -> Result<Vec<Difference>> {
    let folder = |dir: &Path| dir.join("arrays");
    let (old_names, new_names) = (
        file_stems(&folder(old_dir), "npy"),
        file_stems(&folder(new_dir), "npy"),
    );
    let mut out = Vec::new();
    let difference = |name: &str, key: String, column: &str, old: String, new: String| {
        let (a, b) = (old.parse::<f64>().ok(), new.parse::<f64>().ok());
        let delta = a.zip(b).map(|(a, b)| b - a);
        Difference {
            experiment: experiment.to_string(),
            table: format!("arrays/{name}.npy"),
            key,
            column: column.into(),
            delta,
            rel: a
                .zip(delta)
                .map(|(a, d)| d.abs() / a.abs().max(b.unwrap_or(0.0).abs())),
            old,
            new,
            status: Status::Changed,
        }
    };
    for name in old_names.union(&new_names) {
        let whole = |status: Status| Difference {
            status,
            ..difference(
                name,
                "*".into(),
                "*",
                if status == Status::Added { "" } else { "array" }.into(),
                if status == Status::Added { "array" } else { "" }.into(),
            )
        };
        match (old_names.contains(name), new_names.contains(name)) {
            (true, false) => out.push(whole(Status::Removed)),
            (false, true) => out.push(whole(Status::Added)),
            _ => {
                let path = |dir: &Path| folder(dir).join(format!("{name}.npy"));
                let (old_path, new_path) = (path(old_dir), path(new_dir));
                let (a, b) = (header(&old_path)?, header(&new_path)?);
                if a.descr != b.descr {
                    out.push(difference(name, "*".into(), "dtype", a.descr, b.descr));
                    continue;
                }
                if a.shape != b.shape {
                    let show = |s: &[usize]| format!("{s:?}");
                    out.push(difference(
                        name,
                        "*".into(),
                        "shape",
                        show(&a.shape),
                        show(&b.shape),
                    ));
                    continue;
                }
                let (old, new) = (values(&old_path, &a.descr)?, values(&new_path, &b.descr)?);
                let differing: Vec<usize> = (0..old.len())
                    .filter(|&i| !options.tolerance.equal(old[i], new[i]))
                    .collect();
                for &i in differing.iter().take(LISTED) {
                    out.push(difference(
                        name,
                        index_of(i, &a.shape),
                        "value",
                        format!("{:e}", old[i]),
                        format!("{:e}", new[i]),
                    ));
                }
                if differing.len() > LISTED {
                    out.push(difference(
                        name,
                        "…".into(),
                        "value",
                        String::new(),
                        format!(
                            "{} more of {} elements differ",
                            differing.len() - LISTED,
                            old.len()
                        ),
                    ));
                }
                if differing.is_empty() && options.all {
                    out.push(Difference {
                        status: Status::Same,
                        ..difference(name, "*".into(), "*", "array".into(), "array".into())
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::tables::Tolerance;
    use ndarray::array;

    fn options() -> Options {
        Options {
            tolerance: Tolerance {
                rel: 1e-9,
                abs: 0.0,
            },
            all: false,
            wall_clock: false,
            sigma: None,
        }
    }

    /// Shape and dtype are compared first; values within the tolerance are equal, and the first
    /// differing elements are named by index.
    #[test]
    fn arrays_differ_by_dtype_shape_or_elements() {
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let write = |dir: &Path, name: &str, a: &ndarray::Array2<f64>| {
            npy::write(&dir.join("arrays").join(format!("{name}.npy")), a).unwrap();
        };
        write(old.path(), "same", &array![[1.0, 2.0], [3.0, 4.0]]);
        write(new.path(), "same", &array![[1.0, 2.0], [3.0, 4.0 + 1e-12]]);
        write(old.path(), "value", &array![[1.0, 2.0], [3.0, 4.0]]);
        write(new.path(), "value", &array![[1.0, 2.0], [3.5, 4.0]]);
        write(old.path(), "shape", &array![[1.0, 2.0]]);
        write(new.path(), "shape", &array![[1.0], [2.0]]);
        npy::write(&old.path().join("arrays/dtype.npy"), &array![1.0f32, 2.0]).unwrap();
        write(new.path(), "dtype", &array![[1.0, 2.0]]);
        write(old.path(), "gone", &array![[0.0]]);
        let diffs = compare_runs("e", old.path(), new.path(), options()).unwrap();
        let seen: Vec<(String, String, String)> = diffs
            .iter()
            .map(|d| (d.table.clone(), d.key.clone(), d.column.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("arrays/dtype.npy".into(), "*".into(), "dtype".into()),
                ("arrays/gone.npy".into(), "*".into(), "*".into()),
                ("arrays/shape.npy".into(), "*".into(), "shape".into()),
                ("arrays/value.npy".into(), "(1, 0)".into(), "value".into()),
            ]
        );
        assert_eq!(diffs[1].status, Status::Removed);
        assert_eq!(diffs[3].delta, Some(0.5));
    }
}
