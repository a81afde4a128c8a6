//! `.npy` arrays between stages and in run folders (ndarray-npy).

use std::path::Path;

use ndarray::{Array, Dimension};
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};

use crate::error::{Error, Result};

/// Writes `array` (f64, f32, integers) to `path` (parent folders created).
pub fn write<A: WritableElement, D: Dimension>(path: &Path, array: &Array<A, D>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    }
    let mut bytes = Vec::new();
    array
        .write_npy(&mut bytes)
        .map_err(|e| Error::artefact("npy array", path, e))?;
    crate::fsutil::write_atomic(path, &bytes)
}

/// Reads an f64 array of dimension `D` from `path`.
pub fn read<D: Dimension>(path: &Path) -> Result<Array<f64, D>> {
    read_as(path)
}

/// Reads an array of element type `A` and dimension `D` from `path`.
pub fn read_as<A: ReadableElement, D: Dimension>(path: &Path) -> Result<Array<A, D>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    Array::<A, D>::read_npy(file).map_err(|e| Error::unreadable("npy array", path, e))
}
