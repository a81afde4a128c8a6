//! Result tables: typed columns → polars DataFrame → CSV and parquet.
//!
//! Columns keep the order they are declared in; rows are sorted by the declared key columns;
//! floats are written in scientific notation with 10 significant digits, so a `git diff` of a CSV
//! shows only real changes. The parquet file records the key columns in its file metadata
//! ([`KEYS_METADATA`]), which is how `symbreak diff` joins the rows of two runs.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};

/// Parquet file-metadata key under which a table's key columns are stored (a JSON list).
pub const KEYS_METADATA: &str = "symbreak.keys";

/// Parquet file-metadata key of the columns that measure the machine (wall-clock times and
/// their ratios): they differ between identical computations, so `symbreak diff` leaves them
/// out unless asked (a JSON list).
pub const WALL_CLOCK_METADATA: &str = "symbreak.wall_clock";

/// A column of a result table.
pub enum ColumnData {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(Vec<String>),
}

/// A named table with key columns to sort by.
pub struct Table {
    pub name: String,
    pub keys: Vec<String>,
    /// Columns that measure the machine, not the computation.
    pub wall_clock: Vec<String>,
    columns: Vec<(String, ColumnData)>,
}

impl Table {
    pub fn new(name: impl Into<String>, keys: &[&str]) -> Self {
        Self {
            name: name.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            wall_clock: Vec::new(),
            columns: Vec::new(),
        }
    }

    /// Marks `columns` as wall-clock measurements (see [`WALL_CLOCK_METADATA`]).
    pub fn wall_clock(mut self, columns: &[&str]) -> Self {
        self.wall_clock
            .extend(columns.iter().map(|c| c.to_string()));
        self
    }

    pub fn f64(mut self, name: &str, values: Vec<f64>) -> Self {
        self.columns.push((name.into(), ColumnData::F64(values)));
        self
    }

    pub fn i64(mut self, name: &str, values: Vec<i64>) -> Self {
        self.columns.push((name.into(), ColumnData::I64(values)));
        self
    }

    pub fn str(mut self, name: &str, values: Vec<String>) -> Self {
        self.columns.push((name.into(), ColumnData::Str(values)));
        self
    }

    fn frame(&self, path: &Path) -> Result<DataFrame> {
        let columns: Vec<Column> = self
            .columns
            .iter()
            .map(|(name, data)| match data {
                ColumnData::F64(v) => Column::new(name.as_str().into(), v),
                ColumnData::I64(v) => Column::new(name.as_str().into(), v),
                ColumnData::Str(v) => Column::new(name.as_str().into(), v),
            })
            .collect();
        let df =
            DataFrame::new_infer_height(columns).map_err(|e| Error::artefact("table", path, e))?;
        if self.keys.is_empty() {
            return Ok(df);
        }
        df.sort(
            self.keys.clone(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .map_err(|e| Error::artefact("table", path, e))
    }

    /// Writes `<dir>/<name>.csv` and `<dir>/<name>.parquet`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
        let csv_path = dir.join(format!("{}.csv", self.name));
        let mut df = self.frame(&csv_path)?;
        let mut csv = Vec::new();
        CsvWriter::new(&mut csv)
            .include_header(true)
            .with_float_scientific(Some(true))
            .with_float_precision(Some(9))
            .finish(&mut df)
            .map_err(|e| Error::artefact("csv table", &csv_path, e))?;
        crate::fsutil::write_atomic(&csv_path, &csv)?;
        let parquet_path = dir.join(format!("{}.parquet", self.name));
        let mut parquet = Vec::new();
        let list = |names: &Vec<String>| {
            serde_json::to_string(names).expect("a list of strings serialises")
        };
        ParquetWriter::new(&mut parquet)
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![
                (KEYS_METADATA.to_string(), list(&self.keys)),
                (WALL_CLOCK_METADATA.to_string(), list(&self.wall_clock)),
            ])))
            .finish(&mut df)
            .map_err(|e| Error::artefact("parquet table", &parquet_path, e))?;
        crate::fsutil::write_atomic(&parquet_path, &parquet)
    }
}

/// A table read back from a run folder.
pub struct LoadedTable {
    pub frame: DataFrame,
    /// The declared key columns, or `None` when the file does not record them.
    pub keys: Option<Vec<String>>,
    /// The declared wall-clock columns (none when the file does not record them).
    pub wall_clock: Vec<String>,
}

/// Reads `<name>.parquet` (typed, full precision) with its declared keys.
pub fn read_parquet(path: &Path) -> Result<LoadedTable> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut reader = ParquetReader::new(file);
    let metadata = reader
        .get_metadata()
        .map_err(|e| Error::artefact("parquet table", path, e))?
        .clone();
    let list = |key: &str| {
        metadata
            .key_value_metadata()
            .as_ref()
            .and_then(|pairs| pairs.iter().find(|kv| kv.key == key))
            .and_then(|kv| kv.value.as_deref())
            .and_then(|json| serde_json::from_str::<Vec<String>>(json).ok())
    };
    let (keys, wall_clock) = (list(KEYS_METADATA), list(WALL_CLOCK_METADATA));
    let frame = reader
        .finish()
        .map_err(|e| Error::artefact("parquet table", path, e))?;
    Ok(LoadedTable {
        frame,
        keys,
        wall_clock: wall_clock.unwrap_or_default(),
    })
}
