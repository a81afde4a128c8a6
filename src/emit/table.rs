//! Result tables: typed columns → polars DataFrame → CSV and parquet.
//!
//! Columns keep the order they are declared in; rows are sorted by the declared key columns;
//! floats are written in scientific notation with 10 significant digits, so a `git diff` of a CSV
//! shows only real changes.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};

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
    columns: Vec<(String, ColumnData)>,
}

impl Table {
    pub fn new(name: impl Into<String>, keys: &[&str]) -> Self {
        Self {
            name: name.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            columns: Vec::new(),
        }
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
        ParquetWriter::new(&mut parquet)
            .finish(&mut df)
            .map_err(|e| Error::artefact("parquet table", &parquet_path, e))?;
        crate::fsutil::write_atomic(&parquet_path, &parquet)
    }
}
